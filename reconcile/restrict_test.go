package reconcile

import (
	"slices"
	"testing"
)

// TestDiffOnly (F5): a plan restricted to one file's objects acts on them
// only and prunes nothing, however many managed containers the rest of the
// set does not declare; an action needing one outside the selection is held.
func TestDiffOnly(t *testing.T) {
	s := newSet(img("base"), container("web"))
	var obs []any
	for _, n := range []string{"a", "b", "c", "d", "e", "f"} {
		obs = append(obs, applied(t, container(n), "id1"))
	}
	o := observed(obs...)
	full := Diff(desired(s), o, Options{MaxPrune: -1})
	prunes := 0
	for _, a := range full.Actions {
		if a.Op == OpPrune {
			prunes++
		}
	}
	if prunes != 6 {
		t.Fatalf("the whole set prunes %d containers, want 6: %v", prunes, full.Actions)
	}
	p := Diff(desired(s), o, Options{MaxPrune: -1, Only: map[string]bool{"Container/web": true}})
	if !p.Partial || len(p.Actions) != 1 || p.Actions[0].Key() != "Container/web" || p.Actions[0].Op != OpCreate || len(p.Blocked) != 0 {
		t.Fatalf("restricted plan = %+v", p)
	}
	// The image is not there yet: creating web needs its import, which is
	// outside the selection.
	o2 := observed()
	delete(o2.Images, "id1")
	delete(o2.Tags, "base")
	p = Diff(desired(s), o2, Options{Only: map[string]bool{"Container/web": true}})
	for _, a := range p.Actions {
		t.Errorf("action outside the selection or without its dependency: %s", a)
	}
	if len(p.Blocked) != 1 || p.Blocked[0].Key() != "Container/web" {
		t.Fatalf("blocked = %+v, want web held", p.Blocked)
	}
	if p.InSync || p.ExitCode() != 2 {
		t.Errorf("a held selection is in sync: %+v", p)
	}
}

// TestDiffMissingInputs (F13): a tarball that cannot be read and a hostPath
// that does not exist hold their objects in the plan, instead of planning an
// import and a create that apply would see fail.
func TestDiffMissingInputs(t *testing.T) {
	s := newSet(img("base"), img("gone"), container("web"), container("logs"))
	d := desired(s)
	d.MissingInputs = map[string]string{"gone": "image gone: open /nope.tar: no such file or directory"}
	d.MissingHostPaths = map[string]string{"logs": "hostPath /srv/nope does not exist"}
	p := Diff(d, observed(), Options{})
	got := map[string]string{}
	for _, b := range p.Blocked {
		got[b.Key()] = b.Reason + ": " + b.Message
	}
	if got["Image/gone"] != BlockedMissingInput+": image gone: open /nope.tar: no such file or directory" {
		t.Errorf("Image/gone: %q", got["Image/gone"])
	}
	if got["Container/logs"] != BlockedMissingVolume+": hostPath /srv/nope does not exist" {
		t.Errorf("Container/logs: %q", got["Container/logs"])
	}
	for _, a := range p.Actions {
		if a.Key() == "Image/gone" || a.Key() == "Container/logs" {
			t.Errorf("planned %s despite its missing input", a.Line())
		}
	}
	if !slices.ContainsFunc(p.Actions, func(a Action) bool { return a.Key() == "Container/web" }) {
		t.Errorf("web is not created: %v", p.Actions)
	}
}
