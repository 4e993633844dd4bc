package zfsfuse

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	gozfs "github.com/mistifyio/go-zfs/v4"

	"github.com/zocker-reconcile/zocker-reconcile/internal/testenv"
)

// TestGoZFSThroughAdapter is the substrate's first go-zfs integration test:
// go-zfs v4, unmodified, creates, snapshots, clones, lists and destroys
// datasets on the real zfs-fuse pool with the adapter first on PATH.
func TestGoZFSThroughAdapter(t *testing.T) {
	root := testenv.Dataset(t)
	realZFS := os.Getenv("ZOCKER_REAL_ZFS")
	if realZFS == "" {
		realZFS = "/usr/sbin/zfs"
	}
	bin := t.TempDir()
	if out, err := exec.Command("go", "build", "-o", filepath.Join(bin, "zfs"), "./cmd/zfs").CombinedOutput(); err != nil {
		t.Fatalf("build adapter: %v: %s", err, out)
	}
	t.Setenv("ZOCKER_REAL_ZFS", realZFS)
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))

	fs, err := gozfs.CreateFilesystem(root, map[string]string{"zocker:test": "yes"})
	if err != nil {
		t.Fatalf("CreateFilesystem: %v", err)
	}
	if fs.Type != gozfs.DatasetFilesystem || fs.Mountpoint == "" || fs.Avail == 0 {
		t.Fatalf("GetDataset after create = %+v", fs)
	}
	if err := os.WriteFile(filepath.Join(fs.Mountpoint, "hello"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	snap, err := fs.Snapshot("s1", false)
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	if snap.Type != gozfs.DatasetSnapshot || snap.Name != root+"@s1" {
		t.Fatalf("snapshot = %+v", snap)
	}
	clone, err := snap.Clone(root+"-clone", nil)
	if err != nil {
		t.Fatalf("Clone: %v", err)
	}
	t.Cleanup(func() { testenv.DestroyAll(t, root+"-clone") })
	if clone.Origin != root+"@s1" {
		t.Errorf("clone origin = %q", clone.Origin)
	}
	if _, err := os.Stat(filepath.Join(clone.Mountpoint, "hello")); err != nil {
		t.Errorf("clone lacks the snapshot's file: %v", err)
	}
	snaps, err := fs.Snapshots()
	if err != nil || len(snaps) != 1 {
		t.Fatalf("Snapshots = %v, %v", snaps, err)
	}
	if v, err := fs.GetProperty("zocker:test"); err != nil || v != "yes" {
		t.Errorf("GetProperty = %q, %v", v, err)
	}
	// Destroy a dataset nobody has used: zfs-fuse calls a dataset whose
	// files were just accessed "busy" for a while, and retrying that is the
	// engine's job (engine/zfs), not this test's; the datasets above go with
	// the test's cleanup, which retries.
	empty, err := gozfs.CreateFilesystem(root+"/empty", nil)
	if err != nil {
		t.Fatalf("CreateFilesystem: %v", err)
	}
	// A forced unmount first: zfs-fuse's implicit unmount in destroy is
	// what reports "busy" on a loaded machine.
	if _, err := empty.Unmount(true); err != nil {
		t.Fatalf("Unmount: %v", err)
	}
	if err := empty.Destroy(gozfs.DestroyDefault); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	if _, err := gozfs.GetDataset(root + "/empty"); err == nil {
		t.Error("dataset still there after Destroy")
	}
}
