// Package controller is the reconcile loop: passes triggered at start-up,
// by the manifest watcher, by a jittered resync and by expired backoffs; a
// level-triggered work queue keyed by object with per-key backoff and
// terminal errors; and Converge, the bounded passes `apply` runs. It is the
// one place that resolves the manifest root. What a pass decides is
// package reconcile's; what it does is the Executor's. It is just over the
// house's 1,500 lines: the queue's dependency indexes (issue 15) and the
// watcher share the loop's item and backoff vocabulary, unexported.
package controller

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/manifests"
	"github.com/zocker-reconcile/zocker-reconcile/reconcile"
)

// Trigger reasons the controller itself uses; the caller adds its own
// ("sighup") through Controller.Trigger.
const (
	TriggerStartup  = "startup"  // the first pass after Run starts
	TriggerPeriodic = "periodic" // the jittered resync timer
	TriggerWatch    = "watch"    // debounced manifest directory events
	TriggerWatchErr = "watch-error"
	TriggerRetry    = "retry"   // a key's backoff expired
	TriggerRequeue  = "requeue" // a key was planned again while it ran
)

// Clock is the time source of the loop, injected so tests run backoff and
// resync without sleeping. Timers take a deadline, not a duration, so a
// fake clock that moves between Now and TimerAt cannot stretch a wait.
type Clock interface {
	Now() time.Time
	TimerAt(deadline time.Time) Timer
}

// Timer is the part of *time.Timer the loop uses.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
}

// RealClock is the wall clock.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// TimerAt returns a time.Timer firing at deadline.
func (RealClock) TimerAt(deadline time.Time) Timer {
	return realTimer{time.NewTimer(time.Until(deadline))}
}

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time { return r.t.C }
func (r realTimer) Stop() bool          { return r.t.Stop() }

// Hooks receive what the loop does, for metrics and the status book. Any
// may be nil. They are called from the loop goroutine (OnWatch* from the
// watcher's) and must not block.
type Hooks struct {
	// OnResync counts pass triggers by reason (zocker_resyncs_total).
	OnResync func(trigger string)
	// OnWatchEvent counts fsnotify events by op (zocker_watch_events_total).
	OnWatchEvent func(op string)
	// OnWatchError counts watcher errors by type, "overflow" or "error".
	OnWatchError func(typ string)
	// OnLoad reports each manifest load from the resolved directory.
	OnLoad func(dir string, err error)
	// OnPhase reports how long a pass phase took: "load", "observe", "plan".
	OnPhase func(phase string, d time.Duration)
	// OnQueueDepth reports the number of queued items after it changed.
	OnQueueDepth func(depth int)
	// OnRetry reports a transient failure and the backoff before the retry
	// (zocker_workqueue_retries_total).
	OnRetry func(key string, delay time.Duration)
	// OnResult reports every item's end: err nil on success; a
	// *reconcile.TerminalError, a *reconcile.WaitError (also for items blocked by a
	// dependency, with d 0) or a transient error otherwise.
	OnResult func(key, op string, err error, d time.Duration)
	// OnPassDone reports a pass that failed before planning (err set), or
	// that planned and whose items have all settled (err nil).
	OnPassDone func(trigger string, err error)
}

// Controller is the reconcile loop: a pass loads the manifests from the
// resolved Root, observes the actual state, plans, and feeds the items to
// the work queue; passes are triggered at start-up, by the watcher, by the
// jittered periodic resync, by expired backoffs and by Trigger. D is the
// loaded desired state, O the observed state; the controller never looks
// inside them.
type Controller[D, O any] struct {
	// Root is the manifest directory as configured; it may be a symlink
	// that GitOps tools swap, so it is resolved at every pass.
	Root string
	// Load reads the whole manifest set from dir, which is root resolved
	// once for this read (see LoadSettled).
	Load func(ctx context.Context, root, dir string) (D, error)
	// Observe reads the actual state (one zfs get and one jail listing).
	Observe func(ctx context.Context) (O, error)
	// Plan decides the items of a pass; it must not do I/O.
	Plan func(desired D, observed O) []Item
	// Watcher, when set, is run by Run and triggers passes on changes.
	Watcher *Watcher

	// Workers bounds the items in flight (default 2).
	Workers int
	// ClassLimits bounds items per class (default DefaultClassLimits).
	ClassLimits map[string]int
	// Backoff is the per-key retry policy (default DefaultBackoff).
	Backoff Backoff
	// Resync is the period of full passes (default 30 s).
	Resync time.Duration
	// ResyncJitter spreads Resync by ±this fraction (default 0.1; <0: none).
	ResyncJitter float64
	// DrainTimeout bounds how long shutdown waits for in-flight items
	// (default 30 s); after it their contexts are cancelled.
	DrainTimeout time.Duration
	// Clock defaults to RealClock; Rand (for jitter) to math/rand.
	Clock Clock
	Rand  func() float64
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Hooks observe the loop.
	Hooks Hooks

	initOnce sync.Once
	mu       sync.Mutex
	pending  []string      // trigger reasons not yet served by a pass
	wake     chan struct{} // cap 1: a pass is wanted
	ready    atomic.Bool
	progress atomic.Int64 // unix nanoseconds of the last loop iteration
	resolved atomic.Value // string: the directory of the last load
}

func (c *Controller[D, O]) setup() {
	c.initOnce.Do(func() {
		c.wake = make(chan struct{}, 1)
		if c.Clock == nil {
			c.Clock = RealClock{}
		}
		if c.Logger == nil {
			c.Logger = slog.Default()
		}
		if c.Workers <= 0 {
			c.Workers = 2
		}
		if c.ClassLimits == nil {
			c.ClassLimits = DefaultClassLimits
		}
		if c.Resync <= 0 {
			c.Resync = 30 * time.Second
		}
		if c.ResyncJitter == 0 {
			c.ResyncJitter = 0.1
		}
		if c.DrainTimeout <= 0 {
			c.DrainTimeout = 30 * time.Second
		}
	})
}

// Trigger asks for a full pass, for the given reason ("sighup", ...). It
// never blocks; triggers arriving before the pass starts share it. It may
// be called before Run.
func (c *Controller[D, O]) Trigger(reason string) {
	c.setup()
	if h := c.Hooks.OnResync; h != nil {
		h(reason)
	}
	c.mu.Lock()
	c.pending = append(c.pending, reason)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *Controller[D, O]) takeTriggers() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pending) == 0 {
		return ""
	}
	reason := c.pending[0]
	c.pending = c.pending[:0]
	return reason
}

// Ready reports whether manifests were loaded and a first full pass has
// planned and settled (for /readyz).
func (c *Controller[D, O]) Ready() bool { return c.ready.Load() }

// LastProgress is when the loop last went round. It wakes at least once
// per resync period, so /healthz can call the loop stuck when this is
// older than a few periods.
func (c *Controller[D, O]) LastProgress() time.Time {
	n := c.progress.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// ResolvedRoot is the directory the last successful load read (Root with
// symlinks resolved): a git-sync worktree names the revision.
func (c *Controller[D, O]) ResolvedRoot() string {
	s, _ := c.resolved.Load().(string)
	return s
}

func (c *Controller[D, O]) beat() { c.progress.Store(c.Clock.Now().UnixNano()) }

type itemDone struct {
	item Item
	err  error
	d    time.Duration
}

// loop is the state Run keeps between iterations.
type loop struct {
	q          Queue
	results    chan itemDone
	itemCtx    context.Context
	passActive bool   // a planned pass has items not yet settled
	passReason string // its trigger
	nextResync time.Time
	// passFailures counts consecutive passes that failed before planning
	// (manifests unreadable, zfs get failing); holdUntil delays the retry
	// passes of backing-off keys accordingly, which a failed pass cannot
	// serve.
	passFailures int
	holdUntil    time.Time
}

// retryAt is when the next retry pass is due: the earliest backoff expiry,
// not before holdUntil.
func (l *loop) retryAt() (time.Time, bool) {
	r, ok := l.q.NextRetry()
	if ok && r.Before(l.holdUntil) {
		r = l.holdUntil
	}
	return r, ok
}

// Run runs the loop until ctx is cancelled, then stops taking work, waits
// up to DrainTimeout for the items in flight, and returns nil. Containers
// are not touched by shutdown. An error is returned only when the loop
// cannot start (the watcher cannot be created).
func (c *Controller[D, O]) Run(ctx context.Context) error {
	c.setup()
	if c.Load == nil || c.Observe == nil || c.Plan == nil {
		return fmt.Errorf("controller: Load, Observe and Plan must be set")
	}
	var watchDone chan struct{}
	if c.Watcher != nil {
		if c.Watcher.OnEvent == nil {
			c.Watcher.OnEvent = c.Hooks.OnWatchEvent
		}
		if c.Watcher.OnError == nil {
			c.Watcher.OnError = c.Hooks.OnWatchError
		}
		if c.Watcher.Logger == nil {
			c.Watcher.Logger = c.Logger
		}
		if err := c.Watcher.start(); err != nil {
			return fmt.Errorf("watch manifests %s: %w", c.Watcher.Root, err)
		}
		watchDone = make(chan struct{})
		go func() {
			defer close(watchDone)
			c.Watcher.loop(ctx, c.Trigger)
		}()
	}
	// Items outlive ctx: SIGTERM lets the action in flight finish (a half
	// done clone would only be redone), until the drain timeout cancels it.
	itemCtx, cancelItems := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelItems()
	l := &loop{
		q:       Queue{Backoff: c.Backoff, Workers: c.Workers, ClassLimits: c.ClassLimits},
		results: make(chan itemDone, c.Workers),
		itemCtx: itemCtx,
	}
	l.nextResync = c.Clock.Now().Add(c.resyncPeriod())
	c.Trigger(TriggerStartup)
	for {
		c.beat()
		c.dispatch(l)
		if l.passActive && l.q.Settled() {
			l.passActive = false
			c.ready.Store(true)
			if h := c.Hooks.OnPassDone; h != nil {
				h(l.passReason, nil)
			}
		}
		wakeAt := l.nextResync
		if r, ok := l.retryAt(); ok && r.Before(wakeAt) {
			wakeAt = r
		}
		timer := c.Clock.TimerAt(wakeAt)
		select {
		case <-ctx.Done():
			timer.Stop()
			c.drain(l, cancelItems)
			if watchDone != nil {
				<-watchDone
			}
			return nil
		case <-c.wake:
			if reason := c.takeTriggers(); reason != "" {
				c.pass(ctx, l, reason)
			}
		case r := <-l.results:
			c.finish(l, r)
		case <-timer.C():
			// Run the pass here rather than through Trigger: the deadline
			// that fired must be consumed before the timer is armed again.
			now := c.Clock.Now()
			reason := ""
			if !now.Before(l.nextResync) {
				reason = TriggerPeriodic
			} else if r, ok := l.retryAt(); ok && !now.Before(r) {
				reason = TriggerRetry
			}
			if reason != "" {
				if h := c.Hooks.OnResync; h != nil {
					h(reason)
				}
				c.takeTriggers() // triggers pending now are served by this pass
				c.pass(ctx, l, reason)
			}
		}
		timer.Stop()
	}
}

func (c *Controller[D, O]) resyncPeriod() time.Duration {
	return Jitter(c.Resync, max(c.ResyncJitter, 0), c.Rand)
}

// pass runs Load, Observe and Plan and hands the items to the queue. A
// failed load or observe leaves the queue as it was: a half-read manifest
// set is never applied.
func (c *Controller[D, O]) pass(ctx context.Context, l *loop, reason string) {
	log := c.Logger.With("action", "pass", "trigger", reason)
	// Every pass restarts the periodic timer (a follow-up pass reads only
	// what the last actions touched, but the service reads the whole tree
	// again once a resync period has gone by since it last did).
	l.nextResync = c.Clock.Now().Add(c.resyncPeriod())
	if c.Watcher != nil {
		c.Watcher.Sync()
	}
	fail := func(err error) {
		if ctx.Err() != nil {
			log.Info("reconcile pass interrupted by shutdown", "err", err)
		} else {
			log.Error("reconcile pass failed", "err", err)
		}
		if h := c.Hooks.OnPassDone; h != nil {
			h(reason, err)
		}
	}
	var items []Item
	err := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				log.Error("panic in reconcile pass", "panic", r, "stack", string(debug.Stack()))
				err = fmt.Errorf("panic in reconcile pass: %v", r)
			}
		}()
		start := c.Clock.Now()
		desired, dir, err := c.load(ctx)
		if h := c.Hooks.OnLoad; h != nil {
			h(dir, err)
		}
		c.phase("load", start)
		if err != nil {
			return fmt.Errorf("load manifests from %s: %w", dir, err)
		}
		c.resolved.Store(dir)
		start = c.Clock.Now()
		observed, err := c.Observe(ctx)
		c.phase("observe", start)
		if err != nil {
			return fmt.Errorf("observe state: %w", err)
		}
		start = c.Clock.Now()
		items = c.Plan(desired, observed)
		c.phase("plan", start)
		return nil
	}()
	if err != nil {
		l.passFailures++
		l.holdUntil = c.Clock.Now().Add(l.q.Backoff.Delay(l.passFailures))
		fail(err)
		return
	}
	l.passFailures, l.holdUntil = 0, time.Time{}
	held := l.q.Replace(items, c.Clock.Now())
	log.Debug("pass planned", "items", len(items), "held", len(held))
	l.passActive, l.passReason = true, reason
	if h := c.Hooks.OnQueueDepth; h != nil {
		h(l.q.Depth())
	}
}

func (c *Controller[D, O]) phase(name string, start time.Time) {
	if h := c.Hooks.OnPhase; h != nil {
		h(name, c.Clock.Now().Sub(start))
	}
}

// maxLoadAttempts bounds the re-reads when the root's target keeps moving.
const maxLoadAttempts = 3

// load reads the manifests through LoadSettled.
func (c *Controller[D, O]) load(ctx context.Context) (D, string, error) {
	return LoadSettled(ctx, c.Logger, c.Root, c.Load)
}

// LoadSettled is the one place a manifest root is resolved for a read and
// the one loop that reads again: it resolves root, calls load with the
// resolved directory (so that everything one read does, the revision check
// included, sees one worktree), and reads again when root pointed
// elsewhere by the end (a git-sync swap mid-read would otherwise mix two
// revisions, or read one being deleted), at most maxLoadAttempts times. It
// returns the directory read. The service's loop and plan and apply use it.
func LoadSettled[D any](ctx context.Context, log *slog.Logger, root string, load func(ctx context.Context, root, dir string) (D, error)) (D, string, error) {
	var (
		desired D
		err     error
		dir     = resolveRoot(root)
	)
	for range maxLoadAttempts {
		desired, err = load(ctx, root, dir)
		after := resolveRoot(root)
		if after == dir {
			return desired, dir, err
		}
		log.Info("manifest root moved during load, reading again", "action", "load", "from", dir, "to", after)
		dir = after
	}
	var zero D
	return zero, dir, fmt.Errorf("load manifests from %s: %w (%d reads)", root, manifests.ErrRootChanging, maxLoadAttempts)
}

// resolveRoot is root resolved, or root itself while it does not resolve:
// a missing root is the load's to report (or to treat as empty).
func resolveRoot(root string) string {
	if root == "" {
		return ""
	}
	if p, err := manifests.ResolveRoot(root); err == nil {
		return p
	}
	return root
}

// dispatch starts every item the queue allows now and reports the items it
// blocked.
func (c *Controller[D, O]) dispatch(l *loop) {
	changed := false
	for {
		d, ok := l.q.Next()
		if !ok {
			break
		}
		changed = true
		if d.Blocked != nil {
			c.Logger.Info("action blocked", reconcile.KeyAttr(d.Item.Key), "action", d.Item.Op, "err", d.Blocked)
			if h := c.Hooks.OnResult; h != nil {
				h(d.Item.Key, d.Item.Op, d.Blocked, 0)
			}
			continue
		}
		go c.run(l, d.Item)
	}
	if changed {
		if h := c.Hooks.OnQueueDepth; h != nil {
			h(l.q.Depth())
		}
	}
}

// run executes one item on a worker goroutine; a panic becomes its error
// so that one broken action cannot take the service down.
func (c *Controller[D, O]) run(l *loop, it Item) {
	start := c.Clock.Now()
	var err error
	func() {
		defer func() {
			if r := recover(); r != nil {
				c.Logger.Error("panic in action", reconcile.KeyAttr(it.Key), "action", it.Op, "panic", r, "stack", string(debug.Stack()))
				err = fmt.Errorf("panic in %s %s: %v", it.Op, it.Key, r)
			}
		}()
		if it.Run == nil {
			err = reconcile.Terminal(fmt.Errorf("%s %s: no action to run", it.Op, it.Key))
			return
		}
		err = it.Run(l.itemCtx)
	}()
	l.results <- itemDone{item: it, err: err, d: c.Clock.Now().Sub(start)}
}

func (c *Controller[D, O]) finish(l *loop, r itemDone) {
	res := l.q.Done(r.item.Key, r.err, c.Clock.Now())
	log := c.Logger.With(reconcile.KeyAttr(r.item.Key), "action", r.item.Op, "duration", r.d)
	switch res.Outcome {
	case OutcomeSuccess:
		log.Info("action done")
	case OutcomeWait:
		log.Info("action waiting", "err", r.err)
	case OutcomeTerminal:
		log.Error("action failed, not retrying until the spec changes", "err", r.err)
	case OutcomeError:
		log.Warn("action failed, will retry", "err", r.err, "retry_in", res.Retry)
		if h := c.Hooks.OnRetry; h != nil {
			h(r.item.Key, res.Retry)
		}
	}
	if h := c.Hooks.OnResult; h != nil {
		h(r.item.Key, r.item.Op, r.err, r.d)
	}
	if res.Rerun {
		c.Trigger(TriggerRequeue)
	}
}

// drain waits for the items in flight, at most DrainTimeout, and reports
// them; nothing new starts.
func (c *Controller[D, O]) drain(l *loop, cancelItems context.CancelFunc) {
	if l.q.Running() == 0 {
		return
	}
	c.Logger.Info("shutting down, waiting for actions in flight", "action", "drain", "running", l.q.Running())
	timer := c.Clock.TimerAt(c.Clock.Now().Add(c.DrainTimeout))
	defer timer.Stop()
	for l.q.Running() > 0 {
		select {
		case r := <-l.results:
			c.finish(l, r)
		case <-timer.C():
			c.Logger.Warn("drain timeout, cancelling actions in flight", "action", "drain", "running", l.q.Running())
			cancelItems()
			return
		}
	}
}
