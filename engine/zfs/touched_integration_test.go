package zfs

import (
	"context"
	"reflect"
	"testing"

	"github.com/zocker-reconcile/zocker-reconcile/internal/testenv"
)

// comparable is st without the space figures, which zfs accounts
// asynchronously (a dataset's used may move between two reads with nothing
// done): everything else must be equal.
func comparable(st *State) *State {
	cp := *st
	strip := func(d *Dataset) { d.Used, d.Referenced = 0, 0 }
	cp.Images = append([]Image(nil), st.Images...)
	for i := range cp.Images {
		strip(&cp.Images[i].Dataset)
	}
	cp.Containers = append([]Container(nil), st.Containers...)
	for i := range cp.Containers {
		strip(&cp.Containers[i].Dataset)
	}
	cp.Previous = append([]Container(nil), st.Previous...)
	for i := range cp.Previous {
		strip(&cp.Previous[i].Dataset)
	}
	cp.Volumes = append([]Volume(nil), st.Volumes...)
	for i := range cp.Volumes {
		strip(&cp.Volumes[i].Dataset)
	}
	return &cp
}

// TestObserveTouchedAgreesWithObserve: on a real pool, after creates,
// destroys, a kept previous clone, volume changes, an import and a moved
// tag, the last observation with what those touched read again (one
// command) is what a whole observation reads.
func TestObserveTouchedAgreesWithObserve(t *testing.T) {
	ts := openTest(t)
	s, ctx := ts.Store, context.Background()
	id, err := s.ImportTarball(ctx, ImportSource{Path: testenv.BusyboxTarball(t)}, Config{Cmd: []string{"/bin/sh"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Tag(ctx, "base", id); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a", "b", "c"} {
		if _, err := s.CreateContainer(ctx, n, id, map[string]string{PropSpecHash: "h1"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.EnsureVolume(ctx, "data", VolumeSpec{}, nil); err != nil {
		t.Fatal(err)
	}
	_, tree, err := s.ObserveTree(ctx)
	if err != nil {
		t.Fatal(err)
	}

	check := func(step string, touched Touched) {
		t.Helper()
		before := ts.exec.Count.Load()
		got, next, err := s.ObserveTouched(ctx, tree, touched)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if n := ts.exec.Count.Load() - before; n != 1 {
			t.Errorf("%s: %d commands, want 1", step, n)
		}
		want := mustObserve(t, s)
		if !reflect.DeepEqual(comparable(got), comparable(want)) {
			t.Errorf("%s: targeted observation differs from the whole one:\ntargeted %+v\nwhole    %+v", step, comparable(got), comparable(want))
		}
		tree = next
	}

	// A create, a destroy, an update that keeps the old clone aside, a new
	// volume and a destroyed one.
	if _, err := s.CreateContainer(ctx, "d", id, map[string]string{PropSpecHash: "h1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.DestroyContainer(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.KeepPrevious(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateContainer(ctx, "c", id, map[string]string{PropSpecHash: "h2"}); err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureVolume(ctx, "logs", VolumeSpec{}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.DestroyVolume(ctx, "data"); err != nil {
		t.Fatal(err)
	}
	check("containers and volumes", Touched{Previous: true, Containers: []string{"b", "c", "d"}, Volumes: []string{"data", "logs"}})

	// An import and a moved tag; then the previous clone given up.
	id2, err := s.ImportTarball(ctx, ImportSource{Path: makeTar(t, map[string]string{"etc/version": "2\n"})}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Tag(ctx, "base", id2); err != nil {
		t.Fatal(err)
	}
	check("images", Touched{Images: true})
	st := mustObserve(t, s)
	if len(st.Previous) != 1 {
		t.Fatalf("previous clones %v, want one", st.Previous)
	}
	if err := s.DestroyPrevious(ctx, st.Previous[0].PreviousID); err != nil {
		t.Fatal(err)
	}
	check("previous", Touched{Previous: true, Containers: []string{"c"}})
}
