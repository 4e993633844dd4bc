package controller

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/manifests"
	"github.com/zocker-reconcile/zocker-reconcile/reconcile"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func item(key string, deps ...string) Item {
	return Item{Key: key, Op: "sync", Generation: "g1", Deps: deps}
}

// drainNext starts everything the queue allows and returns the started
// keys and the blocked ones.
func drainNext(q *Queue) (started, blocked []string) {
	for {
		d, ok := q.Next()
		if !ok {
			return started, blocked
		}
		if d.Blocked != nil {
			blocked = append(blocked, d.Item.Key)
			continue
		}
		started = append(started, d.Item.Key)
	}
}

func TestQueueBackoffGrowsAndResets(t *testing.T) {
	q := &Queue{}
	now := t0
	boom := errors.New("zfs clone: busy")
	var delays []time.Duration
	for range 4 {
		q.Replace([]Item{item(containerKey("web"))}, now)
		started, _ := drainNext(q)
		if !slices.Equal(started, []string{containerKey("web")}) {
			t.Fatalf("at %v started %v, want Container/web", now.Sub(t0), started)
		}
		res := q.Done(containerKey("web"), boom, now)
		if res.Outcome != OutcomeError {
			t.Fatalf("outcome %v, want error", res.Outcome)
		}
		delays = append(delays, res.Retry)
		// Just before the retry time the key is held.
		if held := q.Replace([]Item{item(containerKey("web"))}, now.Add(res.Retry-time.Millisecond)); !slices.Equal(held, []string{containerKey("web")}) {
			t.Fatalf("held %v before the retry time, want Container/web", held)
		}
		if s, _ := drainNext(q); len(s) != 0 {
			t.Fatalf("started %v while backing off", s)
		}
		if next, ok := q.NextRetry(); !ok || !next.Equal(now.Add(res.Retry)) {
			t.Fatalf("NextRetry = %v %v, want %v", next, ok, now.Add(res.Retry))
		}
		now = now.Add(res.Retry)
	}
	if want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}; !slices.Equal(delays, want) {
		t.Fatalf("delays %v, want %v", delays, want)
	}
	q.Replace([]Item{item(containerKey("web"))}, now)
	drainNext(q)
	if res := q.Done(containerKey("web"), nil, now); res.Outcome != OutcomeSuccess || res.Retry != 0 {
		t.Fatalf("success gave %+v", res)
	}
	if _, ok := q.NextRetry(); ok {
		t.Fatal("NextRetry after success, want none")
	}
	q.Replace([]Item{item(containerKey("web"))}, now)
	drainNext(q)
	if res := q.Done(containerKey("web"), boom, now); res.Retry != time.Second {
		t.Fatalf("first failure after success: retry %v, want 1s (reset)", res.Retry)
	}
}

func TestQueueNewGenerationResetsBackoff(t *testing.T) {
	q := &Queue{}
	q.Replace([]Item{item(containerKey("web"))}, t0)
	drainNext(q)
	q.Done(containerKey("web"), errors.New("boom"), t0)
	it := item(containerKey("web"))
	it.Generation = "g2"
	if held := q.Replace([]Item{it}, t0); len(held) != 0 {
		t.Fatalf("held %v, want a new spec to run at once", held)
	}
	if s, _ := drainNext(q); !slices.Equal(s, []string{containerKey("web")}) {
		t.Fatalf("started %v", s)
	}
}

func TestQueueTerminalUntilGenerationChanges(t *testing.T) {
	q := &Queue{}
	q.Replace([]Item{item(containerKey("web"))}, t0)
	drainNext(q)
	res := q.Done(containerKey("web"), reconcile.Terminal(errors.New("invalid spec")), t0)
	if res.Outcome != OutcomeTerminal {
		t.Fatalf("outcome %v, want terminal", res.Outcome)
	}
	for i := range 3 {
		now := t0.Add(time.Duration(i) * time.Hour)
		q.Replace([]Item{item(containerKey("web"))}, now)
		if s, _ := drainNext(q); len(s) != 0 {
			t.Fatalf("pass %d retried a terminal key: %v", i, s)
		}
	}
	if _, ok := q.NextRetry(); ok {
		t.Fatal("a terminal key has a retry time")
	}
	it := item(containerKey("web"))
	it.Generation = "g2"
	q.Replace([]Item{it}, t0)
	if s, _ := drainNext(q); !slices.Equal(s, []string{containerKey("web")}) {
		t.Fatalf("new generation started %v, want Container/web", s)
	}
}

func TestQueueWaitDoesNotBackOff(t *testing.T) {
	q := &Queue{}
	q.Replace([]Item{item(containerKey("web"))}, t0)
	drainNext(q)
	res := q.Done(containerKey("web"), reconcile.Wait("image base not ready"), t0)
	if res.Outcome != OutcomeWait || res.Retry != 0 {
		t.Fatalf("wait gave %+v", res)
	}
	q.Replace([]Item{item(containerKey("web"))}, t0)
	if s, _ := drainNext(q); !slices.Equal(s, []string{containerKey("web")}) {
		t.Fatalf("next pass started %v, want the waiting key again at once", s)
	}
}

func TestQueueDependencies(t *testing.T) {
	q := &Queue{Workers: 4}
	q.Replace([]Item{item(containerKey("web"), containerKey("db")), item(containerKey("db"), imageKey("pg")), item(imageKey("pg")), item(containerKey("other"), volumeKey("converged"))}, t0)
	s, _ := drainNext(q)
	if !slices.Equal(s, []string{imageKey("pg"), containerKey("other")}) {
		t.Fatalf("started %v, want Image/pg and Container/other (Volume/converged was not planned)", s)
	}
	q.Done(imageKey("pg"), nil, t0)
	if s, _ = drainNext(q); !slices.Equal(s, []string{containerKey("db")}) {
		t.Fatalf("started %v, want Container/db after its image", s)
	}
	q.Done(containerKey("db"), errors.New("jail -c failed"), t0)
	s, b := drainNext(q)
	if len(s) != 0 || !slices.Equal(b, []string{containerKey("web")}) {
		t.Fatalf("started %v blocked %v, want web blocked by the failed db", s, b)
	}
	q.Done(containerKey("other"), nil, t0)
	if !q.Settled() {
		t.Fatal("queue not settled after every item ended")
	}
}

func TestQueueBlockedReasonNamesDependency(t *testing.T) {
	q := &Queue{}
	q.Replace([]Item{item(imageKey("base")), item(containerKey("web"), imageKey("base"))}, t0)
	drainNext(q)
	q.Done(imageKey("base"), reconcile.Terminal(errors.New("tarball missing")), t0)
	d, ok := q.Next()
	if !ok || d.Blocked == nil || !reconcile.IsWait(d.Blocked) || !strings.Contains(d.Blocked.Error(), imageKey("base")) {
		t.Fatalf("Next = %+v %v, want Container/web blocked naming Image/base", d, ok)
	}
}

func TestQueueCycleIsBlocked(t *testing.T) {
	q := &Queue{}
	q.Replace([]Item{item(containerKey("a"), containerKey("b")), item(containerKey("b"), containerKey("a"))}, t0)
	s, b := drainNext(q)
	if len(s) != 0 || len(b) != 2 {
		t.Fatalf("started %v blocked %v, want both blocked by the cycle", s, b)
	}
	if !q.Settled() {
		t.Fatal("a cycle left the queue unsettled")
	}
}

func TestQueueLimits(t *testing.T) {
	q := &Queue{Workers: 3, ClassLimits: DefaultClassLimits}
	var items []Item
	for _, k := range []string{imageKey("a"), imageKey("b"), imageKey("c"), containerKey("x"), containerKey("y"), containerKey("z")} {
		it := item(k)
		if strings.HasPrefix(k, manifests.KindImage+"/") {
			it.Class = "build"
		}
		items = append(items, it)
	}
	q.Replace(items, t0)
	s, _ := drainNext(q)
	if !slices.Equal(s, []string{imageKey("a"), containerKey("x"), containerKey("y")}) {
		t.Fatalf("started %v, want one build and two others (3 workers, builds 1 at a time)", s)
	}
	q.Done(containerKey("x"), nil, t0)
	if s, _ = drainNext(q); !slices.Equal(s, []string{containerKey("z")}) {
		t.Fatalf("started %v, want Container/z (build slot still taken)", s)
	}
	q.Done(imageKey("a"), nil, t0)
	if s, _ = drainNext(q); !slices.Equal(s, []string{imageKey("b")}) {
		t.Fatalf("started %v, want Image/b", s)
	}
}

func TestQueueCoalescesAndRerunsInFlight(t *testing.T) {
	q := &Queue{}
	a := item(containerKey("web"))
	a.Op = "create"
	q.Replace([]Item{a, item(containerKey("db"))}, t0)
	d, _ := q.Next() // web in flight
	if d.Item.Key != containerKey("web") {
		t.Fatalf("first Next = %s", d.Item.Key)
	}
	// A second pass plans web again (stale) and db with a new op: db is
	// replaced, web is not queued twice.
	db := item(containerKey("db"))
	db.Op = "replace"
	q.Replace([]Item{a, db}, t0)
	if n := q.Depth(); n != 1 {
		t.Fatalf("depth %d, want 1 (db only)", n)
	}
	d, _ = q.Next()
	if d.Item.Key != containerKey("db") || d.Item.Op != "replace" {
		t.Fatalf("Next = %s %s, want the newest db item", d.Item.Key, d.Item.Op)
	}
	if res := q.Done(containerKey("web"), nil, t0); !res.Rerun {
		t.Fatal("web planned again while in flight: want Rerun")
	}
	// A pass without db drops it from the plan but not from flight.
	q.Replace(nil, t0)
	if q.Running() != 1 {
		t.Fatalf("running %d, want db still in flight", q.Running())
	}
	q.Done(containerKey("db"), nil, t0)
	if !q.Settled() {
		t.Fatal("not settled")
	}
}

// BenchmarkQueuePass1000 plans 1,000 items (each container depending on
// its image, every tenth on another container) and runs them all through
// Next and Done with 2 workers: the queue's whole cost for a large pass.
func BenchmarkQueuePass1000(b *testing.B) {
	var items []Item
	for i := range 500 {
		img := imageKey("i") + strconv.Itoa(i)
		items = append(items, Item{Key: img, Op: "import", Class: "build", Generation: "g"})
		deps := []string{img}
		if i%10 == 9 {
			deps = append(deps, containerKey("c")+strconv.Itoa(i-1))
		}
		items = append(items, Item{Key: containerKey("c") + strconv.Itoa(i), Op: "create", Generation: "g", Deps: deps})
	}
	b.ReportAllocs()
	for b.Loop() {
		q := &Queue{ClassLimits: DefaultClassLimits}
		q.Replace(items, t0)
		var inflight []string
		done := 0
		for done < len(items) {
			for {
				d, ok := q.Next()
				if !ok {
					break
				}
				if d.Blocked != nil {
					done++
					continue
				}
				inflight = append(inflight, d.Item.Key)
			}
			if len(inflight) == 0 {
				b.Fatalf("stuck after %d items", done)
			}
			q.Done(inflight[0], nil, t0)
			inflight = inflight[1:]
			done++
		}
	}
}

// Keys as production makes them (reconcile.Key): "Container/web".
func containerKey(name string) string { return reconcile.Key(manifests.KindContainer, name) }
func imageKey(name string) string     { return reconcile.Key(manifests.KindImage, name) }
func volumeKey(name string) string    { return reconcile.Key(manifests.KindVolume, name) }
