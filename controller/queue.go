package controller

import (
	"context"
	"fmt"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/reconcile"
)

// Item is one unit of work a pass planned for one object. The controller
// runs at most one Item per Key at a time.
type Item struct {
	// Key names the object, "Kind/name" as reconcile.Key makes it
	// (Container/web, Image/base).
	Key string
	// Op is the action, for logs, metrics and status ("create", "replace").
	Op string
	// Generation identifies the desired spec (its spec hash). A terminal
	// error holds the key until a pass plans it with another Generation.
	Generation string
	// Deps are keys that must have succeeded before this item runs. A key
	// the pass did not plan and that is not in flight counts as satisfied
	// (the object is already converged).
	Deps []string
	// Class is a concurrency class with its own limit ("build", "pull");
	// "" is bounded by the worker count only.
	Class string
	// Reason says why the plan wants this action (for logs).
	Reason string
	// Run does the work. It returns nil on success, an error wrapped by
	// reconcile.Terminal for errors that retrying cannot fix, an error from reconcile.Wait for
	// "not yet" (no backoff), and any other error for a transient failure.
	Run func(ctx context.Context) error
}

// Outcome classifies how an item ended.
type Outcome int

// Outcomes of Queue.Done.
const (
	OutcomeSuccess  Outcome = iota // nil error: backoff reset
	OutcomeError                   // transient error: backoff grows, retried
	OutcomeTerminal                // TerminalError: held until the generation changes
	OutcomeWait                    // WaitError: re-checked at the next pass
)

// String returns the outcome's lower-case name (a metrics label value).
func (o Outcome) String() string {
	switch o {
	case OutcomeSuccess:
		return "success"
	case OutcomeError:
		return "error"
	case OutcomeTerminal:
		return "terminal"
	case OutcomeWait:
		return "wait"
	}
	return fmt.Sprintf("outcome(%d)", int(o))
}

// Classify maps an item's error to its Outcome.
func Classify(err error) Outcome {
	switch {
	case err == nil:
		return OutcomeSuccess
	case reconcile.IsTerminal(err):
		return OutcomeTerminal
	case reconcile.IsWait(err):
		return OutcomeWait
	}
	return OutcomeError
}

// keyPhase is where a key stands in the current pass.
type keyPhase int

const (
	kpNone     keyPhase = iota // not planned by the current pass
	kpQueued                   // planned, waiting for a worker or its deps
	kpInFlight                 // running
	kpOK                       // succeeded in this pass
	kpBad                      // failed, waiting, blocked, backing off or terminal
)

type keyState struct {
	item     Item // the latest planned item (valid while queued or in flight)
	phase    keyPhase
	why      string // for kpBad: what dependents are told
	failures int
	retryAt  time.Time
	failGen  string // generation of the failing item (a new one resets backoff)
	terminal bool
	termGen  string
	rerun    bool // planned again while in flight: the state it saw is stale
}

// Dispatch is what Queue.Next hands out: an item to run, or (Blocked set)
// an item that will not run in this pass because a dependency did not
// succeed, to be reported as a wait.
type Dispatch struct {
	Item    Item
	Blocked error
}

// Queue is the level-triggered work queue: each pass replaces the planned
// items wholesale (the newest plan is the truth), one item per key is in
// flight, workers and classes bound concurrency, and per-key backoff and
// terminal errors survive from pass to pass. It is not safe for concurrent
// use: the controller loop owns it.
type Queue struct {
	// Backoff computes retry delays after transient failures.
	Backoff Backoff
	// Workers bounds the items in flight (default 2).
	Workers int
	// ClassLimits bounds the items in flight per Item.Class; classes not
	// listed are bounded by Workers only.
	ClassLimits map[string]int

	keys         map[string]*keyState
	planned      map[string]bool // keys of the current pass
	scan         []string        // keys that may still be queued, in plan order
	running      int
	classRunning map[string]int
}

// DefaultClassLimits runs image builds and pulls one at a time: they are
// heavy on CPU, disk and network, and a second one rarely finishes sooner.
var DefaultClassLimits = map[string]int{"build": 1, "pull": 1}

func (q *Queue) init() {
	if q.keys == nil {
		q.keys = map[string]*keyState{}
		q.classRunning = map[string]int{}
	}
}

func (q *Queue) workers() int {
	if q.Workers <= 0 {
		return 2
	}
	return q.Workers
}

// Replace installs the items of a new pass at time now. Keys the plan no
// longer mentions are converged: their queued items are dropped and their
// backoff and terminal state forgotten. Keys in flight are not queued again;
// Done then reports Rerun so that a fresh pass re-plans them. It returns the
// keys skipped as terminal (same generation) or still backing off.
func (q *Queue) Replace(items []Item, now time.Time) (held []string) {
	q.init()
	planned := make(map[string]bool, len(items))
	q.scan = q.scan[:0]
	for _, it := range items {
		if planned[it.Key] {
			// One item per key and pass: the planner merges the steps of
			// one object; the later item wins if it did not.
			q.scan = removeKey(q.scan, it.Key)
		}
		planned[it.Key] = true
		q.scan = append(q.scan, it.Key)
	}
	q.planned = planned
	for key, st := range q.keys {
		if planned[key] {
			continue
		}
		if st.phase == kpInFlight {
			continue
		}
		delete(q.keys, key)
	}
	// Later duplicates overwrite earlier ones here too.
	for _, it := range items {
		st := q.keys[it.Key]
		if st == nil {
			st = &keyState{}
			q.keys[it.Key] = st
		}
		if st.phase == kpInFlight {
			st.rerun = true
			continue
		}
		st.item = it
		st.why = ""
		switch {
		case st.terminal && st.termGen == it.Generation:
			st.phase, st.why = kpBad, "stalled on a terminal error"
			held = append(held, it.Key)
			continue
		case st.terminal:
			st.terminal, st.termGen = false, ""
			st.failures = 0
		case st.failures > 0 && st.failGen != it.Generation:
			// The spec changed: the old failures say nothing about it.
			st.failures = 0
		}
		if st.failures > 0 && now.Before(st.retryAt) {
			st.phase, st.why = kpBad, fmt.Sprintf("backing off until %s", st.retryAt.Format(time.RFC3339))
			held = append(held, it.Key)
			continue
		}
		st.phase = kpQueued
	}
	return held
}

func removeKey(keys []string, key string) []string {
	out := keys[:0]
	for _, k := range keys {
		if k != key {
			out = append(out, k)
		}
	}
	return out
}

// Next returns the next item that may start now: queued, its dependencies
// succeeded, and a worker and class slot free; it is then in flight until
// Done. Items whose dependency did not succeed come back with Blocked set
// (they do not take a slot). ok is false when nothing can start now.
func (q *Queue) Next() (d Dispatch, ok bool) {
	q.init()
	if q.running >= q.workers() {
		// Blocked items are reported once a slot frees; scanning a large
		// plan while every worker is busy would make a pass quadratic.
		return Dispatch{}, false
	}
	waitingOnDeps := false
	// One scan hands out at most one item and drops from q.scan every key
	// that is no longer queued, so later scans only visit waiting items.
	kept := q.scan[:0]
	for i, key := range q.scan {
		if ok {
			kept = append(kept, q.scan[i:]...)
			break
		}
		st := q.keys[key]
		if st == nil || st.phase != kpQueued {
			continue
		}
		ready, blocked := q.depsReady(st.item)
		switch {
		case blocked != nil:
			st.phase, st.why = kpBad, blocked.Error()
			d, ok = Dispatch{Item: st.item, Blocked: blocked}, true
		case !ready:
			waitingOnDeps = true
			kept = append(kept, key)
		case q.classFull(st.item.Class):
			kept = append(kept, key)
		default:
			st.phase = kpInFlight
			q.running++
			q.classRunning[st.item.Class]++
			d, ok = Dispatch{Item: st.item}, true
		}
	}
	q.scan = kept
	if ok || !waitingOnDeps || q.running > 0 {
		return d, ok
	}
	// Nothing runs, so nothing will ever satisfy the remaining items: a
	// dependency cycle. Block one; the rest follow as blocked dependents.
	for _, key := range q.scan {
		if st := q.keys[key]; st != nil && st.phase == kpQueued {
			err := reconcile.Wait(fmt.Sprintf("dependency cycle through %s", key))
			st.phase, st.why = kpBad, err.Error()
			return Dispatch{Item: st.item, Blocked: err}, true
		}
	}
	return Dispatch{}, false
}

func (q *Queue) classFull(class string) bool {
	lim, limited := q.ClassLimits[class]
	return limited && q.classRunning[class] >= lim
}

func (q *Queue) depsReady(it Item) (ready bool, blocked error) {
	ready = true
	for _, dep := range it.Deps {
		ds := q.keys[dep]
		if ds == nil || dep == it.Key {
			continue
		}
		switch ds.phase {
		case kpQueued, kpInFlight:
			ready = false
		case kpBad:
			return false, reconcile.Wait(fmt.Sprintf("dependency %s: %s", dep, ds.why))
		case kpNone:
			// The pass did not plan it and it is not in flight: converged.
		}
	}
	return ready, nil
}

// ItemResult is what Done decided about a finished item.
type ItemResult struct {
	Outcome Outcome
	// Retry is the backoff delay after a transient failure (0 otherwise).
	Retry time.Duration
	// Rerun is set when a pass planned the key again while it ran: that
	// plan was made from state this item has since changed.
	Rerun bool
}

// Done records that the in-flight item for key ended with err at time now.
func (q *Queue) Done(key string, err error, now time.Time) ItemResult {
	q.init()
	st := q.keys[key]
	if st == nil || st.phase != kpInFlight {
		return ItemResult{Outcome: Classify(err)}
	}
	q.running--
	q.classRunning[st.item.Class]--
	res := ItemResult{Outcome: Classify(err), Rerun: st.rerun}
	st.rerun = false
	switch res.Outcome {
	case OutcomeSuccess:
		st.phase, st.failures = kpOK, 0
	case OutcomeWait:
		st.phase, st.why = kpBad, err.Error()
	case OutcomeTerminal:
		st.phase, st.why = kpBad, "terminal error: "+err.Error()
		st.terminal, st.termGen, st.failures = true, st.item.Generation, 0
	case OutcomeError:
		st.failures++
		st.failGen = st.item.Generation
		res.Retry = q.Backoff.Delay(st.failures)
		st.retryAt = now.Add(res.Retry)
		st.phase, st.why = kpBad, "failed: "+err.Error()
	}
	if !q.inPlan(key) && res.Outcome != OutcomeError && res.Outcome != OutcomeTerminal {
		// The newest pass did not plan this key: nothing left to remember.
		delete(q.keys, key)
	}
	return res
}

func (q *Queue) inPlan(key string) bool { return q.planned[key] }

// NextRetry returns the earliest time a backing-off key may run again.
// Keys queued or in flight are not backing off, whatever their failures.
func (q *Queue) NextRetry() (time.Time, bool) {
	var next time.Time
	found := false
	for _, st := range q.keys {
		if st.phase == kpBad && st.failures > 0 && !st.terminal && (!found || st.retryAt.Before(next)) {
			next, found = st.retryAt, true
		}
	}
	return next, found
}

// Depth is the number of items queued and not yet started.
func (q *Queue) Depth() int {
	n := 0
	for _, st := range q.keys {
		if st.phase == kpQueued {
			n++
		}
	}
	return n
}

// Running is the number of items in flight.
func (q *Queue) Running() int { return q.running }

// Settled reports whether nothing is queued or in flight.
func (q *Queue) Settled() bool { return q.running == 0 && q.Depth() == 0 }
