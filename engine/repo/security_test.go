package repo

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSecurityM5FileRepository: a file:// repository is as hostile as a
// remote one. 67d2aef followed a symlinked tag to any host file and echoed
// 256 bytes of it into the error ("invalid image ID \"root:$6$SECRET...\""),
// blocked on a FIFO tag, and wrote pushes through planted symlinks. Now
// every access stays below the repository directory, only regular files are
// read, and no file content reaches an error.
func TestSecurityM5FileRepository(t *testing.T) {
	ctx := context.Background()
	hostDir := t.TempDir()
	secret := filepath.Join(hostDir, "shadow")
	if err := os.WriteFile(secret, []byte("root:$6$SECRETHASH$abcdef:19000:0:99999:7:::\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r, dir, _ := openDir(t)
	mk := func(p string) {
		if err := os.MkdirAll(filepath.Join(dir, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mk("tags")
	mk("images")
	if err := os.Symlink(secret, filepath.Join(dir, "tags", "base")); err != nil {
		t.Fatal(err)
	}
	_, err := r.Resolve(ctx, "base")
	if err == nil || strings.Contains(err.Error(), "SECRET") || strings.Contains(err.Error(), "root:") {
		t.Fatalf("symlinked tag: %v", err)
	}
	// A relative link out of the repository, a link to a directory outside.
	if err := os.Symlink("../../../../../../.."+secret, filepath.Join(dir, "tags", "rel")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Resolve(ctx, "rel"); err == nil || strings.Contains(err.Error(), "SECRET") {
		t.Fatalf("relative symlinked tag: %v", err)
	}
	// A FIFO tag: refused at once, not read (the open does not block).
	if err := syscall.Mkfifo(filepath.Join(dir, "tags", "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := r.Resolve(ctx, "fifo"); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("FIFO tag: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Resolve blocked on a FIFO tag")
	}
	// A tag whose content is not an ID: the error says so without the content.
	if err := os.WriteFile(filepath.Join(dir, "tags", "junk"), []byte("root:$6$SECRETHASH\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Resolve(ctx, "junk"); err == nil || strings.Contains(err.Error(), "SECRET") {
		t.Fatalf("junk tag: %v", err)
	}

	// Push through a planted symlink: images/<id> -> a host directory.
	f := newFake()
	a := f.add(1, 0, "root filesystem")
	f.tags["app"] = a
	if err := os.Symlink(hostDir, filepath.Join(dir, "images", a)); err != nil {
		t.Fatal(err)
	}
	_, err = r.Push(ctx, f, "app")
	t.Logf("push through a planted link: %v", err)
	ents, _ := os.ReadDir(hostDir)
	if len(ents) != 1 {
		t.Fatalf("push wrote into the host directory: %v", ents)
	}
}

// TestSecurityC1GUIDChainAndSize: the stream's base must be the local
// parent's snapshot (a local image with the parent's ID but another
// snapshot, e.g. built here, is refused before receiving), the top image
// collides the same way, and a record larger than MaxImageSize is refused
// before its stream is opened.
func TestSecurityC1GUIDChainAndSize(t *testing.T) {
	ctx := context.Background()
	r, _, _ := openDir(t)
	f := newFake()
	a, b, c := chain(f)
	if _, err := r.Push(ctx, f, "app"); err != nil {
		t.Fatal(err)
	}

	// A local "a" that is another snapshot than the repository's.
	g := newFake()
	g.add(1, 0, "built here")
	g.guids = map[string]uint64{a: 4242}
	_, err := r.Pull(ctx, g, "app")
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "not the one its stream was made on") {
		t.Fatalf("pull onto a foreign parent: %v", err)
	}
	if _, ok := g.images[b]; ok || g.nwork != 0 {
		t.Fatalf("received onto a foreign parent (works %d)", g.nwork)
	}

	// The top image exists locally as another snapshot: refused.
	h := newFake()
	h.add(1, 0, "x")
	h.add(2, 1, "y")
	h.add(3, 2, "z")
	h.guids = map[string]uint64{c: 7}
	if _, err := r.Pull(ctx, h, "app"); err == nil || !strings.Contains(err.Error(), "exists locally but is not the repository's") {
		t.Fatalf("pull onto a colliding local image: %v", err)
	}

	// Size bound.
	small, err := Open(ctx, "file://"+r.loc.Path, Options{MaxImageSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	k := newFake()
	if _, err := small.Pull(ctx, k, "app"); err == nil || !strings.Contains(err.Error(), "--max-image-size") || k.nwork != 0 {
		t.Fatalf("pull past the size limit: %v (works %d)", err, k.nwork)
	}
}
