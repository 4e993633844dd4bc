package manifests

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const nobody = 65534

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown files to another user")
	}
}

// TestSecurityM1AncestorOwnedByOther: a directory above the manifest root
// owned by another user (who could rename the root away and put their own
// in its place) refuses the load, however its mode looks.
func TestSecurityM1AncestorOwnedByOther(t *testing.T) {
	requireRoot(t)
	parent := filepath.Join(t.TempDir(), "x")
	root := filepath.Join(parent, "zocker.d")
	write(t, root, map[string]string{"a.yaml": container("a")})
	if err := os.Chown(parent, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	_, err := Load(root, LoadOptions{})
	want := "insecure manifest root " + root + ": its ancestor " + parent + " is owned by uid 65534, who could replace it (fix: chown root " + parent + ", or --insecure-manifests)"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
	if _, err := Load(root, LoadOptions{Insecure: true}); err != nil {
		t.Errorf("--insecure-manifests: %v", err)
	}
}

// TestSecurityM1GroupWritableAncestor: a group-writable ancestor is refused
// (the old check only looked at o+w).
func TestSecurityM1GroupWritableAncestor(t *testing.T) {
	parent := filepath.Join(t.TempDir(), "x")
	root := filepath.Join(parent, "zocker.d")
	write(t, root, map[string]string{"a.yaml": container("a")})
	if err := os.Chmod(parent, 0o775); err != nil {
		t.Fatal(err)
	}
	_, err := Load(root, LoadOptions{})
	if err == nil || !strings.Contains(err.Error(), "its ancestor "+parent+" is writable by group or others") {
		t.Fatalf("err = %v", err)
	}
	// Above a symlink too: the link's directory decides where it points.
	link := filepath.Join(parent, "current")
	if err := os.Chmod(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(root, link); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(link, LoadOptions{}); err != nil {
		t.Fatalf("secure link: %v", err)
	}
}

// TestSecurityM1WorldWritableManifest: a world-writable manifest file is
// refused with the fix in the message, and its objects are not loaded.
func TestSecurityM1WorldWritableManifest(t *testing.T) {
	root := tempRoot(t)
	write(t, root, map[string]string{"a.yaml": container("a"), "b.yaml": container("b")})
	if err := os.Chmod(filepath.Join(root, "a.yaml"), 0o666); err != nil {
		t.Fatal(err)
	}
	set, err := Load(root, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, "a.yaml")
	want := p + ": insecure file: writable by group or others, who could then run anything as root (fix: chmod go-w " + p + ", or --insecure-manifests)"
	if errs := errorsOf(set); len(errs) != 1 || errs[0] != want || set.Containers["a"] != nil || set.Containers["b"] == nil {
		t.Fatalf("problems %v", set.Problems)
	}
}

// TestSecurityM1DescriptorChecked replaces a secure manifest with an
// attacker's file between the look at the entry and its open: what is read
// must be what was checked, so the attacker's file is never accepted.
func TestSecurityM1DescriptorChecked(t *testing.T) {
	requireRoot(t)
	root := tempRoot(t)
	write(t, root, map[string]string{"app.yaml": container("good")})
	evil := filepath.Join(filepath.Dir(root), "evil.yaml")
	for _, swap := range []string{"file", "symlink"} {
		t.Run(swap, func(t *testing.T) {
			write(t, root, map[string]string{"app.yaml": container("good")})
			opts := LoadOptions{beforeOpen: func(name string) {
				if name != "app.yaml" {
					return
				}
				if swap == "file" {
					write(t, filepath.Dir(evil), map[string]string{"evil.yaml": container("evil")})
					if err := os.Chown(evil, nobody, nobody); err != nil {
						t.Fatal(err)
					}
					if err := os.Rename(evil, filepath.Join(root, name)); err != nil {
						t.Fatal(err)
					}
					return
				}
				write(t, filepath.Dir(evil), map[string]string{"evil.yaml": container("evil")})
				os.Remove(filepath.Join(root, name))
				if err := os.Symlink(evil, filepath.Join(root, name)); err != nil {
					t.Fatal(err)
				}
			}}
			set, err := Load(root, opts)
			if err != nil {
				t.Fatal(err)
			}
			if set.Containers["evil"] != nil || len(set.Containers) != 0 || len(errorsOf(set)) != 1 {
				t.Fatalf("containers %v problems %v", set.Containers, set.Problems)
			}
			os.Remove(filepath.Join(root, "app.yaml"))
		})
	}
}

// TestSecurityM1FIFO: a FIFO named like a manifest (or as .zockerignore) is
// refused at once; nothing blocks on it.
func TestSecurityM1FIFO(t *testing.T) {
	root := tempRoot(t)
	write(t, root, map[string]string{"ok.yaml": container("ok")})
	if err := syscall.Mkfifo(filepath.Join(root, "pipe.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var set *Set
	var err error
	go func() { set, err = Load(root, LoadOptions{}); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Load blocked on a FIFO")
	}
	if err != nil {
		t.Fatal(err)
	}
	if errs := errorsOf(set); len(errs) != 1 || !strings.HasSuffix(errs[0], "pipe.yaml: not a regular file") || set.Containers["ok"] == nil {
		t.Fatalf("problems %v", set.Problems)
	}
}

// TestSecurityM2IgnoreFileChecked: .zockerignore gets the manifests' checks:
// world-writable, owned by another user, a symlink, a FIFO or oversized, it
// fails the load with a clear error instead of hiding manifests (a hidden
// Volume with reclaimPolicy Delete would be destroyed).
func TestSecurityM2IgnoreFileChecked(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T, p string)
		want  string
	}{
		{"world-writable", func(t *testing.T, p string) { os.Chmod(p, 0o666) }, "insecure file: writable by group or others, who could then run anything as root (fix: chmod go-w "},
		{"group-writable", func(t *testing.T, p string) { os.Chmod(p, 0o664) }, "insecure file: writable by group or others"},
		{"foreign owner", func(t *testing.T, p string) {
			requireRoot(t)
			os.Chown(p, nobody, nobody)
		}, "insecure file: owned by uid 65534, neither root nor this service's user"},
		{"symlink", func(t *testing.T, p string) {
			target := filepath.Join(t.TempDir(), "ignore")
			os.WriteFile(target, []byte("app.yaml\n"), 0o644)
			os.Remove(p)
			os.Symlink(target, p)
		}, "not a regular file (symbolic links inside the manifest directory are not followed)"},
		{"fifo", func(t *testing.T, p string) {
			os.Remove(p)
			syscall.Mkfifo(p, 0o644)
		}, "not a regular file"},
		{"oversized", func(t *testing.T, p string) {
			os.WriteFile(p, []byte(strings.Repeat("#\n", maxIgnoreFile)), 0o644)
		}, "larger than the 65536 byte limit"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := tempRoot(t)
			write(t, root, map[string]string{"app.yaml": "apiVersion: zocker/v1\nkind: Volume\nmetadata: {name: data}\nspec: {reclaimPolicy: Delete}\n",
				"keep.yaml": container("keep"), IgnoreFile: "app.yaml\n"})
			p := filepath.Join(root, IgnoreFile)
			c.setup(t, p)
			set, err := Load(root, LoadOptions{})
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
				t.Fatalf("Load = %v, %v; want an error naming %s with %q", set, err, p, c.want)
			}
		})
	}
	// A secure one still works.
	root := tempRoot(t)
	write(t, root, map[string]string{"app.yaml": "not: [yaml\n", "keep.yaml": container("keep"), IgnoreFile: "app.yaml\n"})
	set, err := Load(root, LoadOptions{})
	if err != nil || len(errorsOf(set)) != 0 || set.Containers["keep"] == nil {
		t.Fatalf("secure ignore file: %v %v", set, err)
	}
}
