package oci

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/zocker-reconcile/zocker-reconcile/engine/oci/layer"
)

func requireRootUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("applying ownership needs root")
	}
}

// TestApplyMatchesExtract applies the spec image's layers one by one onto a
// directory and compares the tree with mutate.Extract's flattening of the
// same image; nothing may appear outside the directory.
func TestApplyMatchesExtract(t *testing.T) {
	requireRootUser(t)
	outer := t.TempDir()
	dir := filepath.Join(outer, "a", "b", "rootfs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var layers []v1.Layer
	for i, tb := range specLayers(t, "") {
		layers = append(layers, layerOf(t, tb))
		st, err := layer.Apply(dir, bytes.NewReader(tb), nil)
		if err != nil {
			t.Fatalf("layer %d: %v", i+1, err)
		}
		if i == 2 && (st.Skipped != 1 || st.Whiteouts != 2) {
			t.Errorf("layer 3 stats = %+v, want 1 skipped (evil symlink), 2 whiteouts", st)
		}
	}
	img := imageOf(t, "linux", "amd64", v1.Config{}, layers...)
	compareTrees(t, treeOfDir(t, dir), treeOfExtract(t, img))
	// Spot checks that say what the comparison means.
	got := treeOfDir(t, dir)
	for _, p := range []string{"data/sub/lower.txt", "data/del.txt", "data/old", "data/old/x", "data/replace/child"} {
		if _, ok := got[p]; ok {
			t.Errorf("%s should be gone", p)
		}
	}
	for _, p := range []string{"data/sub/new.txt", "data/sub/newdir", "evil/pwned"} {
		if _, ok := got[p]; !ok {
			t.Errorf("%s should exist", p)
		}
	}
	if got["data/suid"].Mode&os.ModeSetuid == 0 || got["data/sgid"].Mode&os.ModeSetgid == 0 || got["data/owned"].UID != 1000 {
		t.Errorf("setuid/setgid/owner lost: %v %v %v", got["data/suid"], got["data/sgid"], got["data/owned"])
	}
	var sa, sh unix.Stat_t
	_ = unix.Stat(filepath.Join(dir, "data/a.txt"), &sa)
	_ = unix.Stat(filepath.Join(dir, "data/hardlink"), &sh)
	if sa.Ino != sh.Ino {
		t.Errorf("data/hardlink is not a hard link of data/a.txt")
	}
	fi, err := os.Stat(filepath.Join(dir, "data/mod.txt"))
	if err != nil || !fi.ModTime().Equal(testTime) {
		t.Errorf("mtime of data/mod.txt = %v, want %v (%v)", fi.ModTime(), testTime, err)
	}
	// Nothing outside: outer holds only a/b/rootfs.
	_ = filepath.Walk(outer, func(p string, info os.FileInfo, err error) error {
		if err == nil && !strings.HasPrefix(p, dir) && p != outer && p != filepath.Join(outer, "a") && p != filepath.Join(outer, "a", "b") {
			t.Errorf("written outside the root: %s", p)
		}
		return nil
	})
}
