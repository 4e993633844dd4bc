package service

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/engine/zfs"
	"github.com/zocker-reconcile/zocker-reconcile/manifests"
	"github.com/zocker-reconcile/zocker-reconcile/reconcile"
)

// A pass that only follows actions reads again what they touched (their
// results do not matter); any other trigger, a failed observation or a
// whole read older than the resync period means the whole tree.
func TestObserveAfterActionsReadsOnlyWhatTheyTouched(t *testing.T) {
	ts := newTestService(t)
	ts.cfg.Resync = time.Hour
	ctx := context.Background()
	observe := func(triggers ...string) {
		t.Helper()
		for _, tr := range triggers {
			ts.resync(tr)
		}
		if _, err := ts.observe(ctx); err != nil {
			t.Fatal(err)
		}
	}
	act := func(kind, name string, op reconcile.Op, err error) {
		ts.eng.errs[reconcile.Key(kind, name)] = err
		_ = (&recorder{s: ts.Service}).Execute(ctx, reconcile.Action{Kind: kind, Name: name, Op: op})
	}
	wantCalls := func(step string, whole int, touched ...zfs.Touched) {
		t.Helper()
		if ts.eng.whole != whole || !reflect.DeepEqual(ts.eng.touched, touched) {
			t.Errorf("%s: %d whole observations and targeted %+v; want %d and %+v", step, ts.eng.whole, ts.eng.touched, whole, touched)
		}
	}

	observe("startup")
	wantCalls("startup", 1)

	act(manifests.KindContainer, "web", reconcile.OpCreate, nil)
	act(manifests.KindContainer, "db", reconcile.OpStart, errors.New("jail failed"))
	act(manifests.KindVolume, "data", reconcile.OpCreateVolume, nil)
	observe(triggerFollowUp)
	first := zfs.Touched{Containers: []string{"web", "db"}, Volumes: []string{"data"}}
	wantCalls("follow-up", 1, first)

	// Nothing acted since: the next follow-up reads nothing again.
	observe(triggerFollowUp)
	wantCalls("follow-up after nothing", 1, first, zfs.Touched{})

	// A watch event beside the follow-up: the whole tree.
	act(manifests.KindImage, "base", reconcile.OpImport, nil)
	observe(triggerFollowUp, "watch")
	wantCalls("follow-up with a watch event", 2, first, zfs.Touched{})

	// The whole tree read more than a resync period ago.
	ts.lastWhole = time.Now().Add(-2 * time.Hour)
	observe(triggerFollowUp)
	wantCalls("follow-up after a resync period", 3, first, zfs.Touched{})

	// A failed targeted read: what it was to read is kept, and the next
	// pass reads the whole tree.
	act(manifests.KindContainer, "web", reconcile.OpStop, nil)
	ts.eng.touchedErr = errors.New("zfs: internal error")
	if _, err := ts.observe(ctx); err == nil {
		t.Fatal("the failed observation was not reported")
	}
	ts.eng.touchedErr = nil
	observe(triggerFollowUp)
	wantCalls("after a failed observation", 4, first, zfs.Touched{}, zfs.Touched{Containers: []string{"web"}})
}
