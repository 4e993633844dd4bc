package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/engine/supervisor"
	"github.com/zocker-reconcile/zocker-reconcile/engine/zfs"
	"github.com/zocker-reconcile/zocker-reconcile/image"
	"github.com/zocker-reconcile/zocker-reconcile/internal/atomicfile"
	"github.com/zocker-reconcile/zocker-reconcile/manifests"
	"github.com/zocker-reconcile/zocker-reconcile/reconcile"
)

// Ad-hoc containers are the ones Zocker's own commands make (run, create)
// beside the declared ones. Their clone carries zocker:origin=cli and their
// spec in zocker:spec, in the manifests' form; the reconciler never sees them
// (Convert hands them over as names held by someone else), so it never
// changes, restarts, stops or prunes one, and a manifest declaring the same
// name is Stalled instead of taking it over.

// ErrDeclared is returned (wrapped) when an ad-hoc command is aimed at a
// container the reconciler manages.
var ErrDeclared = errors.New("declared in the manifests")

// HolderRun is how the reconciler names what holds a cli container's name.
const HolderRun = reconcile.HolderRun

// IsAdHoc tells whether a container dataset was made by run or create.
func IsAdHoc(c zfs.Container) bool { return c.Props[zfs.PropOrigin] == zfs.OriginCLI }

// NewAdHocName returns a name for a container run without -n: run-<8 hex>.
func NewAdHocName() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "run-" + hex.EncodeToString(b[:])
}

// CreateAdHoc clones the image c.Spec.Image (a tag or an ID) for the ad-hoc
// container c, recording its spec. c must have passed
// manifests.CheckContainer. Nothing is started.
func (e *Engine) CreateAdHoc(ctx context.Context, c *manifests.Container) (imageID string, err error) {
	name := c.Metadata.Name
	// Targeted reads only (the image, the volumes): the cost of run and
	// create must not grow with the number of containers (issue 15). That
	// the name is free, the store's clone checks (and inUse says who holds
	// it): one command, not two.
	// A jail of that name made by someone else (Bastille, iocage, by hand)
	// would make the start fail later: say so now.
	if jails, err := e.Driver.List(ctx); err == nil {
		for _, j := range jails {
			if j.Name == name {
				return "", e.inUse(ctx, name, fmt.Errorf("the name is in use by jail %d", j.JID))
			}
		}
	}
	imageID, err = e.Store.ResolveRef(ctx, c.Spec.Image)
	if err != nil {
		return "", fmt.Errorf("create container %s: %w", name, err)
	}
	// Volumes must exist now: run never creates a managed Volume.
	for i, v := range c.Spec.Volumes {
		if v.Volume == "" {
			continue
		}
		_, err := e.Store.ObserveObjects(ctx, zfs.Objects{Volumes: []string{v.Volume}})
		if errors.Is(err, zfs.ErrNotFound) {
			return "", fmt.Errorf("create container %s: volume %d: volume %s does not exist (declare it in a manifest, or give a host path)", name, i+1, v.Volume)
		}
		if err != nil {
			return "", fmt.Errorf("create container %s: %w", name, err)
		}
	}
	spec, err := reconcile.AppliedSpec(c)
	if err != nil {
		return "", err
	}
	props := map[string]string{zfs.PropOrigin: zfs.OriginCLI, zfs.PropSpec: spec}
	if err := e.cloneFor(ctx, c, imageID, props, ""); err != nil {
		if errors.Is(err, zfs.ErrExists) {
			return "", e.inUse(ctx, name, fmt.Errorf("the name is in use: %w", err))
		}
		return "", err
	}
	e.lastMu.Lock()
	if e.made == nil {
		e.made = map[string]zfs.Objects{}
	}
	e.made[name] = zfs.Objects{Images: []string{imageID}, Volumes: volumesOf(c)}
	e.lastMu.Unlock()
	if err := e.writeAdHocSpec(c); err != nil {
		if rerr := e.remove(context.WithoutCancel(ctx), name); rerr != nil {
			e.Log.Warn("remove the container whose spec could not be kept", "container", name, "err", rerr)
		}
		return "", err
	}
	return imageID, nil
}

// adHocSpecPath is where an ad-hoc container's spec is kept with its env
// values: a root-only file in the state directory, because zocker:spec holds
// only digests of them (ZFS properties are readable by every local user).
// rm removes it with the container's other runtime files.
func (e *Engine) adHocSpecPath(name string) string {
	return filepath.Join(supervisor.Dir(e.StateDir, name), "spec.json")
}

func (e *Engine) writeAdHocSpec(c *manifests.Container) error {
	name := c.Metadata.Name
	b, err := json.Marshal(reconcile.NormalizeSpec(c))
	if err != nil {
		return fmt.Errorf("create container %s: %w", name, err)
	}
	if err := os.MkdirAll(supervisor.Dir(e.StateDir, name), 0o750); err != nil {
		return fmt.Errorf("create container %s: %w", name, err)
	}
	if err := atomicfile.Write(e.adHocSpecPath(name), b, 0o600); err != nil {
		return fmt.Errorf("create container %s: keep its spec: %w", name, err)
	}
	return nil
}

// adHocSpec returns the spec of ad-hoc container name: the kept file, else
// (the state directory was wiped, by a reboot say) zocker:spec, which is
// refused when it has env values: only their digests are there.
func (e *Engine) adHocSpec(name, applied string) (*manifests.Container, error) {
	b, err := os.ReadFile(e.adHocSpecPath(name))
	if err == nil {
		c := &manifests.Container{
			TypeMeta: manifests.TypeMeta{APIVersion: manifests.APIVersion, Kind: manifests.KindContainer},
			Metadata: manifests.ObjectMeta{Name: name},
		}
		if err := json.Unmarshal(b, &c.Spec); err != nil {
			return nil, fmt.Errorf("container %s: read %s: %w", name, e.adHocSpecPath(name), err)
		}
		c.Spec = reconcile.NormalizeSpec(c)
		return c, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("container %s: %w", name, err)
	}
	c, err := reconcile.DecodeAppliedSpec(name, applied)
	if err != nil {
		return nil, err
	}
	for k, v := range c.Spec.Env {
		if reconcile.IsEnvDigest(v) {
			return nil, fmt.Errorf("container %s: the value of its env %s was kept in %s, which is gone (a reboot?): rm it and run it again", name, k, e.adHocSpecPath(name))
		}
	}
	return c, nil
}

// inUse is the error of a create whose name is taken: the container that
// holds it (declared in a manifest, made with run), else what found it
// taken (err: a jail of that name, a dataset that is not a container).
func (e *Engine) inUse(ctx context.Context, name string, err error) error {
	st, rerr := e.Store.ObserveObjects(ctx, zfs.Objects{Containers: []string{name}})
	if rerr == nil {
		for _, oc := range st.Containers {
			if oc.ContainerName == name {
				return fmt.Errorf("create container %s: the name is in use by %s", name, describeOwner(oc))
			}
		}
	}
	return fmt.Errorf("create container %s: %w", name, err)
}

// volumesOf is the Volumes c mounts.
func volumesOf(c *manifests.Container) []string {
	var vols []string
	for _, m := range c.Spec.Volumes {
		if m.Volume != "" {
			vols = append(vols, m.Volume)
		}
	}
	return vols
}

func describeOwner(c zfs.Container) string {
	switch {
	case IsAdHoc(c):
		return HolderRun
	case c.Manifest != "":
		return "the container declared in " + c.Manifest
	}
	return "container " + c.ContainerName
}

// adHoc finds the ad-hoc container name and its spec, refusing a declared
// one with the manifest file that declares it.
func (e *Engine) adHoc(ctx context.Context, name string) (*zfs.State, *zfs.Container, *manifests.Container, error) {
	if err := image.ValidName("container", name); err != nil {
		return nil, nil, nil, err
	}
	// A container this engine has just made (run) is read with its image
	// and volumes, in one command.
	e.lastMu.Lock()
	objs := e.made[name]
	e.lastMu.Unlock()
	objs.Containers = []string{name}
	st, err := e.Store.ObserveObjects(ctx, objs)
	if errors.Is(err, zfs.ErrNotFound) && len(objs.Images)+len(objs.Volumes) > 0 {
		// One of them is gone since: the container alone, as for any other.
		st, err = e.Store.ObserveObjects(ctx, zfs.Objects{Containers: []string{name}})
	}
	if errors.Is(err, zfs.ErrNotFound) {
		return nil, nil, nil, fmt.Errorf("container %s: %w", name, zfs.ErrNotFound)
	}
	if err != nil {
		return nil, nil, nil, err
	}
	for i := range st.Containers {
		oc := &st.Containers[i]
		if oc.ContainerName != name {
			continue
		}
		if !IsAdHoc(*oc) {
			if oc.Manifest != "" {
				return nil, nil, nil, fmt.Errorf("container %s is declared in %s: change or remove it there, the service converges on it: %w", name, oc.Manifest, ErrDeclared)
			}
			return nil, nil, nil, fmt.Errorf("container %s was not made with run or create: %w", name, ErrDeclared)
		}
		c, err := e.adHocSpec(name, oc.Spec)
		if err != nil {
			return nil, nil, nil, err
		}
		return st, oc, c, nil
	}
	return nil, nil, nil, fmt.Errorf("container %s: %w", name, zfs.ErrNotFound)
}

// AdHocConfig is the supervisor config of the ad-hoc container name: its
// recorded spec over its image's config. Its supervisor exits once the
// command is done for good (supervisor.Config.ExitWhenDone).
func (e *Engine) AdHocConfig(ctx context.Context, name string) (supervisor.Config, error) {
	st, clone, c, err := e.adHoc(ctx, name)
	if err != nil {
		return supervisor.Config{}, err
	}
	// The clone's image and volumes, read by name as well (unless read
	// with the clone).
	var objs zfs.Objects
	if _, ok := st.Image(clone.ImageID); !ok && clone.ImageID != "" {
		objs.Images = []string{clone.ImageID}
	}
	for _, v := range volumesOf(c) {
		if !slices.ContainsFunc(st.Volumes, func(sv zfs.Volume) bool { return sv.VolumeName == v }) {
			objs.Volumes = volumesOf(c)
			break
		}
	}
	if len(objs.Images)+len(objs.Volumes) > 0 {
		more, err := e.Store.ObserveObjects(ctx, objs)
		if err != nil && !errors.Is(err, zfs.ErrNotFound) {
			return supervisor.Config{}, err
		}
		if err == nil {
			st.Images, st.Volumes = more.Images, more.Volumes
		}
	}
	// Something missing is for supervisorConfig to name.
	cfg, err := e.supervisorConfig(st, clone, c)
	if err != nil {
		return cfg, err
	}
	cfg.ExitWhenDone = true
	cfg.Annotations["origin"] = zfs.OriginCLI
	return cfg, nil
}

// Annotations of an ad-hoc container's supervisor config.
const (
	// AnnotationRemove "true": remove the container once its command is
	// done for good (run -d --rm); the supervisor has it done when it exits.
	AnnotationRemove = supervisor.AnnotationRemove
	// AnnotationRoot is the root dataset the container lives under.
	AnnotationRoot = "root"
)

// StartAdHoc starts the ad-hoc container name under its own detached
// supervisor, with its restart policy, and returns the supervisor's pid.
// With remove the container is destroyed once its command is done for good.
func (e *Engine) StartAdHoc(ctx context.Context, name string, remove bool) (int, error) {
	cfg, err := e.AdHocConfig(ctx, name)
	if err != nil {
		return 0, err
	}
	cfg.Annotations[AnnotationRoot] = e.Store.Root()
	if remove {
		cfg.Annotations[AnnotationRemove] = "true"
	}
	pid, err := supervisor.Start(ctx, e.StateDir, name, e.Self, cfg)
	if err != nil {
		return 0, err
	}
	e.Log.Info("started container", "container", name, "pid", pid)
	return pid, nil
}

// RunAdHoc runs the ad-hoc container name once in this process with its
// standard streams on stdio (supervisor.RunAttached) and returns the
// command's exit code.
func (e *Engine) RunAdHoc(ctx context.Context, name string, stdio supervisor.Stdio) (int, error) {
	cfg, err := e.AdHocConfig(ctx, name)
	if err != nil {
		return 0, err
	}
	return supervisor.RunAttached(ctx, e.StateDir, name, cfg, e.Driver, stdio, e.Log)
}

// StopAdHoc stops the ad-hoc container name. timeout > 0 replaces its stop
// timeout for this stop (stop -t).
func (e *Engine) StopAdHoc(ctx context.Context, name string, timeout time.Duration) error {
	if _, _, _, err := e.adHoc(ctx, name); err != nil {
		return err
	}
	if timeout > 0 {
		if err := supervisor.SetStopTimeout(e.StateDir, name, timeout); err != nil && !errors.Is(err, supervisor.ErrNotFound) {
			return err
		}
	}
	if err := supervisor.Stop(ctx, e.StateDir, name, e.Driver); err != nil && !errors.Is(err, supervisor.ErrNotFound) {
		return err
	}
	return nil
}

// ErrRunning is returned (wrapped) by RemoveAdHoc for a running container
// when force is false.
var ErrRunning = errors.New("the container is running")

// RemoveAdHoc stops (with force) and destroys the ad-hoc container name: its
// jail, clone and runtime files.
func (e *Engine) RemoveAdHoc(ctx context.Context, name string, force bool) error {
	if _, _, _, err := e.adHoc(ctx, name); err != nil {
		return err
	}
	st, err := supervisor.Get(e.StateDir, name)
	if err == nil && st.Alive && !force {
		return fmt.Errorf("remove container %s: %w (state %s): stop it first, or use rm -f", name, ErrRunning, st.State)
	}
	return e.remove(ctx, name)
}

// refuseAdHoc is the reconciler's last guard before it stops, replaces or
// prunes container name: a container made with run since the pass observed
// is never touched. The planner never asks for it (Convert hides them); this
// covers a run between the observation and the action.
func (e *Engine) refuseAdHoc(ctx context.Context, name string) error {
	st, err := e.Store.Observe(ctx)
	if err != nil {
		return err
	}
	for _, c := range st.Containers {
		if c.ContainerName == name && IsAdHoc(c) {
			return reconcile.Terminal(fmt.Errorf("container %s: name in use by %s: not touched", name, HolderRun))
		}
	}
	return nil
}
