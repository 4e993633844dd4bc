package controller

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

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
		q.Replace([]Item{item("container/web")}, now)
		started, _ := drainNext(q)
		if !slices.Equal(started, []string{"container/web"}) {
			t.Fatalf("at %v started %v, want container/web", now.Sub(t0), started)
		}
		res := q.Done("container/web", boom, now)
		if res.Outcome != OutcomeError {
			t.Fatalf("outcome %v, want error", res.Outcome)
		}
		delays = append(delays, res.Retry)
		// Just before the retry time the key is held.
		if held := q.Replace([]Item{item("container/web")}, now.Add(res.Retry-time.Millisecond)); !slices.Equal(held, []string{"container/web"}) {
			t.Fatalf("held %v before the retry time, want container/web", held)
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
	q.Replace([]Item{item("container/web")}, now)
	drainNext(q)
	if res := q.Done("container/web", nil, now); res.Outcome != OutcomeSuccess || res.Retry != 0 {
		t.Fatalf("success gave %+v", res)
	}
	if _, ok := q.NextRetry(); ok {
		t.Fatal("NextRetry after success, want none")
	}
	q.Replace([]Item{item("container/web")}, now)
	drainNext(q)
	if res := q.Done("container/web", boom, now); res.Retry != time.Second {
		t.Fatalf("first failure after success: retry %v, want 1s (reset)", res.Retry)
	}
}

func TestQueueNewGenerationResetsBackoff(t *testing.T) {
	q := &Queue{}
	q.Replace([]Item{item("container/web")}, t0)
	drainNext(q)
	q.Done("container/web", errors.New("boom"), t0)
	it := item("container/web")
	it.Generation = "g2"
	if held := q.Replace([]Item{it}, t0); len(held) != 0 {
		t.Fatalf("held %v, want a new spec to run at once", held)
	}
	if s, _ := drainNext(q); !slices.Equal(s, []string{"container/web"}) {
		t.Fatalf("started %v", s)
	}
}

func TestQueueTerminalUntilGenerationChanges(t *testing.T) {
	q := &Queue{}
	q.Replace([]Item{item("container/web")}, t0)
	drainNext(q)
	res := q.Done("container/web", reconcile.Terminal(errors.New("invalid spec")), t0)
	if res.Outcome != OutcomeTerminal {
		t.Fatalf("outcome %v, want terminal", res.Outcome)
	}
	for i := range 3 {
		now := t0.Add(time.Duration(i) * time.Hour)
		q.Replace([]Item{item("container/web")}, now)
		if s, _ := drainNext(q); len(s) != 0 {
			t.Fatalf("pass %d retried a terminal key: %v", i, s)
		}
	}
	if _, ok := q.NextRetry(); ok {
		t.Fatal("a terminal key has a retry time")
	}
	it := item("container/web")
	it.Generation = "g2"
	q.Replace([]Item{it}, t0)
	if s, _ := drainNext(q); !slices.Equal(s, []string{"container/web"}) {
		t.Fatalf("new generation started %v, want container/web", s)
	}
}

func TestQueueWaitDoesNotBackOff(t *testing.T) {
	q := &Queue{}
	q.Replace([]Item{item("container/web")}, t0)
	drainNext(q)
	res := q.Done("container/web", reconcile.Wait("image base not ready"), t0)
	if res.Outcome != OutcomeWait || res.Retry != 0 {
		t.Fatalf("wait gave %+v", res)
	}
	q.Replace([]Item{item("container/web")}, t0)
	if s, _ := drainNext(q); !slices.Equal(s, []string{"container/web"}) {
		t.Fatalf("next pass started %v, want the waiting key again at once", s)
	}
}

func TestQueueDependencies(t *testing.T) {
	q := &Queue{Workers: 4}
	q.Replace([]Item{item("container/web", "container/db"), item("container/db", "image/pg"), item("image/pg"), item("container/other", "volume/converged")}, t0)
	s, _ := drainNext(q)
	if !slices.Equal(s, []string{"image/pg", "container/other"}) {
		t.Fatalf("started %v, want image/pg and container/other (volume/converged was not planned)", s)
	}
	q.Done("image/pg", nil, t0)
	if s, _ = drainNext(q); !slices.Equal(s, []string{"container/db"}) {
		t.Fatalf("started %v, want container/db after its image", s)
	}
	q.Done("container/db", errors.New("jail -c failed"), t0)
	s, b := drainNext(q)
	if len(s) != 0 || !slices.Equal(b, []string{"container/web"}) {
		t.Fatalf("started %v blocked %v, want web blocked by the failed db", s, b)
	}
	q.Done("container/other", nil, t0)
	if !q.Settled() {
		t.Fatal("queue not settled after every item ended")
	}
}

func TestQueueBlockedReasonNamesDependency(t *testing.T) {
	q := &Queue{}
	q.Replace([]Item{item("image/base"), item("container/web", "image/base")}, t0)
	drainNext(q)
	q.Done("image/base", reconcile.Terminal(errors.New("tarball missing")), t0)
	d, ok := q.Next()
	if !ok || d.Blocked == nil || !reconcile.IsWait(d.Blocked) || !strings.Contains(d.Blocked.Error(), "image/base") {
		t.Fatalf("Next = %+v %v, want container/web blocked naming image/base", d, ok)
	}
}

func TestQueueCycleIsBlocked(t *testing.T) {
	q := &Queue{}
	q.Replace([]Item{item("container/a", "container/b"), item("container/b", "container/a")}, t0)
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
	for _, k := range []string{"image/a", "image/b", "image/c", "container/x", "container/y", "container/z"} {
		it := item(k)
		if strings.HasPrefix(k, "image/") {
			it.Class = "build"
		}
		items = append(items, it)
	}
	q.Replace(items, t0)
	s, _ := drainNext(q)
	if !slices.Equal(s, []string{"image/a", "container/x", "container/y"}) {
		t.Fatalf("started %v, want one build and two others (3 workers, builds 1 at a time)", s)
	}
	q.Done("container/x", nil, t0)
	if s, _ = drainNext(q); !slices.Equal(s, []string{"container/z"}) {
		t.Fatalf("started %v, want container/z (build slot still taken)", s)
	}
	q.Done("image/a", nil, t0)
	if s, _ = drainNext(q); !slices.Equal(s, []string{"image/b"}) {
		t.Fatalf("started %v, want image/b", s)
	}
}

func TestQueueCoalescesAndRerunsInFlight(t *testing.T) {
	q := &Queue{}
	a := item("container/web")
	a.Op = "create"
	q.Replace([]Item{a, item("container/db")}, t0)
	d, _ := q.Next() // web in flight
	if d.Item.Key != "container/web" {
		t.Fatalf("first Next = %s", d.Item.Key)
	}
	// A second pass plans web again (stale) and db with a new op: db is
	// replaced, web is not queued twice.
	db := item("container/db")
	db.Op = "replace"
	q.Replace([]Item{a, db}, t0)
	if n := q.Depth(); n != 1 {
		t.Fatalf("depth %d, want 1 (db only)", n)
	}
	d, _ = q.Next()
	if d.Item.Key != "container/db" || d.Item.Op != "replace" {
		t.Fatalf("Next = %s %s, want the newest db item", d.Item.Key, d.Item.Op)
	}
	if res := q.Done("container/web", nil, t0); !res.Rerun {
		t.Fatal("web planned again while in flight: want Rerun")
	}
	// A pass without db drops it from the plan but not from flight.
	q.Replace(nil, t0)
	if q.Running() != 1 {
		t.Fatalf("running %d, want db still in flight", q.Running())
	}
	q.Done("container/db", nil, t0)
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
		img := "image/i" + strconv.Itoa(i)
		items = append(items, Item{Key: img, Op: "import", Class: "build", Generation: "g"})
		deps := []string{img}
		if i%10 == 9 {
			deps = append(deps, "container/c"+strconv.Itoa(i-1))
		}
		items = append(items, Item{Key: "container/c" + strconv.Itoa(i), Op: "create", Generation: "g", Deps: deps})
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
