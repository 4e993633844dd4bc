package controller

import (
	"container/heap"
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

	// The reverse-dependency index of the current pass: a queued key waits
	// for pending dependencies, each of which lists it among its dependents
	// and tells it when it ends. Nothing is ever rescanned, so a pass of N
	// items with E dependencies costs O((N+E) log N).
	index      int      // position in the pass's plan (dispatch order)
	pending    int      // dependencies not ended yet
	dependents []string // keys of this pass waiting for this one
	blockErr   error    // why it will not run (reported once through Next)
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
	// Workers bounds the items in flight (default DefaultWorkers).
	Workers int
	// ClassLimits bounds the items in flight per Item.Class; classes not
	// listed are bounded by Workers only.
	ClassLimits map[string]int

	keys         map[string]*keyState
	planned      map[string]bool // keys of the current pass
	order        []string        // keys of the current pass in plan order
	ready        map[string]*readyHeap
	blocked      []string // keys blocked in this pass, not reported yet
	queued       int      // keys in phase kpQueued
	running      int
	classRunning map[string]int
}

// DefaultClassLimits runs image builds and pulls one at a time: they are
// heavy on CPU, disk and network, and a second one rarely finishes sooner.
var DefaultClassLimits = map[string]int{"build": 1, "pull": 1}

// DefaultWorkers is how many actions run at once unless --workers says
// otherwise: the fastest count measured for creating and starting
// containers on the reference machine (BENCHMARKS.md).
const DefaultWorkers = 4

func (q *Queue) init() {
	if q.keys == nil {
		q.keys = map[string]*keyState{}
		q.classRunning = map[string]int{}
		q.ready = map[string]*readyHeap{}
	}
}

func (q *Queue) workers() int {
	if q.Workers <= 0 {
		return DefaultWorkers
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
	// One item per key and pass: the planner merges the steps of one
	// object; the later item wins (and takes the later place) if it did not.
	last := make(map[string]int, len(items))
	for i, it := range items {
		last[it.Key] = i
	}
	planned := make(map[string]bool, len(items))
	q.order = q.order[:0]
	for i, it := range items {
		if last[it.Key] == i {
			planned[it.Key] = true
			q.order = append(q.order, it.Key)
		}
	}
	q.planned = planned
	for key, st := range q.keys {
		st.dependents, st.pending, st.blockErr = nil, 0, nil
		if planned[key] || st.phase == kpInFlight {
			continue
		}
		delete(q.keys, key)
	}
	q.ready = map[string]*readyHeap{}
	q.blocked = q.blocked[:0]
	q.queued = 0
	for idx, key := range q.order {
		it := items[last[key]]
		st := q.keys[key]
		if st == nil {
			st = &keyState{}
			q.keys[key] = st
		}
		st.index = idx
		if st.phase == kpInFlight {
			st.rerun = true
			continue
		}
		st.item = it
		st.why = ""
		switch {
		case st.terminal && st.termGen == it.Generation:
			st.phase, st.why = kpBad, "stalled on a terminal error"
			held = append(held, key)
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
			held = append(held, key)
			continue
		}
		st.phase = kpQueued
		q.queued++
	}
	// Every phase is known: link each queued key to the dependencies it
	// waits for, in plan order (a key blocked here blocks its dependents).
	for _, key := range q.order {
		st := q.keys[key]
		if st.phase != kpQueued {
			continue
		}
		for _, dep := range st.item.Deps {
			ds := q.keys[dep]
			if ds == nil || dep == key {
				continue
			}
			switch ds.phase {
			case kpQueued, kpInFlight:
				st.pending++
				ds.dependents = append(ds.dependents, key)
			case kpBad:
				q.block(key, reconcile.Wait(fmt.Sprintf("dependency %s: %s", dep, ds.why)))
			case kpOK, kpNone:
				// Converged, or not planned and not in flight.
			}
			if st.phase != kpQueued {
				break
			}
		}
	}
	for _, key := range q.order {
		if st := q.keys[key]; st.phase == kpQueued && st.pending == 0 {
			q.pushReady(st)
		}
	}
	return held
}

// block marks a queued key as not running in this pass, to be reported by
// Next, and its dependents with it.
func (q *Queue) block(key string, err error) {
	stack := []string{key}
	errs := []error{err}
	for len(stack) > 0 {
		k, e := stack[len(stack)-1], errs[len(errs)-1]
		stack, errs = stack[:len(stack)-1], errs[:len(errs)-1]
		st := q.keys[k]
		if st == nil || st.phase != kpQueued {
			continue
		}
		st.phase, st.why, st.blockErr = kpBad, e.Error(), e
		q.queued--
		q.blocked = append(q.blocked, k)
		for _, d := range st.dependents {
			stack = append(stack, d)
			errs = append(errs, reconcile.Wait(fmt.Sprintf("dependency %s: %s", k, st.why)))
		}
		st.dependents = nil
	}
}

func (q *Queue) pushReady(st *keyState) {
	h := q.ready[st.item.Class]
	if h == nil {
		h = &readyHeap{}
		q.ready[st.item.Class] = h
	}
	heap.Push(h, readyEntry{index: st.index, key: st.item.Key})
}

// Next returns the next item that may start now: queued, its dependencies
// succeeded, and a worker and class slot free; it is then in flight until
// Done. Items whose dependency did not succeed come back with Blocked set
// (they do not take a slot). ok is false when nothing can start now.
func (q *Queue) Next() (d Dispatch, ok bool) {
	q.init()
	if q.running >= q.workers() {
		return Dispatch{}, false
	}
	if len(q.blocked) > 0 {
		key := q.blocked[0]
		q.blocked = q.blocked[1:]
		st := q.keys[key]
		return Dispatch{Item: st.item, Blocked: st.blockErr}, true
	}
	// The ready item first in plan order among the classes with a free slot.
	var best *readyHeap
	for class, h := range q.ready {
		if h.Len() == 0 || q.classFull(class) {
			continue
		}
		if best == nil || (*h)[0].index < (*best)[0].index {
			best = h
		}
	}
	if best != nil {
		e := heap.Pop(best).(readyEntry)
		st := q.keys[e.key]
		st.phase = kpInFlight
		q.queued--
		q.running++
		q.classRunning[st.item.Class]++
		return Dispatch{Item: st.item}, true
	}
	if q.running > 0 || q.queued == 0 || q.anyReady() {
		return Dispatch{}, false
	}
	// Nothing runs and nothing is ready, so nothing will ever satisfy the
	// remaining items: a dependency cycle. Block the first; the rest follow
	// as its dependents.
	for _, key := range q.order {
		if st := q.keys[key]; st != nil && st.phase == kpQueued {
			q.block(key, reconcile.Wait(fmt.Sprintf("dependency cycle through %s", key)))
			return q.Next()
		}
	}
	return Dispatch{}, false
}

func (q *Queue) anyReady() bool {
	for _, h := range q.ready {
		if h.Len() > 0 {
			return true
		}
	}
	return false
}

func (q *Queue) classFull(class string) bool {
	lim, limited := q.ClassLimits[class]
	return limited && q.classRunning[class] >= lim
}

// readyHeap orders ready keys by their place in the plan.
type readyHeap []readyEntry

type readyEntry struct {
	index int
	key   string
}

func (h readyHeap) Len() int           { return len(h) }
func (h readyHeap) Less(i, j int) bool { return h[i].index < h[j].index }
func (h readyHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *readyHeap) Push(x any)        { *h = append(*h, x.(readyEntry)) }
func (h *readyHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
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
	// Tell the keys of this pass that wait for this one.
	deps := st.dependents
	st.dependents = nil
	for _, d := range deps {
		ds := q.keys[d]
		if ds == nil || ds.phase != kpQueued {
			continue
		}
		if res.Outcome == OutcomeSuccess {
			if ds.pending--; ds.pending == 0 {
				q.pushReady(ds)
			}
			continue
		}
		q.block(d, reconcile.Wait(fmt.Sprintf("dependency %s: %s", key, st.why)))
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

// Depth is the number of items queued and not yet started (those found
// blocked count until Next has reported them).
func (q *Queue) Depth() int { return q.queued + len(q.blocked) }

// Running is the number of items in flight.
func (q *Queue) Running() int { return q.running }

// Settled reports whether nothing is queued or in flight.
func (q *Queue) Settled() bool { return q.running == 0 && q.Depth() == 0 }
