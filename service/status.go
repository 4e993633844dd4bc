package service

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/engine"
	"github.com/zocker-reconcile/zocker-reconcile/engine/supervisor"
	"github.com/zocker-reconcile/zocker-reconcile/manifests"
	"github.com/zocker-reconcile/zocker-reconcile/reconcile"
)

// emptySet stands for a missing manifest set.
var emptySet = &manifests.Set{}

// ConditionType names one of an object's conditions.
type ConditionType string

// The conditions every object carries, in this order.
const (
	// ConditionReady: the object is as declared (and running and healthy,
	// for a container that should run).
	ConditionReady ConditionType = "Ready"
	// ConditionReconciling: work on the object is planned, in flight, being
	// retried, or waiting for something that is itself converging.
	ConditionReconciling ConditionType = "Reconciling"
	// ConditionStalled: the object cannot converge without a change by a
	// person (invalid or duplicate manifest, name conflict, terminal error,
	// a guarded prune).
	ConditionStalled ConditionType = "Stalled"
)

var conditionTypes = [...]ConditionType{ConditionReady, ConditionReconciling, ConditionStalled}

// Condition reasons the StatusBook sets (CamelCase, as Kubernetes does).
const (
	ReasonInSync          = "InSync"
	ReasonChangesPending  = "ChangesPending"
	ReasonApplied         = "Applied"
	ReasonRetrying        = "Retrying"
	ReasonFailed          = "Failed"
	ReasonUnhealthy       = "Unhealthy"
	ReasonHealthStarting  = "HealthStarting"
	ReasonWaiting         = "Waiting"
	ReasonPruneBlocked    = "PruneBlocked"
	ReasonInvalidManifest = "InvalidManifest"
	ReasonDuplicate       = "Duplicate"
	ReasonNameConflict    = "NameConflict"
	ReasonMissingVolume   = "MissingVolume"
	ReasonRolledBack      = "RolledBack"
	ReasonUpdateFailed    = "UpdateFailed"
	ReasonWritesProtected = "WritesProtected"
	ReasonNone            = "None"
)

// Condition is one aspect of an object's state.
type Condition struct {
	Type   ConditionType `json:"type"`
	Status bool          `json:"status"`
	// Reason is a CamelCase code; Message explains it for people.
	Reason  string `json:"reason"`
	Message string `json:"message,omitempty"`
	// LastTransitionTime is when Status last changed (not Reason or Message).
	LastTransitionTime time.Time `json:"lastTransitionTime"`
	// ObservedSpecHash is the spec hash the condition was computed for.
	ObservedSpecHash string `json:"observedSpecHash,omitempty"`
}

// ObjectStatus is the status of one object.
type ObjectStatus struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
	// Manifest is the file that declares it (see reconcile.ManifestRef).
	Manifest string `json:"manifest,omitempty"`
	// SpecHash is the spec hash last observed or applied.
	SpecHash string `json:"specHash,omitempty"`
	// Conditions are Ready, Reconciling and Stalled, in that order.
	Conditions []Condition `json:"conditions"`
}

// Condition returns the condition of type t.
func (s ObjectStatus) Condition(t ConditionType) (Condition, bool) {
	for _, c := range s.Conditions {
		if c.Type == t {
			return c, true
		}
	}
	return Condition{}, false
}

// Ready reports whether the Ready condition is true.
func (s ObjectStatus) Ready() bool {
	c, _ := s.Condition(ConditionReady)
	return c.Status
}

// FileStatus is one manifest file's load result.
type FileStatus struct {
	Path   string `json:"path"`
	Failed bool   `json:"failed,omitempty"`
	// Problems are its errors and warnings, each with file and line.
	Problems []manifests.Problem `json:"problems,omitempty"`
}

// Status is the whole status document, served as JSON at GET /status.
type Status struct {
	// Revision is the revision of the manifests last loaded (the one being
	// converged on).
	Revision string `json:"revision"`
	// AppliedRevision is the last revision a pass fully converged on.
	AppliedRevision string `json:"appliedRevision,omitempty"`
	// UpdatedAt is when the book last changed.
	UpdatedAt time.Time `json:"updatedAt"`
	// Missing is true when the manifest directory does not exist.
	Missing bool         `json:"missing,omitempty"`
	Files   []FileStatus `json:"files"`
	// Objects are sorted by kind (Image, Volume, Container) and name.
	Objects []ObjectStatus `json:"objects"`
}

// AllReady reports whether every object is Ready and every file loaded:
// the `status` command's exit 0.
func (s Status) AllReady() bool {
	for _, f := range s.Files {
		if f.Failed {
			return false
		}
	}
	for _, o := range s.Objects {
		if !o.Ready() {
			return false
		}
	}
	return true
}

// StatusBook keeps the objects' conditions across passes. It is safe for
// concurrent use: the controller writes it while GET /status reads it.
type StatusBook struct {
	mu       sync.Mutex
	now      func() time.Time
	revision string
	applied  string
	missing  bool
	updated  time.Time
	files    []FileStatus
	objects  map[string]*ObjectStatus
	// failures are the last failed action of each object, kept until one
	// of its actions succeeds, so that a later plan does not hide why it
	// is not Ready.
	failures map[string]failure
	// containers are the containers that should run, with what was last
	// observed of them (for Runtime).
	containers map[string]reconcile.ObservedContainer
}

// failure is a failed action as the book keeps it.
type failure struct {
	msg        string
	terminal   bool
	generation string
}

// NewStatusBook returns an empty book reading the time from now (time.Now
// when nil); tests inject a fake clock.
func NewStatusBook(now func() time.Time) *StatusBook {
	if now == nil {
		now = time.Now
	}
	return &StatusBook{now: now, objects: make(map[string]*ObjectStatus), failures: map[string]failure{},
		containers: map[string]reconcile.ObservedContainer{}}
}

// SetCondition sets one condition of the object key ("Kind/name"), creating
// the object when needed. LastTransitionTime moves only when status changes.
func (b *StatusBook) SetCondition(key string, t ConditionType, status bool, reason, message, specHash string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.set(b.object(key), t, status, reason, message, specHash)
}

// object returns key's status, creating it with all conditions unknown
// (false, reason None). Callers hold mu.
func (b *StatusBook) object(key string) *ObjectStatus {
	if o, ok := b.objects[key]; ok {
		return o
	}
	kind, name, _ := strings.Cut(key, "/")
	o := &ObjectStatus{Kind: kind, Name: name, Conditions: make([]Condition, len(conditionTypes))}
	now := b.now().UTC()
	for i, t := range conditionTypes {
		o.Conditions[i] = Condition{Type: t, Reason: ReasonNone, LastTransitionTime: now}
	}
	b.objects[key] = o
	return o
}

// set updates one condition. Callers hold mu.
func (b *StatusBook) set(o *ObjectStatus, t ConditionType, status bool, reason, message, specHash string) {
	now := b.now().UTC()
	b.updated = now
	if specHash != "" {
		o.SpecHash = specHash
	}
	for i := range o.Conditions {
		c := &o.Conditions[i]
		if c.Type != t {
			continue
		}
		if c.Status != status {
			c.LastTransitionTime = now
		}
		c.Status, c.Reason, c.Message = status, reason, message
		c.ObservedSpecHash = o.SpecHash
		return
	}
}

// setAll sets the three conditions at once: the one named by reason gets
// reason and message, the others reason None. Callers hold mu.
func (b *StatusBook) setAll(o *ObjectStatus, ready, reconciling, stalled bool, lead ConditionType, reason, message, specHash string) {
	for _, c := range []struct {
		t  ConditionType
		on bool
	}{{ConditionReady, ready}, {ConditionReconciling, reconciling}, {ConditionStalled, stalled}} {
		if c.t == lead || (c.t == ConditionReady && !ready) {
			b.set(o, c.t, c.on, reason, message, specHash)
		} else {
			b.set(o, c.t, c.on, ReasonNone, "", specHash)
		}
	}
}

// LoadedManifests records a manifest load: the revision, and each file with
// its problems (those with a line name it, so `status` can print file:line).
func (b *StatusBook) LoadedManifests(set *manifests.Set) {
	if set == nil {
		set = emptySet
	}
	files := make([]FileStatus, 0, len(set.Files))
	index := make(map[string]int, len(set.Files))
	for _, f := range set.Files {
		index[f.Path] = len(files)
		files = append(files, FileStatus{Path: f.Path, Failed: f.Failed})
	}
	for _, pr := range set.Problems {
		i, ok := index[pr.File]
		if !ok {
			// A problem of a file the set does not list (unreadable, too large).
			i = len(files)
			index[pr.File] = i
			files = append(files, FileStatus{Path: pr.File, Failed: pr.Severity != manifests.SeverityWarning})
		}
		files[i].Problems = append(files[i].Problems, pr)
	}
	slices.SortFunc(files, func(a, b FileStatus) int { return strings.Compare(a.Path, b.Path) })
	b.mu.Lock()
	defer b.mu.Unlock()
	b.revision, b.missing, b.files = set.Revision, set.Missing, files
	b.updated = b.now().UTC()
}

// Planned sets every object's conditions from a fresh plan: objects with an
// action are Reconciling, blocked ones Reconciling (waiting) or Stalled,
// the others Ready (a container also needs to run and be healthy). Objects
// neither declared, observed as managed, nor in the plan are dropped.
func (b *StatusBook) Planned(p reconcile.Plan, d reconcile.Desired, o reconcile.Observed) {
	set := d.Set
	if set == nil {
		set = emptySet
	}
	tracked := make(map[string]bool)
	for name := range set.Images {
		tracked[reconcile.Key(manifests.KindImage, name)] = true
	}
	for name := range set.Volumes {
		tracked[reconcile.Key(manifests.KindVolume, name)] = true
	}
	for name := range set.Containers {
		tracked[reconcile.Key(manifests.KindContainer, name)] = true
	}
	for name, oc := range o.Containers {
		if oc.Managed {
			tracked[reconcile.Key(manifests.KindContainer, name)] = true
		}
	}
	for name, ov := range o.Volumes {
		if ov.Managed {
			tracked[reconcile.Key(manifests.KindVolume, name)] = true
		}
	}
	actions := make(map[string]*reconcile.Action, len(p.Actions))
	for i := range p.Actions {
		a := &p.Actions[i]
		actions[a.Key()] = a
		tracked[a.Key()] = true
	}
	blocked := make(map[string]*reconcile.Blocked, len(p.Blocked))
	for i := range p.Blocked {
		bl := &p.Blocked[i]
		tracked[bl.Key()] = true
		// An object can be blocked twice (kept for a broken file, and its
		// prune guarded): the stalling reason wins over waiting.
		if prev, ok := blocked[bl.Key()]; !ok || prev.Waiting() {
			blocked[bl.Key()] = bl
		}
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	for key := range b.objects {
		if !tracked[key] {
			delete(b.objects, key)
			delete(b.failures, key)
		}
	}
	clear(b.containers)
	for key := range tracked {
		obj := b.object(key)
		hash := ""
		if obj.Kind == manifests.KindContainer {
			oc := o.Containers[obj.Name]
			hash = oc.SpecHash
			if oc.Manifest != "" {
				obj.Manifest = oc.Manifest
			}
		}
		if src, ok := set.Sources[key]; ok {
			obj.Manifest = reconcile.ManifestRef(set, src.File)
		}
		bl, isBlocked := blocked[key]
		a, hasAction := actions[key]
		switch {
		case isBlocked && !bl.Waiting():
			b.setAll(obj, false, false, true, ConditionStalled, stalledReason(bl.Reason), bl.Message, hash)
			if hasAction {
				// A kept container is still started or stopped by its last spec.
				b.set(obj, ConditionReconciling, true, ReasonChangesPending, a.String(), hash)
			}
		case isBlocked:
			b.setAll(obj, false, true, false, ConditionReconciling, ReasonWaiting, bl.Message, hash)
		case hasAction:
			f, failed := b.failures[key]
			switch {
			case failed && f.terminal && f.generation == a.Generation():
				// Held until the spec changes: the controller does not retry it.
				b.setAll(obj, false, false, true, ConditionStalled, ReasonFailed, f.msg, hash)
			case failed:
				b.setAll(obj, false, true, false, ConditionReconciling, ReasonRetrying, f.msg, hash)
			default:
				b.setAll(obj, false, true, false, ConditionReconciling, ReasonChangesPending, a.String(), hash)
			}
		default:
			ready, reason, msg := true, ReasonInSync, ""
			if c, ok := set.Containers[obj.Name]; ok && obj.Kind == manifests.KindContainer && c.Spec.State != manifests.StateStopped {
				oc := o.Containers[obj.Name]
				b.containers[obj.Name] = oc
				ready, reason, msg = readiness(oc, b.now())
			}
			b.setAll(obj, ready, false, false, ConditionReady, reason, msg, hash)
		}
	}
}

// stalledReason maps a reconcile.Blocked reason to a condition reason.
func stalledReason(reason string) string {
	switch reason {
	case reconcile.BlockedInvalidManifest:
		return ReasonInvalidManifest
	case reconcile.BlockedDuplicate:
		return ReasonDuplicate
	case reconcile.BlockedNameConflict:
		return ReasonNameConflict
	case reconcile.BlockedMissingVolume:
		return ReasonMissingVolume
	case reconcile.BlockedRolledBack:
		return ReasonRolledBack
	case reconcile.BlockedUpdateFailed:
		return ReasonUpdateFailed
	case reconcile.BlockedProtectWrites:
		return ReasonWritesProtected
	}
	return ReasonPruneBlocked
}

// Succeeded records that an action finished: the object is Ready (a pruned
// or destroyed one leaves the book).
func (b *StatusBook) Succeeded(a reconcile.Action) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.failures, a.Key())
	if a.Op == reconcile.OpPrune || a.Op == reconcile.OpDestroyVolume {
		delete(b.objects, a.Key())
		b.updated = b.now().UTC()
		return
	}
	b.setAll(b.object(a.Key()), true, false, false, ConditionReady, ReasonApplied, a.String(), a.SpecHash)
}

// Failed records that an action failed with err: a terminal error (one that
// retrying cannot fix) stalls the object, another keeps it Reconciling while
// the controller retries.
func (b *StatusBook) Failed(a reconcile.Action, err error, terminal bool) {
	msg := a.String()
	if err != nil {
		msg = err.Error()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failures[a.Key()] = failure{msg: msg, terminal: terminal, generation: a.Generation()}
	obj := b.object(a.Key())
	b.set(obj, ConditionReady, false, ReasonFailed, msg, "")
	if terminal {
		b.set(obj, ConditionReconciling, false, ReasonFailed, msg, "")
		b.set(obj, ConditionStalled, true, ReasonFailed, msg, "")
		return
	}
	b.set(obj, ConditionReconciling, true, ReasonRetrying, msg, "")
	b.set(obj, ConditionStalled, false, ReasonNone, "", "")
}

// Runtime refreshes the Ready condition of the containers the last plan
// had nothing to do for, from their supervisors' latest reports (by name):
// between passes, a container that starts crash-looping or fails its health
// check stops being Ready within a second, not at the next resync. It
// returns the names whose readiness changed.
func (b *StatusBook) Runtime(latest map[string]supervisor.Status) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var changed []string
	for name, oc := range b.containers {
		obj, ok := b.objects[reconcile.Key(manifests.KindContainer, name)]
		if !ok {
			continue
		}
		if rc, _ := obj.Condition(ConditionReconciling); rc.Status {
			continue
		}
		if st, _ := obj.Condition(ConditionStalled); st.Status {
			continue
		}
		if s, ok := latest[name]; ok {
			engine.ApplySupervisor(&oc, s)
		} else {
			oc.Running, oc.Runtime = false, reconcile.ContainerRuntime{}
		}
		b.containers[name] = oc
		was := obj.Ready()
		ready, reason, msg := readiness(oc, b.now())
		b.setAll(obj, ready, false, false, ConditionReady, reason, msg, "")
		if was != ready {
			changed = append(changed, name)
		}
	}
	return changed
}

// Object returns one object's status.
func (b *StatusBook) Object(kind, name string) (ObjectStatus, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	o, ok := b.objects[reconcile.Key(kind, name)]
	if !ok {
		return ObjectStatus{}, false
	}
	c := *o
	c.Conditions = slices.Clone(o.Conditions)
	return c, true
}

// Converged records that a pass over revision ended with nothing left to do.
func (b *StatusBook) Converged(revision string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.applied = revision
	b.updated = b.now().UTC()
}

// Snapshot returns a deep copy of the book as a Status document.
func (b *StatusBook) Snapshot() Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := Status{Revision: b.revision, AppliedRevision: b.applied, UpdatedAt: b.updated, Missing: b.missing,
		Files: make([]FileStatus, len(b.files)), Objects: make([]ObjectStatus, 0, len(b.objects))}
	for i, f := range b.files {
		f.Problems = slices.Clone(f.Problems)
		s.Files[i] = f
	}
	for _, o := range b.objects {
		c := *o
		c.Conditions = slices.Clone(o.Conditions)
		s.Objects = append(s.Objects, c)
	}
	slices.SortFunc(s.Objects, func(a, b ObjectStatus) int {
		if c := reconcile.KindRank(a.Kind) - reconcile.KindRank(b.Kind); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return s
}
