package controller

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/manifests"
	"github.com/zocker-reconcile/zocker-reconcile/reconcile"
)

// fakeClock moves only when the test says so. Timers due at creation fire
// at once, so the order of Advance and TimerAt does not matter.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c       chan time.Time
	at      time.Time
	stopped bool
	clk     *fakeClock
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	t.clk.mu.Lock()
	defer t.clk.mu.Unlock()
	was := !t.stopped
	t.stopped = true
	return was
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) TimerAt(at time.Time) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: make(chan time.Time, 1), at: at, clk: c}
	if !at.After(c.now) {
		t.c <- c.now
		t.stopped = true
		return t
	}
	c.timers = append(c.timers, t)
	return t
}

// waitArmed waits until the loop sleeps on a timer in the future and
// returns its deadline (timers due at once never count: they fire).
func (c *fakeClock) waitArmed(t *testing.T) time.Time {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		var at time.Time
		for _, tm := range c.timers {
			if !tm.stopped && tm.at.After(c.now) && (at.IsZero() || tm.at.Before(at)) {
				at = tm.at
			}
		}
		c.mu.Unlock()
		if !at.IsZero() {
			return at
		}
		time.Sleep(time.Millisecond) // polling step under the deadline
	}
	t.Fatal("the loop armed no timer in the future")
	return time.Time{}
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	live := c.timers[:0]
	for _, t := range c.timers {
		switch {
		case t.stopped:
		case !t.at.After(c.now):
			t.c <- c.now
			t.stopped = true
		default:
			live = append(live, t)
		}
	}
	c.timers = live
}

type result struct {
	key, op string
	err     error
}

// harness runs a Controller[int, int] whose plan is a test function, with
// every hook feeding a channel.
type harness struct {
	c       *Controller[int, int]
	clock   *fakeClock
	results chan result
	passes  chan error
	retries chan time.Duration
	cancel  context.CancelFunc
	done    chan error
}

func newHarness(t *testing.T, plan func() []Item, tweak func(*Controller[int, int])) *harness {
	t.Helper()
	h := &harness{
		results: make(chan result, 1000),
		passes:  make(chan error, 1000),
		retries: make(chan time.Duration, 1000),
		done:    make(chan error, 1),
	}
	h.c = &Controller[int, int]{
		Load:    func(context.Context, string, string) (int, error) { return 0, nil },
		Observe: func(context.Context) (int, error) { return 0, nil },
		Plan:    func(int, int) []Item { return plan() },
		Resync:  time.Hour, // the tests trigger passes themselves
		Clock:   &fakeClock{now: t0},
		Rand:    func() float64 { return 0.5 },
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		Hooks: Hooks{
			OnResult:   func(key, op string, err error, _ time.Duration) { h.results <- result{key, op, err} },
			OnPassDone: func(_ string, err error) { h.passes <- err },
			OnRetry:    func(_ string, d time.Duration) { h.retries <- d },
		},
	}
	if tweak != nil {
		tweak(h.c)
	}
	h.clock = h.c.Clock.(*fakeClock)
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- h.c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-h.done:
		case <-time.After(5 * time.Second):
			t.Error("controller did not stop")
		}
	})
	return h
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
	panic("unreachable")
}

func nothing[T any](t *testing.T, ch <-chan T, what string) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("unexpected %s: %v", what, v)
	case <-time.After(50 * time.Millisecond):
	}
}

func TestControllerBackoffGrowsAndResets(t *testing.T) {
	var fail atomic.Bool
	fail.Store(true)
	var mu sync.Mutex
	var runs []time.Time
	clk := &fakeClock{now: t0}
	h := newHarness(t, func() []Item {
		return []Item{{Key: containerKey("web"), Op: "start", Generation: "g1", Run: func(context.Context) error {
			mu.Lock()
			runs = append(runs, clk.Now())
			mu.Unlock()
			if fail.Load() {
				return errors.New("jail -c web: exit status 1")
			}
			return nil
		}}}
	}, func(c *Controller[int, int]) { c.Clock = clk })
	var delays []time.Duration
	for range 5 {
		if r := recv(t, h.results, "result"); r.err == nil {
			t.Fatal("want a failure")
		}
		d := recv(t, h.retries, "retry")
		delays = append(delays, d)
		h.clock.Advance(d - time.Millisecond)
		nothing(t, h.results, "run before the backoff expired")
		h.clock.Advance(time.Millisecond)
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second}
	if !slices.Equal(delays, want) {
		t.Fatalf("delays %v, want %v", delays, want)
	}
	// The sixth run (after 16 s) succeeds and resets the backoff.
	fail.Store(true)
	if r := recv(t, h.results, "result"); r.err == nil {
		t.Fatal("want a failure")
	}
	fail.Store(false)
	h.clock.Advance(recv(t, h.retries, "retry"))
	if r := recv(t, h.results, "result"); r.err != nil {
		t.Fatalf("want success, got %v", r.err)
	}
	fail.Store(true)
	h.c.Trigger("test")
	recv(t, h.results, "result")
	if d := recv(t, h.retries, "retry"); d != time.Second {
		t.Fatalf("first failure after a success backs off %v, want 1s", d)
	}
	mu.Lock()
	defer mu.Unlock()
	var gaps []time.Duration
	for i := 1; i < 6; i++ {
		gaps = append(gaps, runs[i].Sub(runs[i-1]))
	}
	if !slices.Equal(gaps, want) {
		t.Fatalf("runs were %v apart, want %v", gaps, want)
	}
}

func TestControllerTerminalNotRetriedUntilGenerationChanges(t *testing.T) {
	var gen atomic.Value
	gen.Store("g1")
	var runs atomic.Int32
	h := newHarness(t, func() []Item {
		return []Item{{Key: containerKey("web"), Op: "create", Generation: gen.Load().(string), Run: func(context.Context) error {
			runs.Add(1)
			return reconcile.Terminal(errors.New("image nope does not exist"))
		}}}
	}, nil)
	r := recv(t, h.results, "result")
	if !reconcile.IsTerminal(r.err) {
		t.Fatalf("result %v, want a *reconcile.TerminalError", r.err)
	}
	recv(t, h.passes, "pass done")
	for range 3 {
		h.clock.Advance(10 * time.Minute) // far past any backoff
		h.c.Trigger("test")
		if err := recv(t, h.passes, "pass done"); err != nil {
			t.Fatal(err)
		}
	}
	if n := runs.Load(); n != 1 {
		t.Fatalf("ran %d times, want 1 (terminal)", n)
	}
	select {
	case d := <-h.retries:
		t.Fatalf("a terminal error scheduled a retry in %v", d)
	default:
	}
	gen.Store("g2")
	h.c.Trigger("test")
	recv(t, h.results, "result")
	if n := runs.Load(); n != 2 {
		t.Fatalf("ran %d times after the spec changed, want 2", n)
	}
}

func TestControllerPanicIsAnError(t *testing.T) {
	var okRuns atomic.Int32
	h := newHarness(t, func() []Item {
		return []Item{
			{Key: containerKey("bad"), Op: "start", Run: func(context.Context) error { panic("nil map") }},
			{Key: containerKey("good"), Op: "start", Run: func(context.Context) error { okRuns.Add(1); return nil }},
		}
	}, nil)
	got := map[string]error{}
	for range 2 {
		r := recv(t, h.results, "result")
		got[r.key] = r.err
	}
	if err := got[containerKey("bad")]; err == nil || !strings.Contains(err.Error(), "panic in start Container/bad: nil map") {
		t.Fatalf("bad: %v, want the panic as an error", err)
	}
	if err := got[containerKey("good")]; err != nil {
		t.Fatalf("good: %v", err)
	}
	if err := recv(t, h.passes, "pass done"); err != nil {
		t.Fatal(err)
	}
	if !h.c.Ready() {
		t.Fatal("not ready after the first pass settled")
	}
	// The loop goes on: the panicking key backs off like any failure and
	// runs again when its backoff expires.
	h.clock.Advance(recv(t, h.retries, "retry"))
	seen := map[string]bool{}
	for range 2 {
		seen[recv(t, h.results, "result").key] = true
	}
	if !seen[containerKey("bad")] || !seen[containerKey("good")] {
		t.Fatalf("second pass ran %v, want both", seen)
	}
}

func TestControllerPanicInPlanKeepsLoop(t *testing.T) {
	var calls atomic.Int32
	h := newHarness(t, func() []Item {
		if calls.Add(1) == 1 {
			panic("planner bug")
		}
		return nil
	}, nil)
	if err := recv(t, h.passes, "pass"); err == nil || !strings.Contains(err.Error(), "planner bug") {
		t.Fatalf("pass error %v, want the panic", err)
	}
	if h.c.Ready() {
		t.Fatal("ready after a failed pass")
	}
	h.c.Trigger("sighup")
	if err := recv(t, h.passes, "pass"); err != nil {
		t.Fatal(err)
	}
	if !h.c.Ready() {
		t.Fatal("not ready after a good pass")
	}
}

func TestControllerBoundedWorkers(t *testing.T) {
	const workers, n = 3, 10
	release := make(chan struct{})
	started := make(chan string, n)
	var cur, peak atomic.Int32
	var items []Item
	for i := range n {
		items = append(items, Item{Key: containerKey("c") + strconv.Itoa(i), Op: "start", Run: func(context.Context) error {
			v := cur.Add(1)
			for {
				p := peak.Load()
				if v <= p || peak.CompareAndSwap(p, v) {
					break
				}
			}
			started <- "x"
			<-release
			cur.Add(-1)
			return nil
		}})
	}
	h := newHarness(t, func() []Item { return items }, func(c *Controller[int, int]) { c.Workers = workers })
	for range workers {
		recv(t, started, "start")
	}
	nothing(t, started, "start beyond the worker bound")
	close(release)
	for range n {
		if r := recv(t, h.results, "result"); r.err != nil {
			t.Fatal(r.err)
		}
	}
	if p := peak.Load(); p != workers {
		t.Fatalf("peak concurrency %d, want %d", p, workers)
	}
}

func TestControllerDependentsWait(t *testing.T) {
	var mu sync.Mutex
	var order []string
	rec := func(k string, err error) func(context.Context) error {
		return func(context.Context) error {
			time.Sleep(5 * time.Millisecond) // give a wrongly started dependent time to show
			mu.Lock()
			order = append(order, k)
			mu.Unlock()
			return err
		}
	}
	h := newHarness(t, func() []Item {
		return []Item{
			{Key: containerKey("web"), Op: "start", Deps: []string{containerKey("db")}, Run: rec(containerKey("web"), nil)},
			{Key: containerKey("db"), Op: "start", Deps: []string{imageKey("pg")}, Run: rec(containerKey("db"), nil)},
			{Key: imageKey("pg"), Op: "build", Class: "build", Run: rec(imageKey("pg"), nil)},
			{Key: containerKey("cache"), Op: "start", Deps: []string{imageKey("broken")}, Run: rec(containerKey("cache"), nil)},
			{Key: imageKey("broken"), Op: "build", Class: "build", Run: rec(imageKey("broken"), errors.New("RUN exit 1"))},
		}
	}, func(c *Controller[int, int]) { c.Workers = 4 })
	got := map[string]error{}
	for range 5 {
		r := recv(t, h.results, "result")
		got[r.key] = r.err
	}
	mu.Lock()
	defer mu.Unlock()
	idx := func(k string) int { return slices.Index(order, k) }
	if !(idx(imageKey("pg")) < idx(containerKey("db")) && idx(containerKey("db")) < idx(containerKey("web"))) {
		t.Fatalf("order %v, want Image/pg < Container/db < Container/web", order)
	}
	if idx(containerKey("cache")) >= 0 {
		t.Fatalf("Container/cache ran (%v) although its image failed", order)
	}
	if err := got[containerKey("cache")]; !reconcile.IsWait(err) || !strings.Contains(err.Error(), imageKey("broken")) {
		t.Fatalf("Container/cache: %v, want a wait naming Image/broken", err)
	}
}

func TestControllerDrainsOnShutdown(t *testing.T) {
	running := make(chan struct{})
	release := make(chan struct{})
	var itemCtxErr atomic.Value
	h := newHarness(t, func() []Item {
		return []Item{{Key: containerKey("web"), Op: "replace", Run: func(ctx context.Context) error {
			close(running)
			<-release
			itemCtxErr.Store(ctx.Err() == nil)
			return nil
		}}}
	}, nil)
	<-running
	h.cancel()
	nothing(t, h.done, "Run returning with an action in flight")
	close(release)
	if err := recv(t, h.done, "Run to return"); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	h.done <- nil // for the cleanup
	if r := recv(t, h.results, "result"); r.err != nil {
		t.Fatalf("drained item: %v", r.err)
	}
	if ok, _ := itemCtxErr.Load().(bool); !ok {
		t.Fatal("the in-flight action's context was cancelled by shutdown")
	}
}

func TestControllerDrainTimeout(t *testing.T) {
	running := make(chan struct{})
	h := newHarness(t, func() []Item {
		return []Item{{Key: imageKey("big"), Op: "build", Run: func(ctx context.Context) error {
			close(running)
			<-ctx.Done()
			return ctx.Err()
		}}}
	}, func(c *Controller[int, int]) { c.DrainTimeout = 5 * time.Second })
	<-running
	h.cancel()
	nothing(t, h.done, "Run returning before the drain timeout")
	h.clock.Advance(5 * time.Second)
	if err := recv(t, h.done, "Run to return"); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	h.done <- nil
}

func TestControllerWaitIsNotAFailure(t *testing.T) {
	var ready atomic.Bool
	h := newHarness(t, func() []Item {
		return []Item{{Key: containerKey("web"), Op: "create", Run: func(context.Context) error {
			if !ready.Load() {
				return reconcile.Wait("image base is not ready")
			}
			return nil
		}}}
	}, nil)
	if r := recv(t, h.results, "result"); !reconcile.IsWait(r.err) {
		t.Fatalf("result %v, want a wait", r.err)
	}
	recv(t, h.passes, "pass")
	ready.Store(true)
	h.c.Trigger("test") // no clock advance: a wait has no backoff
	if r := recv(t, h.results, "result"); r.err != nil {
		t.Fatalf("result %v, want success", r.err)
	}
	select {
	case d := <-h.retries:
		t.Fatalf("a wait counted as a retry (%v)", d)
	default:
	}
}

func TestControllerPeriodicResync(t *testing.T) {
	var triggers sync.Map
	h := newHarness(t, func() []Item { return nil }, func(c *Controller[int, int]) {
		c.Resync = 30 * time.Second
		c.Rand = func() float64 { return 0 } // -10%: 27 s
		c.Hooks.OnResync = func(r string) {
			v, _ := triggers.LoadOrStore(r, new(atomic.Int32))
			v.(*atomic.Int32).Add(1)
		}
	})
	recv(t, h.passes, "startup pass")
	h.clock.Advance(27*time.Second - time.Millisecond)
	nothing(t, h.passes, "resync before 27s")
	h.clock.Advance(time.Millisecond)
	recv(t, h.passes, "periodic pass")
	for _, r := range []string{TriggerStartup, TriggerPeriodic} {
		v, ok := triggers.Load(r)
		if !ok || v.(*atomic.Int32).Load() != 1 {
			n := int32(-1)
			if ok {
				n = v.(*atomic.Int32).Load()
			}
			t.Fatalf("trigger %s counted %d times, want 1", r, n)
		}
	}
	if h.c.LastProgress().Before(t0.Add(27 * time.Second)) {
		t.Fatalf("LastProgress %v not updated by the loop", h.c.LastProgress())
	}
}

func TestControllerLoadRetriesWhenRootMoves(t *testing.T) {
	dir := t.TempDir()
	mk := func(name string) string {
		p := filepath.Join(dir, name)
		if err := mkdirAll(p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	rev1, rev2 := mk("rev1"), mk("rev2")
	root := filepath.Join(dir, "current")
	swap(t, root, "rev1")
	var loads []string
	c := &Controller[string, int]{
		Root: root,
		Load: func(_ context.Context, _, d string) (string, error) {
			loads = append(loads, d)
			if len(loads) == 1 {
				swap(t, root, "rev2") // git-sync swaps mid-read
			}
			return d, nil
		},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	c.setup()
	got, resolved, err := c.load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(loads, []string{rev1, rev2}) || got != rev2 || resolved != rev2 {
		t.Fatalf("loads %v, got %s from %s: want a re-read from %s", loads, got, resolved, rev2)
	}
}

// TestLoadSettledGivesUpOnAFlappingRoot: a link that moves during every
// read is an error wrapping manifests.ErrRootChanging after
// maxLoadAttempts reads, never a set; each read gets the root as given and
// the directory resolved for it.
func TestLoadSettledGivesUpOnAFlappingRoot(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"rev1", "rev2"} {
		if err := mkdirAll(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	root := filepath.Join(dir, "current")
	swap(t, root, "rev1")
	reads := 0
	got, _, err := LoadSettled(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil)), root,
		func(_ context.Context, r, d string) (string, error) {
			reads++
			if r != root || filepath.Dir(d) != dir {
				t.Errorf("read %d: root %s dir %s", reads, r, d)
			}
			swap(t, root, []string{"rev1", "rev2"}[reads%2])
			return d, nil
		})
	if !errors.Is(err, manifests.ErrRootChanging) || got != "" || reads != maxLoadAttempts {
		t.Fatalf("got %q, %v after %d reads; want ErrRootChanging after %d", got, err, reads, maxLoadAttempts)
	}
}

func TestControllerFailedPassDoesNotSpinRetries(t *testing.T) {
	var observeFails atomic.Bool
	var passes atomic.Int32
	h := newHarness(t, func() []Item {
		return []Item{{Key: containerKey("web"), Op: "start", Run: func(context.Context) error { return errors.New("boom") }}}
	}, func(c *Controller[int, int]) {
		c.Observe = func(context.Context) (int, error) {
			passes.Add(1)
			if observeFails.Load() {
				return 0, errors.New("zfs get: exit status 1")
			}
			return 0, nil
		}
	})
	recv(t, h.results, "result")
	d := recv(t, h.retries, "retry")
	recv(t, h.passes, "pass")
	observeFails.Store(true)
	h.clock.Advance(d)
	if err := recv(t, h.passes, "retry pass"); err == nil || !strings.Contains(err.Error(), "observe state") {
		t.Fatalf("pass error %v, want the observe failure", err)
	}
	// The loop must go back to sleep on a timer in the future (the held
	// retry), not spin on a retry that is due at once.
	before := passes.Load()
	at := h.clock.waitArmed(t)
	if n := passes.Load(); n != before {
		t.Fatalf("%d more passes without the clock moving: the retry spins", n-before)
	}
	if want := h.clock.Now().Add(time.Second); !at.Equal(want) {
		t.Errorf("the loop sleeps until %s, want the held retry at %s", at, want)
	}
	observeFails.Store(false)
	h.clock.Advance(time.Second) // the held retry: 1 s after the failed pass
	recv(t, h.passes, "retry pass")
	if r := recv(t, h.results, "result"); r.key != containerKey("web") {
		t.Fatalf("result %v", r)
	}
}

func TestControllerRequeuesKeyPlannedWhileRunning(t *testing.T) {
	release := make(chan struct{})
	running := make(chan struct{}, 10)
	var first atomic.Bool
	first.Store(true)
	reasons := make(chan string, 100)
	planned := make(chan struct{}, 10)
	h := newHarness(t, func() []Item {
		planned <- struct{}{}
		return []Item{{Key: imageKey("base"), Op: "import", Class: "build", Run: func(context.Context) error {
			running <- struct{}{}
			if first.CompareAndSwap(true, false) {
				<-release
			}
			return nil
		}}}
	}, func(c *Controller[int, int]) { c.Hooks.OnResync = func(r string) { reasons <- r } })
	<-planned
	<-running
	h.c.Trigger("test") // plans Image/base again while it runs
	// The loop handles the item's end only after this pass returns, so
	// releasing once Plan ran cannot overtake the pass.
	recv(t, planned, "the test pass")
	close(release)
	recv(t, h.results, "first import")
	var got []string
	for len(got) < 3 {
		got = append(got, recv(t, reasons, "trigger"))
	}
	if !slices.Equal(got, []string{TriggerStartup, "test", TriggerRequeue}) {
		t.Fatalf("triggers %v, want startup, test, requeue", got)
	}
	<-running // the requeue pass imports again from fresh state
	recv(t, h.results, "second import")
}

// syncBuffer is a bytes.Buffer safe for the loop's and the test's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The loop's lines carry the house keys (container=web, image=bb), not the
// object key.
func TestControllerLogsHouseKeys(t *testing.T) {
	var logs syncBuffer
	h := newHarness(t, func() []Item {
		return []Item{
			{Key: imageKey("bb"), Op: "import", Run: func(context.Context) error { return nil }},
			{Key: containerKey("web"), Op: "start", Deps: []string{imageKey("bb")}, Run: func(context.Context) error { return errors.New("boom") }},
		}
	}, func(c *Controller[int, int]) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	recv(t, h.results, "image result")
	recv(t, h.results, "container result")
	out := logs.String()
	for _, want := range []string{
		`msg="action done" image=bb action=import`,
		`msg="action failed, will retry" container=web action=start`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "key=") {
		t.Errorf("an object key logged as key=:\n%s", out)
	}
}
