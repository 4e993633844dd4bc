package engine

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/zocker-reconcile/zocker-reconcile/engine/jail"
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

// An ad-hoc container's env values live in a root-only file of the state
// directory, not in zocker:spec; without that file (a reboot wiped the
// state directory) a spec with env is refused rather than run with digests.
func TestAdHocSpecKeepsEnvOutOfZFS(t *testing.T) {
	e := &Engine{StateDir: t.TempDir()}
	c := &manifests.Container{Metadata: manifests.ObjectMeta{Name: "job"}, Spec: manifests.ContainerSpec{Image: "base", Env: map[string]string{"SECRET": "s3cr3t"}}}
	applied, err := reconcile.AppliedSpec(c)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(applied, "s3cr3t") {
		t.Fatalf("the env value is in zocker:spec: %s", applied)
	}
	if _, err := e.adHocSpec("job", applied); err == nil || !strings.Contains(err.Error(), "rm it and run it again") {
		t.Errorf("without the kept spec: %v", err)
	}
	if err := e.writeAdHocSpec(c); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(e.adHocSpecPath("job"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("kept spec: %v %v", fi, err)
	}
	got, err := e.adHocSpec("job", applied)
	if err != nil || got.Spec.Env["SECRET"] != "s3cr3t" || got.Spec.Image != "base" {
		t.Errorf("kept spec: %+v %v", got, err)
	}
	// Without env, zocker:spec is enough.
	plain := &manifests.Container{Metadata: manifests.ObjectMeta{Name: "plain"}, Spec: manifests.ContainerSpec{Image: "base"}}
	pa, _ := reconcile.AppliedSpec(plain)
	if got, err := e.adHocSpec("plain", pa); err != nil || got.Spec.Image != "base" {
		t.Errorf("plain: %+v %v", got, err)
	}
}

// A taken name says who holds it: the container declared in a manifest or
// made with run (running or not), else the jail or dataset that took it.
func TestCreateAdHocSaysWhoHoldsTheName(t *testing.T) {
	e, s, d := newFakeEngine(t)
	ctx := context.Background()
	s.st.Tags["base"] = imageID
	s.st.Images = []zfs.Image{{ID: imageID}}
	s.st.Containers = []zfs.Container{
		{ContainerName: "web", Manifest: "/m/web.yaml", Dataset: zfs.Dataset{Props: map[string]string{zfs.PropManaged: "true"}}},
		{ContainerName: "job", Dataset: zfs.Dataset{Props: map[string]string{zfs.PropOrigin: zfs.OriginCLI}}},
	}
	d.jails = []jail.Info{{Name: "web", JID: 3}, {Name: "bastille1", JID: 7}}
	for name, want := range map[string]string{
		"web":       "create container web: the name is in use by the container declared in /m/web.yaml",
		"job":       "create container job: the name is in use by " + HolderRun,
		"bastille1": "create container bastille1: the name is in use by jail 7",
	} {
		c := &manifests.Container{Metadata: manifests.ObjectMeta{Name: name}, Spec: manifests.ContainerSpec{Image: "base",
			Network: manifests.Network{Mode: manifests.NetNone}}}
		_, err := e.CreateAdHoc(ctx, c)
		if err == nil || err.Error() != want {
			t.Errorf("%s: %v, want %q", name, err, want)
		}
	}
}
