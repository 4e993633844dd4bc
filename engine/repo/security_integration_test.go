package repo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/engine/zfs"
	"github.com/zocker-reconcile/zocker-reconcile/internal/testenv"
)

// hostileRepo makes a dataset on the test pool with mountpoint=mp and a file
// in it, snapshots it @image, sends it with sendFlags into a file://
// repository as image id tagged "evil" (with a record that matches the
// stream: size, sha256, guid — all the repository's own word), and destroys
// the dataset. It returns the repository URL.
func hostileRepo(t *testing.T, mp string, sendFlags ...string) (url, id string) {
	return hostileRepoID(t, mp, randomID(), sendFlags...)
}

// hostileRepoID is hostileRepo with the image ID the repository claims.
func hostileRepoID(t *testing.T, mp, id string, sendFlags ...string) (string, string) {
	t.Helper()
	src := testenv.Dataset(t)
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("zfs", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("zfs %v: %v: %s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	run("create", "-o", "mountpoint=none", src)
	run("create", "-o", "mountpoint="+mp, src+"/evil")
	if err := os.WriteFile(filepath.Join(mp, "authorized_keys"), []byte("ssh-ed25519 AAAA attacker\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run("snapshot", src+"/evil@image")
	guid, err := strconv.ParseUint(run("get", "-H", "-p", "-o", "value", "guid", src+"/evil@image"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "images", id), 0o755); err != nil {
		t.Fatal(err)
	}
	stream := filepath.Join(dir, "images", id, "stream")
	f, err := os.Create(stream)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"send"}
	for _, f := range sendFlags {
		if f != "" {
			args = append(args, f)
		}
	}
	cmd := exec.Command("zfs", append(args, src+"/evil@image")...)
	cmd.Stdout = f
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("zfs send: %v: %s", err, stderr.String())
	}
	f.Close()
	b, err := os.ReadFile(stream)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	m, _ := json.Marshal(Meta{ID: id, GUID: guid, Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:]), Created: time.Now().UTC()})
	if err := os.WriteFile(filepath.Join(dir, "images", id, "meta.json"), m, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "tags"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tags", "evil"), []byte(id+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.DestroyAll(t, src+"/evil")
	return "file://" + dir, id
}

// mounted reports whether anything is mounted at dir (/proc/mounts).
func mounted(t *testing.T, dir string) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[1] == dir {
			return true
		}
	}
	return false
}

// TestSecurityC1ReceivedPropertiesPull: a repository stream made with
// `zfs send -p` from a dataset with mountpoint= set (here a scratch
// directory standing for /root/.ssh) is refused before zfs receive sees a
// byte: nothing is received, nothing is mounted there, nothing is left. The
// same dataset sent without -p carries no properties and is pulled as an
// image mounted under the root, not at the stream's mountpoint. Fails on
// 67d2aef, where the -p stream was received and mounted over the directory.
func TestSecurityC1ReceivedPropertiesPull(t *testing.T) {
	ctx := context.Background()
	target := filepath.Join(t.TempDir(), "dot-ssh")
	url, id := hostileRepo(t, target, "-p")
	if mounted(t, target) {
		t.Fatal("source dataset still mounted")
	}
	os.RemoveAll(target)
	s, l := openStoreOtherPool(t)
	r, err := Open(ctx, url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Pull(ctx, l, "evil")
	t.Logf("pull: %v", err)
	if !errors.Is(err, zfs.ErrStreamRefused) || !strings.Contains(err.Error(), "compound stream") {
		t.Fatalf("pull of a zfs send -p stream: %v, want it refused", err)
	}
	if mounted(t, target) {
		t.Fatalf("the stream's dataset is mounted at %s", target)
	}
	if _, err := os.Stat(filepath.Join(target, "authorized_keys")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s/authorized_keys: %v", target, err)
	}
	out, err := exec.Command("zfs", "list", "-H", "-r", "-o", "name,mountpoint", s.Root()).CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.Contains(line, "/tmp/") || strings.Contains(line, id) || strings.Contains(line, target) {
			t.Errorf("left behind: %s", line)
		}
	}

	// The same dataset without -p: the stream carries no property; the image
	// is received and lives under the root.
	url2, id2 := hostileRepo(t, target, "")
	os.RemoveAll(target)
	r2, err := Open(ctx, url2, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r2.Pull(ctx, l, "evil"); err != nil {
		t.Fatalf("pull of a plain stream: %v", err)
	}
	st, err := s.Observe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	im, ok := st.Image(id2)
	if !ok || im.Mountpoint == target || !strings.HasSuffix(im.Mountpoint, "/images/"+id2) {
		t.Fatalf("pulled image %+v: want it mounted below the root", im)
	}
	if im.Provenance() != zfs.OriginPull {
		t.Errorf("origin %q, want pull", im.Provenance())
	}
	if mounted(t, target) {
		t.Fatalf("mounted at %s", target)
	}
}

// TestSecurityH2PulledIDNeverOurs: a repository publishes an image under the
// ID that importing the busybox tarball gives (IDs are the repository's
// word). 67d2aef then took the pulled file system for the import: the
// "import" of a pinned sha256 gave the repository's content. Now the import
// is refused as an ID collision with an image of another origin, and the
// pulled image is marked origin pull.
func TestSecurityH2PulledIDNeverOurs(t *testing.T) {
	ctx := context.Background()
	tarball := testenv.BusyboxTarball(t)
	b, err := os.ReadFile(tarball)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	importID := zfs.TarballID(hex.EncodeToString(sum[:]))
	target := filepath.Join(t.TempDir(), "mp")
	url, _ := hostileRepoID(t, target, importID, "")
	s, l := openStoreOtherPool(t)
	r, err := Open(ctx, url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Pull(ctx, l, "evil"); err != nil {
		t.Fatalf("pull: %v", err)
	}
	id, err := s.ImportTarball(ctx, zfs.ImportSource{Path: tarball}, zfs.Config{})
	t.Logf("import: %s %v", id, err)
	if !errors.Is(err, zfs.ErrOriginConflict) {
		t.Fatalf("import of a tarball whose ID a pulled image has: %q %v, want an origin conflict", id, err)
	}
	st, err := s.Observe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	im, ok := st.Image(importID)
	if !ok || im.Provenance() != zfs.OriginPull || im.Local() {
		t.Fatalf("image %+v: want origin pull", im)
	}
}
