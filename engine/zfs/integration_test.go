package zfs

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
	"github.com/zocker-reconcile/zocker-reconcile/internal/testenv"
)

// crashEnv makes the test binary, re-executed, import a tarball and be killed
// by its parent in the middle (TestCrashDuringImport).
const crashEnv = "ZOCKER_ZFS_TEST_CRASH_IMPORT"

func TestMain(m *testing.M) {
	if v := os.Getenv(crashEnv); v != "" {
		root, tarball := v, os.Getenv(crashEnv+"_TARBALL")
		ctx := context.Background()
		s, err := Open(ctx, root, &runner.Exec{}, nil)
		if err == nil {
			_, err = s.ImportTarball(ctx, ImportSource{Path: tarball}, Config{})
		}
		fmt.Fprintln(os.Stderr, "import finished before the kill:", err)
		os.Exit(3)
	}
	os.Exit(m.Run())
}

// requireAdapter fails clearly when go-zfs cannot run against this pool:
// zfs-fuse refuses `zfs list -p`, and the adapter must be first on PATH.
func requireAdapter(t testing.TB, pool string) {
	t.Helper()
	if out, err := exec.Command("zfs", "list", "-H", "-p", "-o", "name", pool).CombinedOutput(); err != nil {
		t.Fatalf("`zfs list -p` is refused (%v: %s): this is zfs-fuse without the adapter; put it first on PATH: "+
			"go build -o /tmp/zfsfuse-bin/zfs ./internal/zfsfuse/cmd/zfs && export PATH=/tmp/zfsfuse-bin:$PATH (scripts/substrate.sh does it)", err, strings.TrimSpace(string(out)))
	}
}

type testStore struct {
	*Store
	exec *runner.Exec
}

func openTest(t testing.TB) testStore {
	t.Helper()
	root := testenv.Dataset(t)
	requireAdapter(t, testenv.Pool(t))
	ex := &runner.Exec{}
	var w io.Writer = io.Discard
	if os.Getenv("ZOCKER_TEST_DEBUG") != "" {
		w = os.Stderr
	}
	s, err := Open(context.Background(), root, ex, slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	return testStore{s, ex}
}

func mustObserve(t testing.TB, s *Store) *State {
	t.Helper()
	st, err := s.Observe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// zfsNames lists every dataset and snapshot under ds.
func zfsNames(t testing.TB, ds string) []string {
	t.Helper()
	out, err := exec.Command("zfs", "list", "-H", "-o", "name", "-t", "all", "-r", ds).Output()
	if err != nil {
		t.Fatalf("zfs list %s: %v", ds, err)
	}
	return strings.Fields(string(out))
}

// makeTar archives files (name -> content) into a tarball in dir.
func makeTar(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	for name, content := range files {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tarball := filepath.Join(dir, "rootfs.tar")
	if out, err := exec.Command("tar", "-C", src, "-cf", tarball, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v: %s", err, out)
	}
	return tarball
}

func sha(t testing.TB, path string) string {
	t.Helper()
	d, err := fileSHA256(path)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestOpenRefusals(t *testing.T) {
	pool := testenv.Pool(t)
	requireAdapter(t, pool)
	ctx := context.Background()
	_, err := Open(ctx, "zockernopool"+testenv.RandomHex(3)+"/zocker", &runner.Exec{}, nil)
	if err == nil || !strings.Contains(err.Error(), "pool zockernopool") || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing pool: err = %v", err)
	}
	foreign := testenv.Dataset(t)
	for _, ds := range []string{foreign, foreign + "/mine"} {
		if out, err := exec.Command("zfs", "create", ds).CombinedOutput(); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
	}
	_, err = Open(ctx, foreign, &runner.Exec{}, nil)
	if err == nil || !strings.Contains(err.Error(), "not created by zocker-reconcile") {
		t.Errorf("foreign non-empty root: err = %v", err)
	}
	if got := zfsNames(t, foreign); len(got) != 2 {
		t.Errorf("the refused root was modified: %v", got)
	}
	if _, err := Open(ctx, "bad name/x", &runner.Exec{}, nil); err == nil {
		t.Error("invalid root name accepted")
	}
}

func TestStoreLifecycle(t *testing.T) {
	ts := openTest(t)
	s, ctx := ts.Store, context.Background()

	// Open again: idempotent, the tree is there.
	if _, err := Open(ctx, s.root, ts.exec, nil); err != nil {
		t.Fatalf("second Open: %v", err)
	}

	busybox := testenv.BusyboxTarball(t)
	var id string
	t.Run("import", func(t *testing.T) {
		var err error
		id, err = s.ImportTarball(ctx, ImportSource{Path: busybox}, Config{Cmd: []string{"/bin/sh"}, Env: map[string]string{"PATH": "/bin"}})
		if err != nil {
			t.Fatal(err)
		}
		if id != TarballID(sha(t, busybox)) {
			t.Errorf("id %s is not the tarball's content address", id)
		}
		st := mustObserve(t, s)
		if len(st.Images) != 1 || st.Images[0].ID != id || st.Images[0].Config.Cmd[0] != "/bin/sh" || st.Images[0].Referenced == 0 {
			t.Fatalf("images = %+v", st.Images)
		}
		if len(st.Tmp) != 0 {
			t.Errorf("tmp not empty after import: %v", st.Tmp)
		}
		before := ts.exec.Count.Load()
		again, err := s.ImportTarball(ctx, ImportSource{Path: busybox, SHA256: sha(t, busybox)}, Config{})
		if err != nil || again != id {
			t.Fatalf("second import = %s, %v; want %s", again, err, id)
		}
		if n := ts.exec.Count.Load() - before; n != 1 {
			t.Errorf("second import ran %d commands, want 1 (existence check only)", n)
		}
	})

	t.Run("refused before anything is created", func(t *testing.T) {
		before := zfsNames(t, s.root)
		n := ts.exec.Count.Load()
		_, err := s.ImportTarball(ctx, ImportSource{Path: busybox, SHA256: strings.Repeat("0", 64)}, Config{})
		if err == nil || !strings.Contains(err.Error(), "sha256 mismatch") {
			t.Errorf("mismatching sha256: err = %v", err)
		}
		if _, err := s.CreateContainer(ctx, "Bad_Name", id, nil); err == nil {
			t.Error("invalid container name accepted")
		}
		if err := s.EnsureVolume(ctx, "x;rm -rf /", VolumeSpec{}, nil); err == nil {
			t.Error("invalid volume name accepted")
		}
		if err := s.Tag(ctx, "../x", id); err == nil {
			t.Error("invalid tag accepted")
		}
		if _, err := s.ImportTarball(ctx, ImportSource{URL: "http://example.com/x.tar", SHA256: strings.Repeat("0", 64)}, Config{}); err == nil {
			t.Error("http URL accepted")
		}
		if _, err := s.ImportTarball(ctx, ImportSource{URL: "https://example.com/x.tar"}, Config{}); err == nil {
			t.Error("URL without sha256 accepted")
		}
		if got := ts.exec.Count.Load() - n; got != 0 {
			t.Errorf("%d commands ran for refused input", got)
		}
		if after := zfsNames(t, s.root); strings.Join(after, " ") != strings.Join(before, " ") {
			t.Errorf("datasets changed:\nbefore %v\nafter  %v", before, after)
		}
	})

	var id2 string
	t.Run("tag and re-tag", func(t *testing.T) {
		var err error
		id2, err = s.ImportTarball(ctx, ImportSource{Path: makeTar(t, map[string]string{"etc/version": "2\n"})}, Config{})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Tag(ctx, "base", id); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Resolve(ctx, "base"); err != nil || got != id {
			t.Fatalf("base -> %s, %v", got, err)
		}
		if err := s.Tag(ctx, "base", id2); err != nil {
			t.Fatal(err)
		}
		st := mustObserve(t, s)
		if st.Tags["base"] != id2 || len(st.Tags) != 1 {
			t.Errorf("tags after move = %v, want base -> %s only", st.Tags, id2)
		}
		for _, im := range st.Images {
			for k := range im.Props {
				if strings.HasPrefix(k, PropTagPrefix) {
					t.Errorf("image %s holds tag property %s as its own", im.ID, k)
				}
			}
		}
		if err := s.Tag(ctx, "ghost", strings.Repeat("e", 64)); !errors.Is(err, ErrNotFound) {
			t.Errorf("tag to a missing image: %v", err)
		}
		// ResolveRef (targeted reads) agrees with Resolve on the state.
		for _, ref := range []string{"base", id, id2, id2[:12], "nope", strings.Repeat("e", 64)} {
			want, werr := st.Resolve(ref)
			got, gerr := s.ResolveRef(ctx, ref)
			if got != want || (werr == nil) != (gerr == nil) || (werr != nil && errors.Is(werr, ErrNotFound) != errors.Is(gerr, ErrNotFound)) {
				t.Errorf("ResolveRef(%s) = %s, %v; Resolve: %s, %v", ref, got, gerr, want, werr)
			}
		}
	})

	t.Run("container", func(t *testing.T) {
		c, err := s.CreateContainer(ctx, "web", id, map[string]string{PropSpecHash: "h1", PropManifest: "/m/web.yaml", "zocker:ip": "127.0.1.2"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(c.Mountpoint, "bin", "busybox")); err != nil {
			t.Fatalf("busybox not in the clone: %v", err)
		}
		if err := os.WriteFile(filepath.Join(c.Mountpoint, "written-by-container"), []byte("x"), 0o644); err != nil {
			t.Fatalf("container not writable: %v", err)
		}
		st := mustObserve(t, s)
		im, _ := st.Image(id)
		if _, err := os.Stat(filepath.Join(im.Mountpoint, "written-by-container")); !os.IsNotExist(err) {
			t.Errorf("the write reached the image: %v", err)
		}
		if err := os.WriteFile(filepath.Join(im.Mountpoint, "x"), nil, 0o644); err == nil {
			t.Error("image dataset is writable")
		}
		if len(st.Containers) != 1 || st.Containers[0].ImageID != id || st.Containers[0].Props["zocker:ip"] != "127.0.1.2" || st.Containers[0].Manifest != "/m/web.yaml" {
			t.Fatalf("containers = %+v", st.Containers)
		}
		if err := s.SetContainerProps(ctx, "web", map[string]string{PropSpecHash: "h2"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateContainer(ctx, "web", id, nil); !errors.Is(err, ErrExists) {
			t.Errorf("second create: %v, want ErrExists", err)
		}
		if st := mustObserve(t, s); st.Containers[0].SpecHash != "h2" {
			t.Errorf("spec hash = %q", st.Containers[0].SpecHash)
		}
		// A hand-made dataset in containers/ is never touched.
		if out, err := exec.Command("zfs", "create", s.root+"/containers/byhand").CombinedOutput(); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if err := s.DestroyContainer(ctx, "byhand"); err == nil || !strings.Contains(err.Error(), "not a container managed") {
			t.Errorf("destroying a foreign dataset: %v", err)
		}
		if st := mustObserve(t, s); len(st.Foreign) != 1 {
			t.Errorf("foreign = %v", st.Foreign)
		}
		if err := s.DestroyContainer(ctx, "nothere"); !errors.Is(err, ErrNotFound) {
			t.Errorf("destroy missing container: %v, want ErrNotFound", err)
		}
	})

	t.Run("rmi refused while used", func(t *testing.T) {
		// F9: one tag of several goes even while containers use the image.
		for _, tag := range []string{"extra1", "extra2"} {
			if err := s.Tag(ctx, tag, id); err != nil {
				t.Fatal(err)
			}
		}
		if removed, err := s.RemoveImage(ctx, "extra1"); err != nil || removed {
			t.Fatalf("rmi of one tag of several while in use = %v, %v; want untagged", removed, err)
		}
		before := mustObserve(t, s).Tags
		if _, ok := before["extra1"]; ok {
			t.Fatalf("extra1 still tagged: %v", before)
		}
		// F8: removing the ID is refused before any tag goes.
		_, err := s.RemoveImage(ctx, id)
		if err == nil || !strings.Contains(err.Error(), "container web") {
			t.Fatalf("rmi of a used image: %v", err)
		}
		if after := mustObserve(t, s).Tags; !maps.Equal(before, after) {
			t.Fatalf("a refused rmi changed the tags: %v -> %v", before, after)
		}
		if err := s.Untag(ctx, "extra2"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("volume quota", func(t *testing.T) {
		if err := s.EnsureVolume(ctx, "data", VolumeSpec{QuotaBytes: 2 << 20, Properties: map[string]string{"atime": "off"}}, nil); err != nil {
			t.Fatal(err)
		}
		st := mustObserve(t, s)
		if len(st.Volumes) != 1 || st.Volumes[0].Quota != 2<<20 {
			t.Fatalf("volumes = %+v", st.Volumes)
		}
		mp := st.Volumes[0].Mountpoint
		if err := writeRandom(filepath.Join(mp, "big"), 8<<20); err == nil {
			t.Fatal("wrote 8 MiB into a 2 MiB volume")
		} else if !errors.Is(err, syscall.EDQUOT) && !errors.Is(err, syscall.ENOSPC) {
			t.Logf("quota error: %v", err)
		}
		os.Remove(filepath.Join(mp, "big"))
		if err := s.EnsureVolume(ctx, "data", VolumeSpec{QuotaBytes: 64 << 20, Properties: map[string]string{"atime": "off"}}, nil); err != nil {
			t.Fatal(err)
		}
		if st := mustObserve(t, s); st.Volumes[0].Quota != 64<<20 {
			t.Errorf("quota not changed in place: %d", st.Volumes[0].Quota)
		}
		waitQuiet()
		if err := writeRandom(filepath.Join(mp, "big"), 8<<20); err != nil {
			t.Errorf("write after raising the quota: %v", err)
		}
	})

	t.Run("gc", func(t *testing.T) {
		id3, err := s.ImportTarball(ctx, ImportSource{Path: makeTar(t, map[string]string{"etc/version": "3\n"})}, Config{})
		if err != nil {
			t.Fatal(err)
		}
		kept, err := s.ImportTarball(ctx, ImportSource{Path: makeTar(t, map[string]string{"etc/version": "4\n"})}, Config{})
		if err != nil {
			t.Fatal(err)
		}
		keep := func(i string) bool { return i == kept }
		dry, err := s.GC(ctx, keep, true)
		if err != nil || len(dry) != 1 || dry[0] != id3 {
			t.Fatalf("gc --dry-run = %v, %v; want [%s]", dry, err, id3)
		}
		if _, ok := mustObserve(t, s).Image(id3); !ok {
			t.Fatal("dry run removed the image")
		}
		got, err := s.GC(ctx, keep, false)
		if err != nil || len(got) != 1 || got[0] != id3 {
			t.Fatalf("gc = %v, %v", got, err)
		}
		st := mustObserve(t, s)
		for _, want := range []string{id, id2, kept} {
			if _, ok := st.Image(want); !ok {
				t.Errorf("gc removed referenced image %s", want)
			}
		}
		if _, ok := st.Image(id3); ok {
			t.Error("unreferenced image survived gc")
		}
	})

	t.Run("destroy and re-create", func(t *testing.T) {
		for i := 0; i < 2; i++ {
			if err := s.DestroyContainer(ctx, "web"); err != nil {
				t.Fatal(err)
			}
			if _, err := s.CreateContainer(ctx, "web", id, nil); err != nil {
				t.Fatalf("re-create %d: %v", i, err)
			}
		}
		if err := s.DestroyContainer(ctx, "web"); err != nil {
			t.Fatal(err)
		}
		// Now unused and untagged: rmi removes it.
		if removed, err := s.RemoveImage(ctx, id[:12]); err != nil || !removed {
			t.Fatalf("rmi = %v, %v", removed, err)
		}
		// rmi of a tag only untags while... base is the only tag of id2: it goes.
		if removed, err := s.RemoveImage(ctx, "base"); err != nil || !removed {
			t.Fatalf("rmi base = %v, %v", removed, err)
		}
		st := mustObserve(t, s)
		if len(st.Tags) != 0 || len(st.Volumes) != 1 {
			t.Errorf("after rmi: tags %v, volumes %d (a volume is never a side effect)", st.Tags, len(st.Volumes))
		}
		if err := s.DestroyVolume(ctx, "data"); err != nil {
			t.Fatal(err)
		}
	})
}

// waitQuiet gives zfs-fuse a moment to account freed space.
func waitQuiet() { time.Sleep(300 * time.Millisecond) }

func writeRandom(path string, n int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.CopyN(f, rand.Reader, n); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// TestCrashDuringImport SIGKILLs a process (and its tar) in the middle of an
// import: nothing appears under images/, no tag, and the next Open cleans tmp/
// and the next import succeeds.
func TestCrashDuringImport(t *testing.T) {
	ts := openTest(t)
	s, ctx := ts.Store, context.Background()
	// Big enough that extraction takes a while on zfs-fuse.
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	for i := 0; i < 40; i++ {
		if err := os.MkdirAll(src, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := writeRandom(filepath.Join(src, fmt.Sprintf("f%02d", i)), 2<<20); err != nil {
			t.Fatal(err)
		}
	}
	tarball := filepath.Join(dir, "big.tar")
	if out, err := exec.Command("tar", "-C", src, "-cf", tarball, ".").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, "-test.run=^$")
	cmd.Env = append(os.Environ(), crashEnv+"="+s.root, crashEnv+"_TARBALL="+tarball)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait for the work dataset to appear and fill a little, then kill the
	// whole process group, tar included, like a crash or a kill -9 of the service.
	deadline := time.Now().Add(60 * time.Second)
	killed := false
	for time.Now().Before(deadline) {
		st := mustObserve(t, s)
		if len(st.Tmp) > 0 {
			time.Sleep(300 * time.Millisecond)
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			killed = true
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("no work dataset appeared in tmp/ (child: %v)", err)
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the child was not killed mid-import: %v", err)
	}
	st := mustObserve(t, s)
	if len(st.Images) != 0 || len(st.Tags) != 0 {
		t.Fatalf("a killed import left images %v tags %v", st.Images, st.Tags)
	}
	for _, n := range zfsNames(t, s.root+"/images") {
		if n != s.root+"/images" {
			t.Errorf("left under images/: %s", n)
		}
	}
	if len(st.Tmp) == 0 {
		t.Log("the kill came after tmp was emptied? (no leftover to clean)")
	}
	s2, err := Open(ctx, s.root, ts.exec, nil)
	if err != nil {
		t.Fatalf("Open after the crash: %v", err)
	}
	if st := mustObserve(t, s2); len(st.Tmp) != 0 {
		t.Errorf("Open left tmp/: %v", st.Tmp)
	}
	id, err := s2.ImportTarball(ctx, ImportSource{Path: tarball}, Config{})
	if err != nil {
		t.Fatalf("import after the crash: %v", err)
	}
	if _, ok := mustObserve(t, s2).Image(id); !ok {
		t.Error("image missing after the retried import")
	}
}

// TestTarballID pins the content address: changing it would orphan every image.
func TestTarballID(t *testing.T) {
	d := sha256.Sum256([]byte("x"))
	got := TarballID(hex.EncodeToString(d[:]))
	if len(got) != 64 || got == hex.EncodeToString(d[:]) || got != TarballID(strings.ToUpper(hex.EncodeToString(d[:]))) {
		t.Errorf("TarballID = %s", got)
	}
}

func TestImportFromURL(t *testing.T) {
	ts := openTest(t)
	s, ctx := ts.Store, context.Background()
	busybox := testenv.BusyboxTarball(t)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, busybox)
	}))
	defer srv.Close()
	s.HTTPClient = srv.Client()
	digest := sha(t, busybox)

	before := zfsNames(t, s.root)
	if _, err := s.ImportTarball(ctx, ImportSource{URL: srv.URL + "/rootfs.tar", SHA256: strings.Repeat("1", 64)}, Config{}); err == nil || !strings.Contains(err.Error(), "sha256 mismatch") {
		t.Fatalf("mismatching download: %v", err)
	}
	if after := zfsNames(t, s.root); strings.Join(after, " ") != strings.Join(before, " ") {
		t.Errorf("a refused download created datasets: %v", after)
	}
	id, err := s.ImportTarball(ctx, ImportSource{URL: srv.URL + "/rootfs.tar", SHA256: digest}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if id != TarballID(digest) {
		t.Errorf("URL import ID %s differs from the content address", id)
	}
	// The same archive from a path is the same image: nothing to do.
	if again, err := s.ImportTarball(ctx, ImportSource{Path: busybox}, Config{}); err != nil || again != id {
		t.Errorf("path import after URL import = %s, %v", again, err)
	}
	if n := len(mustObserve(t, s).Images); n != 1 {
		t.Errorf("%d images, want 1", n)
	}
}

// TestBuildPrimitives makes a child image the way the builder will (clone of
// the parent in tmp, a change, publish with a parent) and checks that rmi and
// gc follow the clone dependency.
func TestBuildPrimitives(t *testing.T) {
	ts := openTest(t)
	s, ctx := ts.Store, context.Background()
	base, err := s.ImportTarball(ctx, ImportSource{Path: makeTar(t, map[string]string{"etc/base": "1"})}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.NewWork(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(w.Mountpoint, "etc", "base")); err != nil {
		t.Fatalf("work clone lacks the parent's files: %v", err)
	}
	if err := os.WriteFile(filepath.Join(w.Mountpoint, "etc", "child"), []byte("2"), 0o644); err != nil {
		t.Fatal(err)
	}
	child := TarballID(strings.Repeat("c", 64)) // any content address will do here
	if err := s.Publish(ctx, w, child, Config{Parent: base, Cmd: []string{"/bin/true"}, Inputs: "sha256:x"}, nil); err != nil {
		t.Fatal(err)
	}
	st := mustObserve(t, s)
	im, ok := st.Image(child)
	if !ok || im.Parent != base || im.Origin != s.imageDS(base)+"@image" || im.Config.Inputs != "sha256:x" {
		t.Fatalf("child image = %+v", im)
	}
	if _, err := s.RemoveImage(ctx, base); err == nil || !strings.Contains(err.Error(), "parent of image "+child[:12]) {
		t.Errorf("rmi of a parent: %v", err)
	}
	got, err := s.GC(ctx, nil, false)
	if err != nil || len(got) != 2 || got[0] != child || got[1] != base {
		t.Fatalf("gc = %v, %v; want child then parent", got, err)
	}
	if st := mustObserve(t, s); len(st.Images) != 0 {
		t.Errorf("images left: %v", st.Images)
	}
}
