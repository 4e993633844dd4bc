//go:build linux || freebsd

package build

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSecurityL7ImageSymlinkReadOnHost: COPY --chown looks users up in the
// image's /etc/passwd; an image whose /etc/passwd is an absolute symlink to
// a host file made root read that host file (67d2aef: lookupOwner(alice) =
// 4242:4243). Now the symlink is refused, and so is a FIFO, without blocking.
func TestSecurityL7ImageSymlinkReadOnHost(t *testing.T) {
	host := filepath.Join(t.TempDir(), "host-passwd")
	if err := os.WriteFile(host, []byte("alice:x:4242:4243::/:/bin/sh\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(host, filepath.Join(root, "etc", "passwd")); err != nil {
		t.Fatal(err)
	}
	if uid, gid, err := lookupOwner(root, "alice"); err == nil {
		t.Fatalf("lookupOwner(alice) = %d:%d from the host's file", uid, gid)
	}

	fifoRoot := t.TempDir()
	if err := os.MkdirAll(filepath.Join(fifoRoot, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(fifoRoot, "etc", "passwd"), 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, _, err := lookupOwner(fifoRoot, "www"); done <- err }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a FIFO /etc/passwd gave a user")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("lookupOwner blocked on a FIFO /etc/passwd")
	}
}

// TestSecurityH2PulledImageNoCacheHit: an image whose ID equals a build
// step's, but which was pulled (its ID is its repository's word), is never
// taken for that step: the step runs. On 67d2aef every local image ID was a
// cache hit.
func TestSecurityH2PulledImageNoCacheHit(t *testing.T) {
	fx := newFixture(t)
	zf := "FROM base\nRUN echo built > /built\n"
	res, out, err := fx.build(t, zf, nil, "app")
	if err != nil || res.Executed != 1 {
		t.Fatalf("build: %+v %v\n%s", res, err, out)
	}
	// The same ID, now as if a repository had published it.
	fx.store.origins = map[string]string{res.ID: "pull"}
	runs := len(fx.driver.procs)
	res2, out, err := fx.build(t, "", nil, "app")
	if err != nil {
		t.Fatal(err)
	}
	if res2.Cached != 0 || res2.Executed != 1 || len(fx.driver.procs) == runs {
		t.Fatalf("a pulled image with the step's ID was a cache hit: %+v\n%s", res2, out)
	}
}

// TestSecurityL6ExpansionBomb: `ENV A=$A$A` repeated doubles a value per
// line; 67d2aef allocated 2^n bytes while planning (a 303-byte Zockerfile
// took 220 MiB). Now planning stops with an error naming the line.
func TestSecurityL6ExpansionBomb(t *testing.T) {
	fx := newFixture(t)
	zf := "FROM base\nENV A=0123456789abcdef\n" + strings.Repeat("ENV A=$A$A\n", 40)
	_, _, err := fx.build(t, zf, nil, "bomb")
	if err == nil || !strings.Contains(err.Error(), "expands to more than") || !strings.Contains(err.Error(), "Zockerfile:15") {
		t.Fatalf("bomb: %v", err)
	}
}

// TestSecurityL8SpecialInputs: a FIFO as Zockerfile or .zockerignore made
// planning hang on 67d2aef, /dev/zero read forever; now both are errors.
func TestSecurityL8SpecialInputs(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "Zockerfile"), 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := InputsHash(dir, "", nil, ""); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("FIFO Zockerfile: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("InputsHash blocked on a FIFO Zockerfile")
	}
	dir2 := t.TempDir()
	if err := os.Symlink("/dev/zero", filepath.Join(dir2, IgnoreFile)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir2, "Zockerfile"), []byte("FROM scratch\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := InputsHash(dir2, "", nil, ""); err == nil {
		t.Fatal("/dev/zero as .zockerignore accepted")
	}
}
