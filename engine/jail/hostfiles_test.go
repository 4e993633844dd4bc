//go:build linux || freebsd

package jail

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, p, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestHostFilesCopy(t *testing.T) {
	host, root := t.TempDir(), t.TempDir()
	resolv := filepath.Join(host, "etc/resolv.conf")
	writeFile(t, resolv, "nameserver 192.0.2.53\n")
	// A host file reached through a symlink (Linux's /etc/localtime) is copied as content.
	zone := filepath.Join(host, "usr/share/zoneinfo/UTC")
	writeFile(t, zone, "TZif-data")
	localtime := filepath.Join(host, "etc/localtime")
	if err := os.Symlink(zone, localtime); err != nil {
		t.Fatal(err)
	}
	// An existing file in the image is replaced.
	writeFile(t, filepath.Join(root, host, "etc/resolv.conf"), "old")

	missing := filepath.Join(host, "etc/nonexistent")
	if err := CopyHostFiles(root, []string{resolv, localtime, missing}); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(root, resolv)); got != "nameserver 192.0.2.53\n" {
		t.Errorf("resolv.conf in root: %q", got)
	}
	fi, err := os.Lstat(filepath.Join(root, localtime))
	if err != nil {
		t.Fatal(err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o644 {
		t.Errorf("localtime in root: mode %v, want a regular 0644 file", fi.Mode())
	}
	if _, err := os.Lstat(filepath.Join(root, missing)); !os.IsNotExist(err) {
		t.Errorf("a missing host file was created in the root: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Join(root, host, "etc"))
	for _, e := range entries {
		if strings.Contains(e.Name(), ".zocker-") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

// TestHostFilesSymlinkEscape plants the symlinks a hostile image could
// carry and checks nothing outside the root is written.
func TestHostFilesSymlinkEscape(t *testing.T) {
	host, root, outside := t.TempDir(), t.TempDir(), t.TempDir()
	src := filepath.Join(host, "resolv.conf")
	writeFile(t, src, "nameserver 192.0.2.53\n")

	// 1. The file itself is a symlink to a host file: replaced, not followed.
	victim := filepath.Join(outside, "passwd")
	writeFile(t, victim, "root:secret\n")
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, filepath.Join(root, "etc/resolv.conf")); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileInRoot(root, "/etc/resolv.conf", []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, victim); got != "root:secret\n" {
		t.Fatalf("the host file behind the symlink was overwritten: %q", got)
	}
	if fi, _ := os.Lstat(filepath.Join(root, "etc/resolv.conf")); !fi.Mode().IsRegular() {
		t.Errorf("resolv.conf in root is %v, want a regular file", fi.Mode())
	}

	// 2. A parent directory is a symlink out of the root: refused.
	if err := os.Symlink(outside, filepath.Join(root, "var")); err != nil {
		t.Fatal(err)
	}
	err := WriteFileInRoot(root, "/var/run/resolv.conf", []byte("x"), 0o644)
	if err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Fatalf("write through a symlinked parent: got %v, want a symlink error", err)
	}
	if _, err := os.Stat(filepath.Join(outside, "run")); !os.IsNotExist(err) {
		t.Errorf("a directory was created outside the root: %v", err)
	}

	// 3. ".." cannot climb out.
	if err := WriteFileInRoot(root, "/../"+filepath.Base(outside)+"/x", []byte("x"), 0o644); err == nil {
		t.Error(`a path with ".." was accepted`)
	}
}

func TestHostFilesMkdirInRoot(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	if err := MkdirInRoot(root, "/var/log/httpd"); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(root, "var/log/httpd")); err != nil || !fi.IsDir() {
		t.Fatalf("mount point not created: %v", err)
	}
	// Idempotent.
	if err := MkdirInRoot(root, "/var/log/httpd"); err != nil {
		t.Fatal(err)
	}

	// A symlink anywhere on the way, even one pointing inside the root, is
	// refused: the kernel would resolve it in the host's namespace at mount.
	if err := os.Symlink(outside, filepath.Join(root, "usr")); err != nil {
		t.Fatal(err)
	}
	err := MkdirInRoot(root, "/usr/local/www")
	if err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Fatalf("got %v, want a symlink error", err)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("created outside the root: %v", entries)
	}
	if err := os.Symlink("/var/log", filepath.Join(root, "logs")); err != nil {
		t.Fatal(err)
	}
	if err := MkdirInRoot(root, "/logs"); err == nil {
		t.Error("a symlink as the mount point itself was accepted")
	}
	// A regular file on the way is not a directory.
	writeFile(t, filepath.Join(root, "etc/motd"), "hi")
	if err := MkdirInRoot(root, "/etc/motd/x"); err == nil {
		t.Error("a file was walked through as a directory")
	}
	if err := MkdirInRoot(root, "relative/dir"); err == nil {
		t.Error("a relative path was accepted")
	}
}
