package reconcile

import "testing"

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
