// Package engine is the actual state and the verbs the reconciler uses: it
// composes the ZFS store (engine/zfs), the jail driver (engine/jail) and the
// per-container supervisors (engine/supervisor) into what reconcile observes
// (reconcile.Observer) and acts through (reconcile.Executor). It is just
// over the house's 1,500 lines with the ad-hoc verbs of the CLI (run, commit,
// save, load) beside the reconciler's; those could become engine/adhoc.
package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/engine/jail"
	"github.com/zocker-reconcile/zocker-reconcile/engine/supervisor"
	"github.com/zocker-reconcile/zocker-reconcile/engine/zfs"
	"github.com/zocker-reconcile/zocker-reconcile/image"
	"github.com/zocker-reconcile/zocker-reconcile/internal/atomicfile"
	"github.com/zocker-reconcile/zocker-reconcile/manifests"
	"github.com/zocker-reconcile/zocker-reconcile/reconcile"
)

// Properties the engine keeps on container and volume datasets besides the
// store's own.
const (
	// PropIP is the loopback address allocated to a container, reused on
	// every start and re-creation.
	PropIP = "zocker:ip"
	// PropReclaimPolicy is a Volume's applied reclaimPolicy.
	PropReclaimPolicy = "zocker:reclaim-policy"
)

// Builder builds an Image declared with build: (engine/build); nil until wired.
type Builder func(ctx context.Context, img *manifests.Image, inputs string) (id string, err error)

// Puller pulls an Image declared with pull: (engine/repo); nil until wired.
type Puller func(ctx context.Context, img *manifests.Image) (id string, err error)

// Engine observes and changes the host: ZFS datasets under one root, jails,
// and the supervisors that run containers.
type Engine struct {
	Store  Store
	Driver jail.Driver
	// StateDir holds supervisor state and generated jail files.
	StateDir string
	// Self is the argv prefix that re-executes this binary's supervisor
	// command ([exe, "__supervise"]).
	Self []string
	// LoopbackPool is where loopback addresses come from (127.0.1.0/24).
	LoopbackPool netip.Prefix
	// LoopbackInterface carries them (lo0, or a cloned lo1 for pf NAT).
	LoopbackInterface string
	// JailNameservers replace the host's loopback nameservers in loopback
	// and alias jails (FreeBSD: such a jail cannot reach 127.0.0.1).
	JailNameservers []string
	Build           Builder
	Pull            Puller
	Log             *slog.Logger
	// UpdateStep, when set, is called after each step of a health-gated
	// replacement ("stopped", "kept", "created"): the crash-safety tests
	// pause the service there and kill it (see ZOCKER_TEST_PAUSE_UPDATE).
	UpdateStep func(ctx context.Context, container, step string)

	lastMu   sync.Mutex
	lastTags map[string]string // tags as last observed, for BuildInputs
	lastTree *zfs.Tree         // the records of the last observation, for ObserveTouched
	// made is what the ad-hoc containers this engine created use (image,
	// volumes), so that starting one reads them with its clone.
	made map[string]zfs.Objects

	// allocMu makes allocating a loopback address and recording it on the
	// new clone one step, so that two workers never take the same address;
	// it guards ips and ipsGen (loopback.go).
	allocMu sync.Mutex
	ips     map[string]string // container -> loopback address, as of ipsGen
	ipsGen  string
	ipsDrop atomic.Bool // a whole observation asks for ips to be read again
}

// Observe reads the whole actual state: one `zfs get -r` for every dataset
// under the root, the supervisors' status files (no command), and one jail
// listing to find jails this service did not make.
func (e *Engine) Observe(ctx context.Context) (reconcile.Observed, error) {
	d, err := e.ObserveDetail(ctx)
	return d.Observed, err
}

// Detail is one observation with the raw records it was made from, for the
// metrics and tables that need more than the reconciler does.
type Detail struct {
	reconcile.Observed
	State       *zfs.State
	Supervisors []supervisor.Status
}

// ObserveDetail is Observe, keeping the raw records.
func (e *Engine) ObserveDetail(ctx context.Context) (Detail, error) {
	st, tree, err := e.Store.ObserveTree(ctx)
	if errors.Is(err, zfs.ErrNotFound) {
		st = &zfs.State{} // a root not created yet holds nothing
	} else if err != nil {
		return Detail{}, err
	}
	// What other hands changed is seen here: the loopback addresses in use
	// are read again at the next allocation (loopback.go).
	e.ipsDrop.Store(true)
	return e.detail(ctx, st, tree)
}

// detail completes an observation of the store with the supervisors and
// jails, and keeps it as the base of the next targeted one.
func (e *Engine) detail(ctx context.Context, st *zfs.State, tree *zfs.Tree) (Detail, error) {
	sups, err := supervisor.List(e.StateDir)
	if err != nil {
		return Detail{}, fmt.Errorf("list supervisors: %w", err)
	}
	jails, err := e.Driver.List(ctx)
	if err != nil {
		return Detail{}, fmt.Errorf("list jails: %w", err)
	}
	e.lastMu.Lock()
	e.lastTags = st.Tags
	e.lastTree = tree
	e.lastMu.Unlock()
	o := Convert(st, sups, jails)
	st, sups = withoutAdHoc(st, sups)
	return Detail{Observed: o, State: st, Supervisors: sups}, nil
}

// withoutAdHoc returns st and sups without the ad-hoc containers (run,
// create), so that the service's metrics and usage sampling never list them.
// st is copied, not changed.
func withoutAdHoc(st *zfs.State, sups []supervisor.Status) (*zfs.State, []supervisor.Status) {
	adhoc := map[string]bool{}
	for _, c := range st.Containers {
		if IsAdHoc(c) {
			adhoc[c.ContainerName] = true
		}
	}
	if len(adhoc) == 0 {
		return st, sups
	}
	cp := *st
	cp.Containers = slices.DeleteFunc(slices.Clone(st.Containers), IsAdHoc)
	sups = slices.DeleteFunc(slices.Clone(sups), func(s supervisor.Status) bool { return adhoc[s.Name] })
	return &cp, sups
}

// Convert turns what the store, the supervisors and the jail listing report
// into the reconciler's view. It is pure (and tested as such).
func Convert(st *zfs.State, sups []supervisor.Status, jails []jail.Info) reconcile.Observed {
	o := reconcile.Observed{
		Images:     map[string]reconcile.ObservedImage{},
		Tags:       map[string]string{},
		Containers: map[string]reconcile.ObservedContainer{},
		Volumes:    map[string]reconcile.ObservedVolume{},
		Foreign:    map[string]string{},
	}
	present := map[string]bool{}
	for _, im := range st.Images {
		present[im.ID] = true
	}
	for tag, id := range st.Tags {
		// A tag whose image is gone (destroyed by hand) names nothing: the
		// image is made again rather than cloned from a missing snapshot.
		if present[id] {
			o.Tags[tag] = id
		}
	}
	for _, im := range st.Images {
		oi := reconcile.ObservedImage{ID: im.ID, Inputs: imageInputs(im)}
		for tag, id := range st.Tags {
			if id == im.ID {
				oi.Tags = append(oi.Tags, tag)
			}
		}
		slices.Sort(oi.Tags)
		o.Images[im.ID] = oi
	}
	bySup := map[string]supervisor.Status{}
	for _, s := range sups {
		bySup[s.Name] = s
	}
	for _, c := range st.Containers {
		if IsAdHoc(c) {
			// Made by run or create: the reconciler never touches it, and a
			// declared container of that name is Stalled, never a takeover.
			o.Foreign[c.ContainerName] = HolderRun
			continue
		}
		oc := reconcile.ObservedContainer{
			Name:     c.ContainerName,
			Managed:  c.Props[zfs.PropManaged] == "true",
			Manifest: c.Manifest,
			SpecHash: c.SpecHash,
			Spec:     c.Spec,
			ImageID:  c.ImageID,
			Exists:   true,
		}
		oc.Written = int64(c.Used)
		oc.RolledBack, oc.RollbackReason = c.Props[zfs.PropRolledBack], c.Props[zfs.PropRollbackReason]
		if sec, err := strconv.ParseInt(c.Props[zfs.PropUpdateStarted], 10, 64); err == nil {
			oc.UpdateStarted = time.Unix(sec, 0)
		}
		if s, ok := bySup[c.ContainerName]; ok {
			ApplySupervisor(&oc, s)
		}
		o.Containers[oc.Name] = oc
	}
	for _, pc := range st.Previous {
		if o.Previous == nil {
			o.Previous = map[string][]reconcile.ObservedPrevious{}
		}
		// st.Previous is sorted by dataset name: oldest first per container.
		o.Previous[pc.ContainerName] = append(o.Previous[pc.ContainerName], reconcile.ObservedPrevious{
			ID: pc.PreviousID, SpecHash: pc.SpecHash, Spec: pc.Spec, ImageID: pc.ImageID})
	}
	for _, v := range st.Volumes {
		ov := reconcile.ObservedVolume{
			Name:          v.VolumeName,
			Managed:       v.Props[zfs.PropManaged] == "true",
			Manifest:      v.Props[zfs.PropManifest],
			Quota:         int64(v.Quota),
			ReclaimPolicy: v.Props[PropReclaimPolicy],
			Properties:    map[string]string{},
		}
		for k, val := range v.Props {
			if after, ok := strings.CutPrefix(k, "zocker:prop."); ok {
				ov.Properties[after] = val
			}
		}
		o.Volumes[ov.Name] = ov
	}
	for _, ds := range st.Foreign {
		o.Foreign[path.Base(ds)] = "dataset " + ds
	}
	for _, j := range jails {
		if _, ours := bySup[j.Name]; ours {
			continue
		}
		if _, managed := o.Containers[j.Name]; managed {
			continue
		}
		if _, held := o.Foreign[j.Name]; held {
			continue
		}
		o.Foreign[j.Name] = fmt.Sprintf("jail %d", j.JID)
	}
	return o
}

// ApplySupervisor copies a supervisor's report into the reconciler's view of
// its container. A live supervisor is a running container from the
// reconciler's point of view, also while it backs off or after its command
// exited under OnFailure/Never: restarting is the supervisor's job. Why it
// is then not Ready is in Runtime, for the status.
func ApplySupervisor(oc *reconcile.ObservedContainer, s supervisor.Status) {
	oc.Running = s.Up()
	oc.Health = ObservedHealth(s.Health.Status)
	oc.HealthOutput = s.Health.LastOutput
	oc.Restarts, oc.LastExitCode, oc.Exited = s.Restarts, s.LastExitCode, !s.LastExitAt.IsZero()
	oc.Runtime = reconcile.ContainerRuntime{
		State: string(s.State), LastSignal: s.LastSignal, NextStartAt: s.NextStartAt, Message: s.Message,
		HealthStreak: s.Health.FailingStreak, HealthExitCode: s.Health.LastExitCode,
	}
	if !s.Alive && s.State != supervisor.StateStopped {
		oc.Runtime.State = "dead"
	}
}

// ObservedHealth maps a supervisor's health status to reconcile's.
func ObservedHealth(s string) string {
	switch s {
	case supervisor.HealthHealthy:
		return reconcile.HealthHealthy
	case supervisor.HealthUnhealthy:
		return reconcile.HealthUnhealthy
	case supervisor.HealthStarting:
		return reconcile.HealthStarting
	}
	return reconcile.HealthNone
}

// imageInputs is what an image was made from: the reconciler's recorded
// inputs digest, else the tarball digest the store records on import (so an
// image imported by hand with `import` matches its manifest).
func imageInputs(im zfs.Image) string {
	if v := im.Props[zfs.PropInputs]; v != "" {
		return v
	}
	if !im.Local() {
		// A pulled image's config is its repository's word: its inputs
		// never make it count as a current build or import (H2).
		return ""
	}
	if im.Config.Inputs != "" {
		return im.Config.Inputs
	}
	return im.Props[zfs.PropSource]
}

// Execute takes one planned action.
func (e *Engine) Execute(ctx context.Context, a reconcile.Action) error {
	log := e.Log.With("action", string(a.Op), reconcile.ObjectAttr(a.Kind, a.Name))
	switch a.Op {
	case reconcile.OpImport:
		return e.importImage(ctx, a)
	case reconcile.OpBuild:
		if e.Build == nil {
			return reconcile.Terminal(fmt.Errorf("image %s: builds are not available in this binary", a.Name))
		}
		id, err := e.Build(ctx, a.Image, a.Inputs)
		if err != nil {
			return err
		}
		log.Info("built image", "id", image.Short(id))
		return nil
	case reconcile.OpPull:
		if e.Pull == nil {
			return reconcile.Terminal(fmt.Errorf("image %s: pulls are not available in this binary", a.Name))
		}
		_, err := e.Pull(ctx, a.Image)
		return err
	case reconcile.OpCreateVolume, reconcile.OpUpdateVolume:
		return e.ensureVolume(ctx, a)
	case reconcile.OpDestroyVolume:
		return e.Store.DestroyVolume(ctx, a.Name)
	case reconcile.OpCreate:
		if err := e.createClone(ctx, a, ""); err != nil {
			return err
		}
		if wantsRunning(a.Container) {
			return e.start(ctx, a.Container, a.ImageID)
		}
		return nil
	case reconcile.OpStart:
		return e.start(ctx, a.Container, a.ImageID)
	case reconcile.OpStop:
		if err := e.refuseAdHoc(ctx, a.Name); err != nil {
			return err
		}
		return supervisor.Stop(ctx, e.StateDir, a.Name, e.Driver)
	case reconcile.OpReplace:
		if err := e.refuseAdHoc(ctx, a.Name); err != nil {
			return err
		}
		return e.replace(ctx, a)
	case reconcile.OpPrune:
		if err := e.refuseAdHoc(ctx, a.Name); err != nil {
			return err
		}
		if err := e.remove(ctx, a.Name); err != nil {
			return err
		}
		return e.removePrevious(ctx, a.Name)
	case reconcile.OpRollback:
		return e.rollback(ctx, a)
	case reconcile.OpConfirm:
		return e.confirm(ctx, a)
	}
	return reconcile.Terminal(fmt.Errorf("unknown action %q", a.Op))
}

func wantsRunning(c *manifests.Container) bool {
	return c != nil && c.Spec.State != manifests.StateStopped
}

func (e *Engine) importImage(ctx context.Context, a reconcile.Action) error {
	t := a.Image.Spec.Tarball
	if t == nil {
		return reconcile.Terminal(fmt.Errorf("image %s: no tarball source", a.Name))
	}
	src := zfs.ImportSource{Path: t.Path, URL: t.URL, SHA256: t.SHA256}
	id, err := e.Store.ImportTarball(ctx, src, zfs.Config{Inputs: a.Inputs})
	if errors.Is(err, zfs.ErrDigestMismatch) {
		// The user's mistake: held (Stalled) until the manifest changes.
		return reconcile.Terminal(fmt.Errorf("import image %s: %w", a.Name, err))
	}
	if err != nil {
		return fmt.Errorf("import image %s: %w", a.Name, err)
	}
	if err := e.Store.Tag(ctx, a.Name, id); err != nil {
		return fmt.Errorf("tag image %s: %w", a.Name, err)
	}
	e.Log.Info("imported image", "image", a.Name, "id", image.Short(id))
	return nil
}

func (e *Engine) ensureVolume(ctx context.Context, a reconcile.Action) error {
	v := a.Volume
	spec := zfs.VolumeSpec{Properties: v.Spec.Properties}
	for k := range v.Spec.Properties {
		if !manifests.VolumePropertyAllowed(k) {
			return reconcile.Terminal(fmt.Errorf("volume %s: spec.properties.%s: not a property a Volume may set", a.Name, k))
		}
	}
	if v.Spec.Quota != "" {
		n, err := manifests.ParseQuantity(v.Spec.Quota)
		if err != nil {
			return reconcile.Terminal(fmt.Errorf("volume %s: spec.quota: %w", a.Name, err))
		}
		spec.QuotaBytes = uint64(n)
	}
	props := map[string]string{zfs.PropManifest: a.Manifest, PropReclaimPolicy: manifests.ReclaimPolicyOrDefault(v.Spec.ReclaimPolicy)}
	// The applied property values are mirrored as zocker:prop.<name> so that
	// the next observation (one zfs get of zocker:* only) sees them.
	for k, val := range v.Spec.Properties {
		props["zocker:prop."+k] = val
	}
	return e.Store.EnsureVolume(ctx, a.Name, spec, props)
}

// createClone clones the container's image with its properties; address is
// the loopback address to keep (on replace), or "" to allocate one.
func (e *Engine) createClone(ctx context.Context, a reconcile.Action, address string) error {
	c := a.Container
	spec, err := reconcile.AppliedSpec(c)
	if err != nil {
		return reconcile.Terminal(err)
	}
	props := map[string]string{
		zfs.PropManifest: a.Manifest,
		zfs.PropSpecHash: a.SpecHash,
		zfs.PropSpec:     spec,
	}
	if a.Trial {
		props[zfs.PropUpdateStarted] = strconv.FormatInt(time.Now().Unix(), 10)
	}
	return e.cloneFor(ctx, c, a.ImageID, props, address)
}

// cloneFor clones image imageID for container c with props, allocating a
// loopback address when c needs one and address is "".
func (e *Engine) cloneFor(ctx context.Context, c *manifests.Container, imageID string, props map[string]string, address string) error {
	name := c.Metadata.Name
	if c.Spec.Network.Mode == manifests.NetLoopback && address == "" {
		return e.cloneWithAddress(ctx, c, imageID, props)
	}
	if address != "" {
		props[PropIP] = address
	}
	return e.clone(ctx, name, imageID, props)
}

func (e *Engine) clone(ctx context.Context, name, imageID string, props map[string]string) error {
	if _, err := e.Store.CreateContainer(ctx, name, imageID, props); err != nil {
		return err
	}
	e.Log.Info("created container", "container", name, "image", image.Short(imageID))
	return nil
}

// start starts the container's supervisor, which creates the jail and runs
// the command. It reads what it needs once more (the clone, its image and
// its volumes may have been made earlier in this pass), with one targeted
// command whatever the number of datasets (two when the image is not
// known yet): imageID is the image the clone was just made from, or "".
func (e *Engine) start(ctx context.Context, c *manifests.Container, imageID string) error {
	if c == nil {
		return reconcile.Terminal(errors.New("start: no container spec"))
	}
	name := c.Metadata.Name
	objs := zfs.Objects{Containers: []string{name}}
	for _, m := range c.Spec.Volumes {
		if m.Volume != "" {
			objs.Volumes = append(objs.Volumes, m.Volume)
		}
	}
	if imageID != "" {
		objs.Images = []string{imageID}
	}
	st, err := e.Store.ObserveObjects(ctx, objs)
	if errors.Is(err, zfs.ErrNotFound) {
		// Something named is missing: the whole state says what.
		st, err = e.Store.Observe(ctx)
	}
	if err != nil {
		return err
	}
	var clone *zfs.Container
	for i := range st.Containers {
		if st.Containers[i].ContainerName == name {
			clone = &st.Containers[i]
		}
	}
	if clone == nil {
		return fmt.Errorf("start container %s: no clone: %w", name, zfs.ErrNotFound)
	}
	if _, ok := st.Image(clone.ImageID); !ok && clone.ImageID != imageID && clone.ImageID != "" {
		// The clone is of another image than the caller knew: read it too.
		ist, err := e.Store.ObserveObjects(ctx, zfs.Objects{Images: []string{clone.ImageID}})
		if err != nil && !errors.Is(err, zfs.ErrNotFound) {
			return err
		}
		if err == nil {
			st.Images = append(st.Images, ist.Images...)
		}
	}
	cfg, err := e.supervisorConfig(st, clone, c)
	if err != nil {
		return err
	}
	pid, err := supervisor.Start(ctx, e.StateDir, name, e.Self, cfg)
	if err != nil {
		return err // it says "start container NAME: ..."
	}
	e.Log.Info("started container", "container", name, "pid", pid)
	return nil
}

// supervisorConfig is the supervisor config of container c on its clone,
// from the observed state st (its image, the volumes).
func (e *Engine) supervisorConfig(st *zfs.State, clone *zfs.Container, c *manifests.Container) (supervisor.Config, error) {
	name := c.Metadata.Name
	img, ok := st.Image(clone.ImageID)
	if !ok {
		return supervisor.Config{}, fmt.Errorf("start container %s: image %s: %w", name, image.Short(clone.ImageID), zfs.ErrNotFound)
	}
	volumes := map[string]string{}
	for _, v := range st.Volumes {
		volumes[v.VolumeName] = v.Mountpoint
	}
	cfg, err := SupervisorConfig(c, imageConfig(img.Config), RuntimeInputs{
		Root:              clone.Mountpoint,
		VolumePaths:       volumes,
		Address:           clone.Props[PropIP],
		LoopbackInterface: e.LoopbackInterface,
		Nameservers:       e.JailNameservers,
	})
	if err != nil {
		return cfg, reconcile.Terminal(err)
	}
	cfg.Annotations = map[string]string{"image": clone.ImageID, "specHash": clone.SpecHash, "ip": clone.Props[PropIP]}
	return cfg, nil
}

func imageConfig(c zfs.Config) ImageConfig {
	ic := ImageConfig{Entrypoint: c.Entrypoint, Cmd: c.Cmd, User: c.User, Workdir: c.Workdir}
	keys := make([]string, 0, len(c.Env))
	for k := range c.Env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		ic.Env = append(ic.Env, k+"="+c.Env[k])
	}
	return ic
}

// replace stops and destroys the old clone and makes a new one from the
// (possibly new) image, keeping the loopback address. Volumes are separate
// datasets and keep their data. With an update policy (spec.update) the old
// clone is kept aside instead of destroyed, unless it is itself a version on
// trial, and the new one starts its trial (see reconcile.OpConfirm and
// OpRollback).
func (e *Engine) replace(ctx context.Context, a reconcile.Action) error {
	st, err := e.Store.ObserveObjects(ctx, zfs.Objects{Containers: []string{a.Name}})
	if err != nil && !errors.Is(err, zfs.ErrNotFound) {
		return err
	}
	if st == nil {
		st = &zfs.State{}
	}
	address, onTrial, written := "", false, uint64(0)
	for _, c := range st.Containers {
		if c.ContainerName == a.Name {
			address = c.Props[PropIP]
			onTrial = c.Props[zfs.PropUpdateStarted] != ""
			written = c.Used
		}
	}
	if a.Container != nil && a.Container.Spec.Network.Mode != manifests.NetLoopback {
		address = ""
	}
	pol, gated := reconcile.PolicyOf(&a.Container.Spec)
	gated = gated && wantsRunning(a.Container)
	if gated && pol.ProtectWrites && written >= reconcile.WrittenThreshold {
		// The plan read the clone's space before it was written to (a pass
		// that followed actions reads only what they touched, and any plan
		// is a moment old): read now, it is protected. The next pass
		// reads the clone again and holds it (protect-writes).
		return reconcile.Wait(fmt.Sprintf("container %s wrote %s outside volumes since it was planned; spec.update.protectWrites keeps it", a.Name, image.Size(int64(written))))
	}
	if gated && !onTrial {
		if err := e.stop(ctx, a.Name); err != nil {
			return err
		}
		e.updateStep(ctx, a.Name, "stopped")
		// The old version's env values are not in ZFS (only digests are):
		// its supervisor config, root-only in the state directory, has them.
		var env []string
		if cfg, err := supervisor.ReadConfig(e.StateDir, a.Name); err == nil {
			env = cfg.Process.Env
		}
		// The old version's status (its last exit) must not be read as the
		// new version's.
		if err := supervisor.Forget(e.StateDir, a.Name); err != nil {
			e.Log.Warn("forget supervisor state", "container", a.Name, "err", err)
		}
		id, err := e.Store.KeepPrevious(ctx, a.Name)
		if err != nil {
			return err
		}
		if err := e.savePreviousEnv(id, env); err != nil {
			e.Log.Warn("keep the previous version's env for a rollback", "container", a.Name, "err", err)
		}
		e.updateStep(ctx, a.Name, "kept")
	} else if err := e.remove(ctx, a.Name); err != nil {
		return err
	}
	a.Trial = gated
	if err := e.createClone(ctx, a, address); err != nil {
		return err
	}
	if gated {
		e.updateStep(ctx, a.Name, "created")
	}
	if wantsRunning(a.Container) {
		return e.start(ctx, a.Container, a.ImageID)
	}
	return nil
}

func (e *Engine) updateStep(ctx context.Context, name, step string) {
	if e.UpdateStep != nil {
		e.UpdateStep(ctx, name, step)
	}
}

// stop stops the container; its supervisor removes the jail.
func (e *Engine) stop(ctx context.Context, name string) error {
	if err := supervisor.Stop(ctx, e.StateDir, name, e.Driver); err != nil && !errors.Is(err, supervisor.ErrNotFound) {
		return fmt.Errorf("stop container %s: %w", name, err)
	}
	return nil
}

// rollback gives up the current version of a container (a failed trial, or
// nothing after an interrupted update) and brings back its previous clone
// with the previous spec, marking the version given up so that it is not
// tried again.
func (e *Engine) rollback(ctx context.Context, a reconcile.Action) error {
	if len(a.Previous) != 1 || a.Container == nil {
		return reconcile.Terminal(fmt.Errorf("rollback container %s: no previous clone named", a.Name))
	}
	if missing := reconcile.RecoverEnv(a.Container.Spec.Env, e.previousEnv(a.Previous[0])); len(missing) > 0 {
		return reconcile.Terminal(fmt.Errorf("rollback container %s: the previous version's value of %s is not recorded (env values are never stored in ZFS, and the copy in the state directory is gone): declare the version to run", a.Name, strings.Join(missing, ", ")))
	}
	if err := e.remove(ctx, a.Name); err != nil {
		return err
	}
	if err := e.Store.RestorePrevious(ctx, a.Previous[0]); err != nil {
		return err
	}
	e.forgetPreviousEnv(a.Previous[0])
	if a.Failed != "" {
		err := e.Store.SetContainerProps(ctx, a.Name, map[string]string{
			zfs.PropRolledBack: a.Failed, zfs.PropRollbackReason: oneLine(a.Reason, 1000)})
		if err != nil {
			return err
		}
	} else if err := e.Store.ClearContainerProps(ctx, a.Name, zfs.PropRolledBack, zfs.PropRollbackReason); err != nil {
		return err
	}
	e.Log.Warn("rolled back container", "container", a.Name, "reason", a.Reason)
	if wantsRunning(a.Container) {
		return e.start(ctx, a.Container, a.ImageID)
	}
	return nil
}

// confirm ends a good trial: the clone is no longer on trial and the
// previous clones beyond keepPrevious go.
func (e *Engine) confirm(ctx context.Context, a reconcile.Action) error {
	if err := e.Store.ClearContainerProps(ctx, a.Name, zfs.PropUpdateStarted); err != nil {
		return err
	}
	for _, id := range a.Previous {
		if err := e.Store.DestroyPrevious(ctx, id); err != nil && !errors.Is(err, zfs.ErrNotFound) {
			return err
		}
		e.forgetPreviousEnv(id)
	}
	return nil
}

// previousEnvPath is where the env of a previous clone's last run is kept:
// root-only, in the state directory (it holds secrets; ZFS properties are
// world-readable).
func (e *Engine) previousEnvPath(id string) string {
	return filepath.Join(e.StateDir, "previous", id+".env.json")
}

func (e *Engine) savePreviousEnv(id string, env []string) error {
	if len(env) == 0 {
		return nil
	}
	b, err := json.Marshal(env)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(e.previousEnvPath(id)), 0o700); err != nil {
		return err
	}
	return atomicfile.Write(e.previousEnvPath(id), b, 0o600)
}

// previousEnv returns the saved env of a previous clone as a map (empty
// when none was saved).
func (e *Engine) previousEnv(id string) map[string]string {
	env := map[string]string{}
	b, err := os.ReadFile(e.previousEnvPath(id))
	if err != nil {
		return env
	}
	var list []string
	if json.Unmarshal(b, &list) != nil {
		return env
	}
	for _, kv := range list {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	return env
}

func (e *Engine) forgetPreviousEnv(id string) {
	if err := os.Remove(e.previousEnvPath(id)); err != nil && !os.IsNotExist(err) {
		e.Log.Warn("remove the saved env of a previous clone", "dataset", id, "err", err)
	}
}

// removePrevious destroys every previous clone of a pruned container.
func (e *Engine) removePrevious(ctx context.Context, name string) error {
	st, err := e.Store.Observe(ctx)
	if err != nil {
		return err
	}
	for _, pc := range st.Previous {
		if pc.ContainerName != name {
			continue
		}
		if err := e.Store.DestroyPrevious(ctx, pc.PreviousID); err != nil && !errors.Is(err, zfs.ErrNotFound) {
			return err
		}
		e.forgetPreviousEnv(pc.PreviousID)
	}
	return nil
}

// oneLine makes s fit a ZFS user property: one line of at most n bytes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n]
	}
	return s
}

// remove stops the container (its supervisor removes the jail) and destroys
// its clone.
func (e *Engine) remove(ctx context.Context, name string) error {
	if err := e.stop(ctx, name); err != nil {
		return err
	}
	if err := e.Store.DestroyContainer(ctx, name); err != nil && !errors.Is(err, zfs.ErrNotFound) {
		return err // it says "destroy container NAME: ..." (once, F14)
	}
	if err := supervisor.Forget(e.StateDir, name); err != nil {
		e.Log.Warn("forget supervisor state", "container", name, "err", err)
	}
	return nil
}
