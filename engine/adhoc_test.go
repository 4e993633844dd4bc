package engine

import (
	"testing"

	"github.com/zocker-reconcile/zocker-reconcile/engine/supervisor"
	"github.com/zocker-reconcile/zocker-reconcile/engine/zfs"
	"github.com/zocker-reconcile/zocker-reconcile/manifests"
	"github.com/zocker-reconcile/zocker-reconcile/reconcile"
)

// A container made with run is invisible to the reconciler: not observed as
// a container (so never started, stopped, replaced or pruned, whatever the
// manifests say, also when they are empty and --allow-empty is given), and
// its name is held, so a manifest declaring it is Stalled.
func TestConvertHidesAdHocContainers(t *testing.T) {
	const id = "1111111111111111111111111111111111111111111111111111111111111111"
	st := &zfs.State{
		Tags:   map[string]string{"base": id},
		Images: []zfs.Image{{ID: id}},
		Containers: []zfs.Container{
			{ContainerName: "job", ImageID: id, Dataset: zfs.Dataset{Props: map[string]string{zfs.PropManaged: "true", zfs.PropOrigin: zfs.OriginCLI}}},
			{ContainerName: "web", ImageID: id, Manifest: "web.yaml", Dataset: zfs.Dataset{Props: map[string]string{zfs.PropManaged: "true"}}},
		},
	}
	sups := []supervisor.Status{{Name: "job", Alive: true, State: supervisor.StateRunning}}
	o := Convert(st, sups, nil)
	if _, ok := o.Containers["job"]; ok {
		t.Fatalf("the reconciler observes the container made with run: %+v", o.Containers["job"])
	}
	if o.Foreign["job"] != reconcile.HolderRun {
		t.Errorf("job's name is not held: %q", o.Foreign["job"])
	}
	// An empty manifest set with --allow-empty prunes web, never job.
	p := reconcile.Diff(reconcile.Desired{Set: &manifests.Set{}}, o, reconcile.Options{AllowEmpty: true, MaxPrune: -1})
	for _, a := range p.Actions {
		if a.Name == "job" {
			t.Errorf("action on the container made with run: %+v", a)
		}
	}
	if len(p.Actions) != 1 || p.Actions[0].Name != "web" || p.Actions[0].Op != reconcile.OpPrune {
		t.Errorf("actions: %+v", p.Actions)
	}
	// The metrics' view has it neither.
	fst, fsups := withoutAdHoc(st, sups)
	if len(fst.Containers) != 1 || fst.Containers[0].ContainerName != "web" || len(fsups) != 0 {
		t.Errorf("metrics view: %+v %+v", fst.Containers, fsups)
	}
	if len(st.Containers) != 2 {
		t.Errorf("withoutAdHoc changed the observation")
	}
}
