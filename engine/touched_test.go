package engine

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/zocker-reconcile/zocker-reconcile/engine/zfs"
	"github.com/zocker-reconcile/zocker-reconcile/manifests"
	"github.com/zocker-reconcile/zocker-reconcile/reconcile"
)

// Every operation names what it touches; only an operation the engine does
// not know reads the whole tree.
func TestTouchedBy(t *testing.T) {
	c := func(op reconcile.Op) reconcile.Action {
		return reconcile.Action{Kind: manifests.KindContainer, Name: "web", Op: op}
	}
	for _, tc := range []struct {
		a    reconcile.Action
		want zfs.Touched
	}{
		{reconcile.Action{Kind: manifests.KindImage, Name: "base", Op: reconcile.OpImport}, zfs.Touched{Images: true}},
		{reconcile.Action{Kind: manifests.KindImage, Name: "base", Op: reconcile.OpBuild}, zfs.Touched{Images: true}},
		{reconcile.Action{Kind: manifests.KindImage, Name: "base", Op: reconcile.OpPull}, zfs.Touched{Images: true}},
		{reconcile.Action{Kind: manifests.KindVolume, Name: "data", Op: reconcile.OpCreateVolume}, zfs.Touched{Volumes: []string{"data"}}},
		{reconcile.Action{Kind: manifests.KindVolume, Name: "data", Op: reconcile.OpUpdateVolume}, zfs.Touched{Volumes: []string{"data"}}},
		{reconcile.Action{Kind: manifests.KindVolume, Name: "data", Op: reconcile.OpDestroyVolume}, zfs.Touched{Volumes: []string{"data"}}},
		{c(reconcile.OpCreate), zfs.Touched{Containers: []string{"web"}}},
		{c(reconcile.OpStart), zfs.Touched{Containers: []string{"web"}}},
		{c(reconcile.OpStop), zfs.Touched{Containers: []string{"web"}}},
		{c(reconcile.OpReplace), zfs.Touched{Containers: []string{"web"}, Previous: true}},
		{c(reconcile.OpPrune), zfs.Touched{Containers: []string{"web"}, Previous: true}},
		{c(reconcile.OpRollback), zfs.Touched{Containers: []string{"web"}, Previous: true}},
		{c(reconcile.OpConfirm), zfs.Touched{Containers: []string{"web"}, Previous: true}},
		{c("teleport"), zfs.Touched{All: true}},
	} {
		if got := TouchedBy(tc.a); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s %s: %+v, want %+v", tc.a.Op, tc.a.Key(), got, tc.want)
		}
	}
	for _, op := range reconcile.Ops() {
		if TouchedBy(reconcile.Action{Kind: manifests.KindContainer, Name: "x", Op: op}).All {
			t.Errorf("%s reads the whole tree: TouchedBy does not know it", op)
		}
	}
}

// ObserveTouched reads again what it is told, from the last observation;
// without one, or when the targeted read fails, it observes the whole tree.
func TestObserveTouchedFallsBackToTheWholeTree(t *testing.T) {
	e, s, _ := newFakeEngine(t)
	ctx := context.Background()
	touched := zfs.Touched{Containers: []string{"web"}}
	if _, err := e.ObserveTouched(ctx, touched); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ObserveTouched(ctx, touched); err != nil {
		t.Fatal(err)
	}
	s.touchedErr = errors.New("zfs: internal error")
	if _, err := e.ObserveTouched(ctx, touched); err != nil {
		t.Fatal(err)
	}
	want := "observe-tree; " + // no earlier observation
		"observe-touched containers=[web] volumes=[] images=false previous=false; " +
		"observe-touched containers=[web] volumes=[] images=false previous=false; observe-tree" // failed: whole
	if got := strings.Join(s.calls, "; "); got != want {
		t.Errorf("calls\n%s\nwant\n%s", got, want)
	}
}

// apply's passes: the first reads the whole tree, the next only what the
// actions in between touched.
func TestTrackingObservesWhatItsActionsTouched(t *testing.T) {
	e, s, _ := newFakeEngine(t)
	ctx := context.Background()
	tr := &Tracking{Engine: e}
	if _, err := tr.Observe(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tr.Execute(ctx, reconcile.Action{Kind: manifests.KindContainer, Name: "web", Op: reconcile.OpCreate, Container: stopped("web"), ImageID: imageID}); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Observe(ctx); err != nil {
		t.Fatal(err)
	}
	want := "observe-tree; create web from aaaa; observe-touched containers=[web] volumes=[] images=false previous=false"
	if got := strings.Join(s.calls, "; "); !strings.HasPrefix(got, "observe-tree; ") || !strings.HasSuffix(got, "observe-touched containers=[web] volumes=[] images=false previous=false") || !strings.Contains(got, "create web from aaaa") {
		t.Errorf("calls\n%s\nwant\n%s", got, want)
	}
}
