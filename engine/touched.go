package engine

import (
	"context"
	"sync"

	"github.com/zocker-reconcile/zocker-reconcile/engine/zfs"
	"github.com/zocker-reconcile/zocker-reconcile/reconcile"
)

// ObserveTouched is ObserveDetail reading again only the datasets that
// touched names (TouchedBy of the actions run since the last observation)
// and taking the rest from the last observation: what the pass that
// follows actions needs, with one command whose cost does not grow with
// the number of containers (issue 15). Without a last observation, or when
// the targeted read fails, it observes the whole tree. The supervisors and
// jails are read in full either way (no zfs command).
func (e *Engine) ObserveTouched(ctx context.Context, touched zfs.Touched) (Detail, error) {
	e.lastMu.Lock()
	base := e.lastTree
	e.lastMu.Unlock()
	if base == nil || touched.All {
		return e.ObserveDetail(ctx)
	}
	st, tree, err := e.Store.ObserveTouched(ctx, base, touched)
	if err != nil {
		e.Log.Warn("targeted observation failed, observing the whole tree", "action", "observe", "err", err)
		return e.ObserveDetail(ctx)
	}
	return e.detail(ctx, st, tree)
}

// TouchedBy is what action a may change in the store: the subtrees the
// observation after it must read again.
func TouchedBy(a reconcile.Action) zfs.Touched {
	switch a.Op {
	case reconcile.OpImport, reconcile.OpBuild, reconcile.OpPull:
		return zfs.Touched{Images: true}
	case reconcile.OpCreateVolume, reconcile.OpUpdateVolume, reconcile.OpDestroyVolume:
		return zfs.Touched{Volumes: []string{a.Name}}
	case reconcile.OpCreate, reconcile.OpStart, reconcile.OpStop:
		return zfs.Touched{Containers: []string{a.Name}}
	case reconcile.OpReplace, reconcile.OpPrune, reconcile.OpRollback, reconcile.OpConfirm:
		// With the previous clones an update keeps aside.
		return zfs.Touched{Containers: []string{a.Name}, Previous: true}
	}
	return zfs.Touched{All: true} // an operation added later: say nothing is known
}

// Tracking is an Observer and Executor over an engine for a run of passes
// (apply): its first observation reads the whole tree, each later one only
// what the actions run through it since touched.
type Tracking struct {
	Engine *Engine

	mu       sync.Mutex
	touched  zfs.Touched
	observed bool
}

// Observe reads the whole tree the first time, then what was touched.
func (t *Tracking) Observe(ctx context.Context) (reconcile.Observed, error) {
	t.mu.Lock()
	touched, first := t.touched, !t.observed
	t.touched = zfs.Touched{}
	t.mu.Unlock()
	var d Detail
	var err error
	if first {
		d, err = t.Engine.ObserveDetail(ctx)
	} else {
		d, err = t.Engine.ObserveTouched(ctx, touched)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		t.touched.Merge(touched)
		return d.Observed, err
	}
	t.observed = true
	return d.Observed, nil
}

// Execute runs a on the engine and notes what it touched, whatever its result.
func (t *Tracking) Execute(ctx context.Context, a reconcile.Action) error {
	err := t.Engine.Execute(ctx, a)
	t.mu.Lock()
	t.touched.Merge(TouchedBy(a))
	t.mu.Unlock()
	return err
}
