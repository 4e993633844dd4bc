package service

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/manifests"
	"github.com/zocker-reconcile/zocker-reconcile/reconcile"
)

// clock is a settable fake time source.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func cond(t *testing.T, s Status, key string, typ ConditionType) Condition {
	t.Helper()
	for _, o := range s.Objects {
		if reconcile.Key(o.Kind, o.Name) == key {
			c, ok := o.Condition(typ)
			if !ok {
				t.Fatalf("%s has no %s condition", key, typ)
			}
			return c
		}
	}
	t.Fatalf("no status for %s in %+v", key, s.Objects)
	return Condition{}
}

func TestStatusLastTransitionTimeStable(t *testing.T) {
	clk := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	b := NewStatusBook(clk.now)
	b.SetCondition("Container/web", ConditionReady, true, ReasonInSync, "", "h1")
	t0 := clk.t
	clk.advance(time.Minute)
	// Same status, new reason and message: the transition time stays.
	b.SetCondition("Container/web", ConditionReady, true, ReasonApplied, "again", "h1")
	c := cond(t, b.Snapshot(), "Container/web", ConditionReady)
	if !c.LastTransitionTime.Equal(t0) || c.Reason != ReasonApplied || c.Message != "again" || c.ObservedSpecHash != "h1" {
		t.Errorf("after same-status update: %+v", c)
	}
	clk.advance(time.Minute)
	b.SetCondition("Container/web", ConditionReady, false, ReasonFailed, "boom", "h2")
	c = cond(t, b.Snapshot(), "Container/web", ConditionReady)
	if !c.LastTransitionTime.Equal(clk.t) || c.ObservedSpecHash != "h2" {
		t.Errorf("after a flip: %+v, want time %v", c, clk.t)
	}
}

func TestStatusFromPlan(t *testing.T) {
	clk := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	b := NewStatusBook(clk.now)
	s := failFile(newSet(image("base"), web(), container("new"), container("app", func(c *manifests.Container) { c.Spec.Image = "nope" })), "kept")
	s.Blocked = []string{"Container/dup"}
	d := desired(s)
	kept := container("kept")
	o := observed(applied(t, web(), "id1"), applied(t, kept, "id1"),
		applied(t, container("gone"), "id1", func(oc *reconcile.ObservedContainer) { oc.Manifest = "gone.yaml" }))
	o.Containers["kept"] = applied(t, kept, "id1", func(oc *reconcile.ObservedContainer) { oc.Manifest = "kept.yaml" })
	p := reconcile.Diff(d, o, reconcile.Options{})
	b.LoadedManifests(s)
	b.Planned(p, d, o)
	st := b.Snapshot()

	check := func(key string, ready, reconciling, stalled bool, reason string) {
		t.Helper()
		r, g, x := cond(t, st, key, ConditionReady), cond(t, st, key, ConditionReconciling), cond(t, st, key, ConditionStalled)
		if r.Status != ready || g.Status != reconciling || x.Status != stalled {
			t.Errorf("%s: ready=%v reconciling=%v stalled=%v, want %v %v %v", key, r.Status, g.Status, x.Status, ready, reconciling, stalled)
		}
		if r.Reason != reason {
			t.Errorf("%s: Ready reason %q, want %q", key, r.Reason, reason)
		}
	}
	check("Image/base", true, false, false, ReasonInSync)
	check("Container/web", true, false, false, ReasonInSync)
	check("Container/new", false, true, false, ReasonChangesPending)
	check("Container/app", false, true, false, ReasonWaiting)
	check("Container/kept", false, false, true, ReasonInvalidManifest)
	check("Container/dup", false, false, true, ReasonDuplicate)
	check("Container/gone", false, true, false, ReasonChangesPending)
	if st.AllReady() {
		t.Error("AllReady with pending work")
	}
	if st.Revision != "rev1" || len(st.Files) == 0 {
		t.Errorf("revision %q, files %+v", st.Revision, st.Files)
	}
	var failed *FileStatus
	for i := range st.Files {
		if st.Files[i].Failed {
			failed = &st.Files[i]
		}
	}
	if failed == nil || failed.Path != "/m/kept.yaml" || len(failed.Problems) != 1 || failed.Problems[0].Line != 3 {
		t.Errorf("failed file status = %+v", failed)
	}
	if ws := cond(t, st, "Container/web", ConditionReady); ws.ObservedSpecHash != o.Containers["web"].SpecHash {
		t.Errorf("web observed hash %q", ws.ObservedSpecHash)
	}

	// Executing: the prune removes gone, the create makes new Ready, a
	// transient failure keeps app reconciling, a terminal one stalls it.
	for _, a := range p.Actions {
		b.Succeeded(a)
	}
	b.Failed(reconcile.Action{Kind: manifests.KindContainer, Name: "app", Op: reconcile.OpCreate}, errors.New("clone: busy"), false)
	st = b.Snapshot()
	check("Container/new", true, false, false, ReasonApplied)
	check("Container/app", false, true, false, ReasonFailed)
	if c := cond(t, st, "Container/app", ConditionReconciling); c.Reason != ReasonRetrying || c.Message != "clone: busy" {
		t.Errorf("retrying condition %+v", c)
	}
	b.Failed(reconcile.Action{Kind: manifests.KindContainer, Name: "app", Op: reconcile.OpCreate}, errors.New("invalid"), true)
	check2 := b.Snapshot()
	if c := cond(t, check2, "Container/app", ConditionStalled); !c.Status {
		t.Errorf("terminal failure does not stall: %+v", c)
	}
	for _, o := range check2.Objects {
		if o.Name == "gone" {
			t.Error("pruned container still in the status")
		}
	}

	// The next pass without gone in the observed state keeps it out, and
	// an object no longer declared nor observed is dropped.
	delete(o.Containers, "gone")
	b.Planned(reconcile.Diff(d, o, reconcile.Options{}), d, o)
	for _, ob := range b.Snapshot().Objects {
		if ob.Name == "gone" {
			t.Error("gone came back")
		}
	}
}

func TestStatusAllReadyAndUnhealthy(t *testing.T) {
	b := NewStatusBook(nil)
	d := desired(newSet(image("base"), web()))
	o := observed(applied(t, web(), "id1"))
	b.LoadedManifests(d.Set)
	b.Planned(reconcile.Diff(d, o, reconcile.Options{}), d, o)
	if !b.Snapshot().AllReady() {
		t.Errorf("in-sync world not all ready: %+v", b.Snapshot())
	}
	o.Containers["web"] = applied(t, web(), "id1", func(oc *reconcile.ObservedContainer) { oc.Health = reconcile.HealthUnhealthy })
	b.Planned(reconcile.Diff(d, o, reconcile.Options{}), d, o)
	st := b.Snapshot()
	if st.AllReady() || cond(t, st, "Container/web", ConditionReady).Reason != ReasonUnhealthy {
		t.Errorf("unhealthy container counted ready: %+v", st)
	}
}

func TestStatusJSON(t *testing.T) {
	clk := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	b := NewStatusBook(clk.now)
	b.LoadedManifests(newSet(web()))
	b.SetCondition("Container/web", ConditionReady, true, ReasonInSync, "", "h1")
	b.Converged("rev0")
	raw, err := json.Marshal(b.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	var back Status
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if back.Revision != "rev1" || back.AppliedRevision != "rev0" || len(back.Objects) != 1 || len(back.Objects[0].Conditions) != 3 {
		t.Fatalf("round trip: %s", raw)
	}
	c := back.Objects[0].Conditions[0]
	if c.Type != ConditionReady || !c.Status || !c.LastTransitionTime.Equal(clk.t) || c.ObservedSpecHash != "h1" {
		t.Errorf("condition %+v from %s", c, raw)
	}
}

// The book is read (GET /status) while the loop writes it: every snapshot is
// whole (three conditions, in order) and a copy that the reader may change
// without touching the book. scripts/test.sh runs this under -race.
func TestStatusConcurrentUse(t *testing.T) {
	b := NewStatusBook(nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 200 {
			b.SetCondition("Container/web", ConditionReady, i%2 == 0, ReasonInSync, "", "")
		}
		b.SetCondition("Container/web", ConditionReady, true, ReasonInSync, "", "")
	}()
	for range 200 {
		for _, o := range b.Snapshot().Objects {
			if len(o.Conditions) != len(conditionTypes) {
				t.Fatalf("torn snapshot: %+v", o)
			}
			for k, c := range o.Conditions {
				if c.Type != conditionTypes[k] {
					t.Fatalf("conditions out of order: %+v", o.Conditions)
				}
			}
			o.Conditions[0].Status = !o.Conditions[0].Status // the reader's copy
		}
	}
	<-done
	snap := b.Snapshot()
	snap.Objects[0].Conditions[0].Status = false
	if c := cond(t, b.Snapshot(), "Container/web", ConditionReady); !c.Status {
		t.Errorf("a reader's change to its snapshot reached the book: %+v", c)
	}
}
