// Package reconcile decides: it turns a loaded manifest set and the
// observed ZFS + jail state into a plan of actions (Observed, Desired, Diff,
// the spec hash, the safety rules, plan rendering), and holds the
// decide/act contract (action.go) the engine implements. It does no I/O: it
// works on values only, so it is table-tested and benchmarked without ZFS
// or jails. The loop that runs the plans is package controller. It is over
// the house's 1,500 lines because every safety rule of the plan (prune
// guards, health-gated updates, secrets) is part of one decision.
package reconcile

import (
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/manifests"
)

// Health values an ObservedContainer may report (from its supervisor).
const (
	HealthNone      = ""          // no health check declared
	HealthStarting  = "starting"  // checks not yet conclusive
	HealthHealthy   = "healthy"   // last checks passed
	HealthUnhealthy = "unhealthy" // retries exhausted
)

// Observed is the actual state under the root dataset plus the jails on the
// host, as the engine glue read it in one pass. Maps are keyed by name (or
// by ID for Images); nil maps are treated as empty.
type Observed struct {
	// Images are the image datasets, by ID.
	Images map[string]ObservedImage
	// Tags maps an image tag to the ID it points at.
	Tags map[string]string
	// Containers are the container datasets (managed or not) and their
	// runtime state, by name.
	Containers map[string]ObservedContainer
	// Volumes are the volume datasets (managed or not), by name.
	Volumes map[string]ObservedVolume
	// Foreign maps container names (jail names) held by something this
	// service did not make, such as a Bastille or iocage jail, to a short
	// description of the holder ("jail 12 (bastille)"). A declared Container
	// with such a name is an error on that object: it is never taken over.
	// Unmanaged datasets under the root appear in Containers and Volumes
	// with Managed false and are treated the same way.
	Foreign map[string]string
	// Previous are the kept previous clones of containers, by container
	// name, oldest first.
	Previous map[string][]ObservedPrevious
}

// HolderRun is the Foreign description of a name held by an ad-hoc
// container (made by run or create, zocker:origin=cli): the reconciler never
// touches one, and a declared Container of that name is Stalled with
// "name in use by a container made with run".
const HolderRun = "a container made with run"

// ObservedImage is one image dataset.
type ObservedImage struct {
	// ID is the image's content address.
	ID string
	// Tags are the names pointing at this image.
	Tags []string
	// Inputs is the digest of what the image was made from (tarball sha256,
	// build inputs hash, or the remote ID for pulls), from its ZFS property.
	// Comparing it with Desired.ImageInputs says whether an image is current.
	Inputs string
}

// ObservedContainer is one container dataset and its runtime state.
type ObservedContainer struct {
	Name string
	// Managed is true when zocker:managed says this service owns the dataset.
	// Unmanaged containers are never stopped, replaced or pruned.
	Managed bool
	// Manifest is zocker:manifest: the manifest file that declared it, as
	// ManifestRef wrote it (relative to the manifest root).
	Manifest string
	// SpecHash is zocker:spec-hash, the SpecHash the clone was made for.
	SpecHash string
	// Spec is zocker:spec, the applied spec as JSON (see AppliedSpec). It
	// lets a container outlive a broken manifest file with its last spec.
	Spec string
	// ImageID is zocker:image, the image the clone was made from.
	ImageID string
	// Exists is true when the container's dataset exists.
	Exists bool
	// Running is true when its supervisor is alive and its state is running
	// or backing off between restarts.
	Running bool
	// Health is one of the Health* values.
	Health string
	// HealthOutput is the last health check's output (truncated).
	HealthOutput string
	// Restarts counts the command's restarts since its supervisor started,
	// and Exited is true once it exited at least once (LastExitCode then
	// holds the code, 128+N for signal N).
	Restarts     int
	Exited       bool
	LastExitCode int
	// Written is what the container wrote into its clone, outside its
	// volumes (the clone's own space), in bytes.
	Written int64
	// UpdateStarted is when this clone was made by a health-gated update
	// still on trial (zocker:update-started); zero otherwise.
	UpdateStarted time.Time
	// RolledBack is the spec hash of a version that failed its trial and
	// was rolled back to this clone (zocker:rolled-back), RollbackReason
	// the evidence.
	RolledBack     string
	RollbackReason string
	// Runtime is the rest of what the supervisor last reported. The plan
	// does not use it (restarting is the supervisor's job); the status
	// does, to say why a running container is not Ready.
	Runtime ContainerRuntime
}

// ContainerRuntime is the part of a supervisor's report that only the status
// uses (with ObservedContainer's Restarts, Exited, LastExitCode and
// HealthOutput).
type ContainerRuntime struct {
	// State is the supervisor's state (starting, running, exited, backoff,
	// stopped, failed, or dead when the supervisor died); "" when none runs.
	State      string
	LastSignal string
	// NextStartAt is when a command in backoff starts again.
	NextStartAt time.Time
	// Message is the supervisor's explanation (a start failure).
	Message string
	// HealthStreak and HealthExitCode describe the failing health checks.
	HealthStreak   int
	HealthExitCode int
}

// ObservedVolume is one volume dataset.
type ObservedVolume struct {
	Name    string
	Managed bool
	// Manifest is zocker:manifest (see ObservedContainer.Manifest).
	Manifest string
	// Quota is the ZFS quota in bytes (zfs get -p); 0 means none.
	Quota int64
	// Properties holds the current values of the ZFS properties the
	// manifests set on volumes (only those need be observed).
	Properties map[string]string
	// ReclaimPolicy is zocker:reclaim-policy as applied.
	ReclaimPolicy string
}

// Desired is the loaded manifest set plus what the caller had to do I/O to
// learn about the declared images.
type Desired struct {
	// Set is the loaded manifest directory; nil is an empty, missing one.
	Set *manifests.Set
	// ImageInputs maps an Image's name to the digest of its inputs (tarball
	// sha256, build inputs hash). Empty when it could not be computed yet
	// (an unreachable URL, a pull image not yet resolved).
	ImageInputs map[string]string
	// RemoteIDs maps a pull Image's name to the image ID its remote tag
	// points at, when known.
	RemoteIDs map[string]string
	// RemoteSigners maps a pull Image's name to who signed its remote tag,
	// when a signature policy verified it (plan shows it).
	RemoteSigners map[string]string
	// MissingInputs maps a tarball Image's name to why its archive cannot
	// be read (a path that does not exist): its import is held, not
	// planned to fail.
	MissingInputs map[string]string
	// MissingHostPaths maps a Container's name to the hostPath source of
	// one of its volumes that does not exist: its create, replace or start
	// is held, not planned to fail.
	MissingHostPaths map[string]string
	// BuildBases maps a build Image's name to the image its Zockerfile
	// starts FROM; when that is a declared Image being made in the same
	// pass, the build waits for it.
	BuildBases map[string]string
}

// Key is the identity of an object across the manifests, the plan, the work
// queue and the status: "Kind/name" (the form manifests.Set uses).
func Key(kind, name string) string { return kind + "/" + name }

// ObjectAttr names an object in a log line under the house's fixed keys:
// container=web, image=bb, volume=data; an unknown kind logs as key=Kind/name.
func ObjectAttr(kind, name string) slog.Attr {
	switch kind {
	case manifests.KindContainer:
		return slog.String("container", name)
	case manifests.KindImage:
		return slog.String("image", name)
	case manifests.KindVolume:
		return slog.String("volume", name)
	}
	return slog.String("key", Key(kind, name))
}

// KeyAttr is ObjectAttr for a key made by Key; any other key logs as key=...
func KeyAttr(key string) slog.Attr {
	if kind, name, ok := strings.Cut(key, "/"); ok {
		return ObjectAttr(kind, name)
	}
	return slog.String("key", key)
}

// ManifestRef is the value to store in zocker:manifest for an object
// declared in file: the file's path relative to the manifest root the set was
// read through. It is relative on purpose: a git-sync swap moves the resolved
// root to a new worktree directory, and the same file must still match.
func ManifestRef(set *manifests.Set, file string) string {
	if set == nil || file == "" {
		return file
	}
	for _, root := range []string{set.Resolved, set.Root} {
		if root == "" || !filepath.IsAbs(file) {
			continue
		}
		if rel, err := filepath.Rel(root, file); err == nil && rel != "." && !strings.HasPrefix(rel, "..") {
			return filepath.ToSlash(rel)
		}
	}
	return filepath.ToSlash(file)
}
