package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/engine/supervisor"
	"github.com/zocker-reconcile/zocker-reconcile/engine/zfs"
	"github.com/zocker-reconcile/zocker-reconcile/image"
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
	st, err := e.Store.Observe(ctx)
	if err != nil {
		return "", fmt.Errorf("create container %s: %w", name, err)
	}
	for _, oc := range st.Containers {
		if oc.ContainerName == name {
			return "", fmt.Errorf("create container %s: the name is in use by %s", name, describeOwner(oc))
		}
	}
	// A jail of that name made by someone else (Bastille, iocage, by hand)
	// would make the start fail later: say so now.
	if jails, err := e.Driver.List(ctx); err == nil {
		for _, j := range jails {
			if j.Name == name {
				return "", fmt.Errorf("create container %s: the name is in use by jail %d", name, j.JID)
			}
		}
	}
	imageID, err = st.Resolve(c.Spec.Image)
	if err != nil {
		return "", fmt.Errorf("create container %s: %w", name, err)
	}
	// Volumes must exist now: run never creates a managed Volume.
	for i, v := range c.Spec.Volumes {
		if v.Volume == "" {
			continue
		}
		found := false
		for _, ov := range st.Volumes {
			found = found || ov.VolumeName == v.Volume
		}
		if !found {
			return "", fmt.Errorf("create container %s: volume %d: volume %s does not exist (declare it in a manifest, or give a host path)", name, i+1, v.Volume)
		}
	}
	spec, err := reconcile.AppliedSpec(c)
	if err != nil {
		return "", err
	}
	props := map[string]string{zfs.PropOrigin: zfs.OriginCLI, zfs.PropSpec: spec}
	if err := e.cloneFor(ctx, c, imageID, props, ""); err != nil {
		return "", err
	}
	return imageID, nil
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
	st, err := e.Store.Observe(ctx)
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
		c, err := reconcile.DecodeAppliedSpec(name, oc.Spec)
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
	// done for good (run -d --rm); the hidden supervise command does it.
	AnnotationRemove = "removeWhenDone"
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
