package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/zocker-reconcile/zocker-reconcile/manifests"
)

func TestSelectManifests(t *testing.T) {
	man := t.TempDir()
	inside := filepath.Join(man, "web.yaml")
	outside := filepath.Join(t.TempDir(), "one.yaml")
	for _, p := range []string{inside, outside} {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	g := &globals{manifests: man}
	// The directory (or nothing): everything, with pruning.
	for _, args := range [][]string{nil, {man}} {
		sel, err := selectManifests(g, args)
		if err != nil || sel.file != "" || sel.load != man {
			t.Errorf("%v: %+v %v", args, sel, err)
		}
		if sel.only(&manifests.Set{}) != nil {
			t.Errorf("%v: a directory selects only some objects", args)
		}
	}
	// A file inside: the directory is loaded (references resolve), only
	// the file's objects are acted on.
	sel, err := selectManifests(g, []string{inside})
	if err != nil || sel.load != man || sel.file == "" {
		t.Fatalf("inside: %+v %v", sel, err)
	}
	set := &manifests.Set{Sources: map[string]manifests.Source{
		"Container/web": {File: sel.file}, "Container/db": {File: filepath.Join(sel.load, "db.yaml")}}}
	if only := sel.only(set); len(only) != 1 || !only["Container/web"] {
		t.Errorf("inside: only = %v", only)
	}
	// A file outside: that file alone.
	sel, err = selectManifests(g, []string{outside})
	if err != nil || sel.load != outside || sel.file == "" {
		t.Fatalf("outside: %+v %v", sel, err)
	}
}
