package reconcile

// The decide/act contract: what a plan is made of (Op, Action, Blocked,
// Plan), the interfaces the engine implements to observe and act (Observer,
// Executor), and the error classes an action reports (TerminalError,
// WaitError). The engine imports reconcile for exactly these.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/manifests"
)

// Op is what an Action does.
type Op string

// Operations a plan may contain.
const (
	// OpImport imports a tarball Image (fetching it first for a URL).
	OpImport Op = "import"
	// OpBuild builds an Image from its Zockerfile.
	OpBuild Op = "build"
	// OpPull pulls an Image from its repository.
	OpPull Op = "pull"
	// OpCreateVolume creates a Volume's dataset.
	OpCreateVolume Op = "create-volume"
	// OpUpdateVolume sets a Volume's quota, properties or reclaim policy.
	OpUpdateVolume Op = "update-volume"
	// OpCreate clones the image for a Container and, when its state is
	// Running, starts it.
	OpCreate Op = "create"
	// OpStart starts an existing Container that should run and does not.
	OpStart Op = "start"
	// OpStop stops a Container that runs and should not.
	OpStop Op = "stop"
	// OpReplace stops, destroys and re-clones a Container whose spec hash or
	// image changed, then starts it when its state is Running. Its Volumes
	// keep their data.
	OpReplace Op = "replace"
	// OpPrune stops and destroys a managed Container no manifest declares.
	OpPrune Op = "prune"
	// OpDestroyVolume destroys a managed Volume with reclaimPolicy Delete
	// that no manifest declares.
	OpDestroyVolume Op = "destroy-volume"
)

// Ops returns every operation, in the order above.
func Ops() []Op {
	return []Op{OpImport, OpBuild, OpPull, OpCreateVolume, OpUpdateVolume, OpCreate, OpStart, OpStop, OpReplace, OpPrune, OpDestroyVolume}
}

// Reasons a Blocked entry gives (stable: they are metric label values).
const (
	// BlockedEmptyManifests: the manifest set is empty or missing while
	// managed objects exist, and AllowEmpty is off.
	BlockedEmptyManifests = "empty-manifests"
	// BlockedMaxPrune: the pass would prune more containers and destroy
	// more volumes, together, than MaxPrune.
	BlockedMaxPrune = "max-prune"
	// BlockedWaitingForImage: the container's image is being made or absent.
	BlockedWaitingForImage = "waiting-for-image"
	// BlockedWaitingForDependency: a dependsOn container neither runs nor is
	// about to be started.
	BlockedWaitingForDependency = "waiting-for-dependency"
	// BlockedInvalidManifest: the file that declared the object failed to
	// load; the object keeps its last applied spec.
	BlockedInvalidManifest = "invalid-manifest"
	// BlockedDuplicate: the name is declared more than once.
	BlockedDuplicate = "duplicate"
	// BlockedNameConflict: the name is held by a dataset or jail this
	// service does not manage.
	BlockedNameConflict = "name-conflict"
	// BlockedMissingVolume: a mounted Volume is neither declared nor present.
	BlockedMissingVolume = "missing-volume"
	// BlockedOutsideSelection: the action needs an action on an object
	// outside Options.Only, which the pass does not take.
	BlockedOutsideSelection = "outside-selection"
	// BlockedVolumeInUse: a Volume to destroy is still mounted by a container
	// that stays.
	BlockedVolumeInUse = "volume-in-use"
)

// DefaultMaxPrune is the most containers plus volumes one pass prunes unless
// told otherwise.
const DefaultMaxPrune = 5

// Options are the guards a caller sets on planning.
type Options struct {
	// AllowEmpty lets an empty or missing manifest set prune managed objects.
	AllowEmpty bool
	// MaxPrune is the most containers one pass may prune; above it nothing is
	// pruned. 0 means DefaultMaxPrune, a negative value means no limit.
	MaxPrune int
	// Now is the time of the pass: health-gated updates are judged against
	// it. The zero time judges every trial as just started.
	Now time.Time
	// Only, when set, restricts the plan to these object keys (apply FILE,
	// plan FILE): nothing else is acted on and nothing is pruned, whatever
	// the rest of the set says.
	Only map[string]bool
}

// Plan is the ordered list of actions one pass takes, and what it holds back.
type Plan struct {
	// Actions in execution order: images, volume creation and updates,
	// container stops and prunes (dependents first), container creates,
	// replaces and starts (dependencies first), volume destruction.
	Actions []Action `json:"actions"`
	// Blocked are the changes held back and why, sorted by kind and name.
	Blocked []Blocked `json:"blocked"`
	// InSync is true when there is nothing to do and nothing held back.
	InSync bool `json:"inSync"`
	// Revision is the manifest revision the plan was computed from.
	Revision string `json:"revision,omitempty"`
	// Partial is true when the plan was restricted to some objects
	// (Options.Only): it prunes nothing.
	Partial bool `json:"partial,omitempty"`
}

// Action is one step of a plan, with what the executor needs to take it.
type Action struct {
	// Kind is manifests.KindImage, KindContainer or KindVolume.
	Kind string `json:"kind"`
	Name string `json:"name"`
	Op   Op     `json:"op"`
	// Reason says why, for people ("spec.command changed", "not running").
	Reason string `json:"reason"`
	// DependsOn lists the keys (see Key) of actions in this plan that must
	// succeed before this one runs.
	DependsOn []string `json:"dependsOn,omitempty"`
	// ImageID is, for container create and replace, the image to clone.
	ImageID string `json:"imageID,omitempty"`
	// SpecHash is, for container actions other than prune, the desired spec
	// hash: create and replace record it in zocker:spec-hash (with
	// AppliedSpec(Container) in zocker:spec).
	SpecHash string `json:"specHash,omitempty"`
	// Inputs is, for image actions, the inputs digest the result must carry.
	Inputs string `json:"inputs,omitempty"`
	// Manifest is the value for zocker:manifest (see ManifestRef).
	Manifest string `json:"manifest,omitempty"`
	// Container is the container to create, replace, start or stop: from the
	// manifests, or rebuilt from its applied spec when its file is broken.
	// Nil for prunes.
	Container *manifests.Container `json:"-"`
	// Previous names previous clones (ObservedPrevious.ID): the one a
	// rollback restores, or those a confirm prunes.
	Previous []string `json:"previous,omitempty"`
	// Trial is set by the executor on a replacement that starts a
	// health-gated trial (never by Diff).
	Trial bool `json:"-"`
	// Failed is, for a rollback, the spec hash of the version given up
	// (recorded so that it is not tried again); "" after an interruption.
	Failed string `json:"failed,omitempty"`
	// Image is the declared Image for image actions.
	Image *manifests.Image `json:"-"`
	// Volume is the declared Volume for volume creation and updates.
	Volume *manifests.Volume `json:"-"`
}

// Key is the action's object key, "Kind/name".
func (a Action) Key() string { return Key(a.Kind, a.Name) }

// Generation identifies the desired spec the action works towards, so that
// a work queue can hold a terminally failed key until the spec changes: the
// spec hash for containers, a digest of the spec (and inputs) for images and
// volumes, the op for prunes.
func (a Action) Generation() string {
	var v any
	switch {
	case a.SpecHash != "":
		return a.SpecHash
	case a.Image != nil:
		v = struct {
			Spec   manifests.ImageSpec
			Inputs string
		}{a.Image.Spec, a.Inputs}
	case a.Volume != nil:
		v = a.Volume.Spec
	default:
		return string(a.Op)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return string(a.Op)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// String is the action in short form, "replace container/web: spec.command changed".
func (a Action) String() string {
	return fmt.Sprintf("%s %s/%s: %s", a.Op, strings.ToLower(a.Kind), a.Name, a.Reason)
}

// Blocked is a change held back, or an object that cannot converge, and why.
type Blocked struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
	// Op is the operation held back, when there is one ("prune").
	Op Op `json:"op,omitempty"`
	// Reason is one of the Blocked* codes.
	Reason string `json:"reason"`
	// Message explains it for people.
	Message string `json:"message"`
}

// Key is the blocked object's key, "Kind/name".
func (b Blocked) Key() string { return Key(b.Kind, b.Name) }

// String is the short form, "blocked prune container/web: max-prune".
func (b Blocked) String() string {
	op := string(b.Op)
	if op == "" {
		op = "hold"
	}
	return fmt.Sprintf("blocked %s %s/%s: %s", op, strings.ToLower(b.Kind), b.Name, b.Reason)
}

// Waiting is true for reasons that are expected to clear by themselves as
// the plan proceeds (an image being made, a dependency starting): they are
// not failures and must not count as such.
func (b Blocked) Waiting() bool {
	return b.Reason == BlockedWaitingForImage || b.Reason == BlockedWaitingForDependency || b.Reason == BlockedUpdating
}

// Settled is true for outcomes that no pass will change until the manifests
// or the image change (a rolled-back version): they are reported, and the
// plan is still in sync.
func (b Blocked) Settled() bool { return b.Reason == BlockedRolledBack }

// Guard is true for prunes held back by the empty-manifests or max-prune
// guard: a deliberate refusal, not an object failure.
func (b Blocked) Guard() bool {
	return b.Reason == BlockedEmptyManifests || b.Reason == BlockedMaxPrune || b.Reason == BlockedVolumeInUse
}

// ExitCode is the `plan` command's exit status: 0 when in sync, 2 when
// changes are pending or held back. (1, an error, is the caller's.)
func (p Plan) ExitCode() int {
	if p.InSync {
		return 0
	}
	return 2
}

// Observer reads the actual state: one zfs get and one jail listing.
type Observer interface {
	Observe(ctx context.Context) (Observed, error)
}

// Executor takes one planned action on the host.
type Executor interface {
	Execute(ctx context.Context, a Action) error
}

// TerminalError marks an error that retrying cannot fix (an invalid spec, an
// image that does not exist). The key is not retried until its Generation
// changes.
type TerminalError struct{ Err error }

// Terminal wraps err as a TerminalError (nil stays nil).
func Terminal(err error) error {
	if err == nil {
		return nil
	}
	return &TerminalError{Err: err}
}

// Error returns the wrapped error's message.
func (e *TerminalError) Error() string { return e.Err.Error() }

// Unwrap returns the wrapped error.
func (e *TerminalError) Unwrap() error { return e.Err }

// IsTerminal reports whether err is, or wraps, a TerminalError.
func IsTerminal(err error) bool {
	var t *TerminalError
	return errors.As(err, &t)
}

// WaitError is the outcome "not yet, and not a failure": an image that is
// not ready, a dependency that failed or is backing off. The key is checked
// again at the next pass and its backoff does not grow.
type WaitError struct{ Reason string }

// Wait returns a WaitError with the given reason.
func Wait(reason string) error { return &WaitError{Reason: reason} }

// Error returns "waiting: " and the reason.
func (e *WaitError) Error() string { return "waiting: " + e.Reason }

// IsWait reports whether err is, or wraps, a WaitError.
func IsWait(err error) bool {
	var w *WaitError
	return errors.As(err, &w)
}
