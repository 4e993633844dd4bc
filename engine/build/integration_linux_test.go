//go:build linux

package build

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/zocker-reconcile/zocker-reconcile/engine/jail"
	"github.com/zocker-reconcile/zocker-reconcile/engine/jail/linuxns"
	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
	"github.com/zocker-reconcile/zocker-reconcile/engine/zfs"
	"github.com/zocker-reconcile/zocker-reconcile/internal/testenv"
)

func TestMain(m *testing.M) {
	// The Linux jail driver re-executes this test binary as its init and
	// exec shim.
	if len(os.Args) > 1 && os.Args[1] == linuxns.InitCommand {
		os.Exit(linuxns.HelperMain(os.Args[2:]))
	}
	os.Exit(m.Run())
}

// zfsEnv is a real store on the test pool with the busybox image tagged
// "busybox", and the Linux driver.
type zfsEnv struct {
	exec   *runner.Exec
	store  *zfs.Store
	driver *linuxns.Driver
	base   string
}

func newZFSEnv(t testing.TB) *zfsEnv {
	t.Helper()
	root := testenv.Dataset(t)
	if out, err := exec.Command("zfs", "list", "-H", "-p", "-o", "name", testenv.Pool(t)).CombinedOutput(); err != nil {
		t.Fatalf("`zfs list -p` is refused (%v: %s): put the zfs-fuse adapter first on PATH "+
			"(go build -o /tmp/zfsfuse-bin/zfs ./internal/zfsfuse/cmd/zfs; scripts/substrate.sh does it)", err, strings.TrimSpace(string(out)))
	}
	if _, err := exec.LookPath("nsenter"); err != nil {
		t.Fatalf("nsenter (util-linux) is required: %v", err)
	}
	var w io.Writer = io.Discard
	if os.Getenv("ZOCKER_TEST_DEBUG") != "" {
		w = os.Stderr
	}
	log := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx := context.Background()
	ex := &runner.Exec{}
	s, err := zfs.Open(ctx, root, ex, log)
	if err != nil {
		t.Fatal(err)
	}
	id, err := s.ImportTarball(ctx, zfs.ImportSource{Path: testenv.BusyboxTarball(t)},
		zfs.Config{Env: map[string]string{"PATH": "/bin:/sbin:/usr/bin:/usr/sbin"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Tag(ctx, "busybox", id); err != nil {
		t.Fatal(err)
	}
	d := linuxns.New(t.TempDir(), []string{os.Args[0], linuxns.InitCommand}, &runner.Exec{}, log)
	return &zfsEnv{exec: ex, store: s, driver: d, base: id}
}

func (e *zfsEnv) build(t testing.TB, dir, tag string, args map[string]string) (Result, string, error) {
	t.Helper()
	var out bytes.Buffer
	res, err := Build(context.Background(), Options{ContextDir: dir, Tag: tag, Args: args, Output: &out, Store: e.store, Driver: e.driver})
	return res, out.String(), err
}

func (e *zfsEnv) observe(t testing.TB) *zfs.State {
	t.Helper()
	st, err := e.store.Observe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// assertClean checks that no temporary dataset and no build jail remain.
func (e *zfsEnv) assertClean(t testing.TB) {
	t.Helper()
	if tmp := e.observe(t).Tmp; len(tmp) != 0 {
		t.Errorf("temporary datasets left: %v", tmp)
	}
	if js, err := e.driver.List(context.Background()); err != nil || len(js) != 0 {
		t.Errorf("build jails left: %v %v", js, err)
	}
}

// copyDir copies the demo context so that the test can touch its files.
func copyDir(t testing.TB, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "ctx")
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("copy %s: %v: %s", src, err, out)
	}
	return dst
}

// runIn starts a container from image id like the runtime does (a clone, a
// jail, the image's USER, WORKDIR and ENV) and returns what script prints.
func (e *zfsEnv) runIn(t *testing.T, id, script string) string {
	t.Helper()
	ctx := context.Background()
	name := "hello-" + testenv.RandomHex(3)
	c, err := e.store.CreateContainer(ctx, name, id, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.store.DestroyContainer(context.Background(), name) })
	if err := e.driver.Create(ctx, jail.Spec{Name: name, Root: c.Mountpoint, Network: jail.Network{Mode: jail.NetNone}}); err != nil {
		t.Fatal(err)
	}
	defer e.driver.Remove(ctx, name)
	im, _ := e.observe(t).Image(id)
	var env []string
	for _, k := range sortedKeys(im.Config.Env) {
		env = append(env, k+"="+im.Config.Env[k])
	}
	cmd, err := e.driver.Command(name, jail.Process{Argv: []string{"/bin/sh", "-c", script}, Env: env, User: im.Config.User, Workdir: im.Config.Workdir})
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", script, err, out)
	}
	return string(out)
}

func TestBuildDemoOnZFS(t *testing.T) {
	e := newZFSEnv(t)
	dir := copyDir(t, filepath.Join("..", "..", "examples", "demo", "hello"))

	res, out, err := e.build(t, dir, "hello", nil)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	t.Logf("first build:\n%s", out)
	if res.Executed != res.Steps-1 || res.Cached != 0 {
		t.Errorf("first build %+v", res)
	}
	st := e.observe(t)
	if st.Tags["hello"] != res.ID {
		t.Fatalf("tag hello -> %q, want %s", st.Tags["hello"], res.ID)
	}
	im, _ := st.Image(res.ID)
	cfg := im.Config
	if cfg.User != "www" || cfg.Workdir != "/srv/www" || cfg.Env["GREETING"] != "hello from zocker" ||
		!reflect.DeepEqual(cfg.Cmd, []string{"/bin/sh", "-c", "httpd -f -v -p $PORT -h /srv/www"}) || cfg.Parent == "" {
		t.Errorf("config %+v", cfg)
	}
	got := e.runIn(t, res.ID, `id -un; pwd; echo "$GREETING"; cat greeting.txt /tmp/built-by; head -1 index.html`)
	if want := "www\n/srv/www\nhello from zocker\nhello from zocker\nwww\n<!doctype html>\n"; got != want {
		t.Errorf("container shows:\n%s\nwant:\n%s", got, want)
	}
	for _, f := range hostFiles {
		// The image itself, not a container (the driver copies them into those).
		if _, err := os.Lstat(filepath.Join(im.Mountpoint, f)); err == nil {
			t.Errorf("the build host's %s stayed in the image", f)
		}
	}
	if fi, err := os.Stat(filepath.Join(im.Mountpoint, "srv/www/index.html")); err != nil || fi.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Errorf("index.html in the image: %v (want owned by root)", err)
	}
	e.assertClean(t)

	// Nothing changed: no step runs, and the whole rebuild is one command
	// (go-zfs, which does not go through the runner, is not called at all:
	// no dataset is made, nothing is tagged).
	n := e.exec.Count.Load()
	res2, out, err := e.build(t, dir, "hello", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cmds := e.exec.Count.Load() - n; cmds != 1 {
		t.Errorf("a rebuild with nothing changed ran %d commands, want 1", cmds)
	}
	if res2.ID != res.ID || res2.Executed != 0 || strings.Count(out, "---> cached ") != res.Steps-1 {
		t.Errorf("rebuild: %+v\n%s", res2, out)
	}

	// Touching the copied file re-runs from its COPY on only.
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("<!doctype html>\nchanged\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res3, out, err := e.build(t, dir, "hello", nil)
	if err != nil {
		t.Fatal(err)
	}
	// Steps after FROM: ARG ENV RUN COPY WORKDIR USER RUN EXPOSE CMD.
	if got, want := cachedFlags(out), []bool{true, true, true, false, false, false, false, false, false}; !reflect.DeepEqual(got, want) {
		t.Errorf("after touching index.html: cached %v, want %v\n%s", got, want, out)
	}
	if res3.ID == res.ID || e.observe(t).Tags["hello"] != res3.ID {
		t.Errorf("the tag did not move to the new image")
	}
	e.assertClean(t)
}

func TestBuildFailureLeavesNothingOnZFS(t *testing.T) {
	e := newZFSEnv(t)
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "Zockerfile"), "FROM busybox\nRUN echo ok > /ok\n")
	good, out, err := e.build(t, dir, "app", nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	// --no-cache runs the step again; its ID exists, so the existing image
	// stays and the new work is discarded.
	var nc bytes.Buffer
	again, err := Build(context.Background(), Options{ContextDir: dir, NoCache: true, Output: &nc, Store: e.store, Driver: e.driver})
	if err != nil || again.ID != good.ID || again.Executed != 1 {
		t.Fatalf("--no-cache: %+v %v\n%s", again, err, nc.String())
	}
	e.assertClean(t)

	mustWrite(t, filepath.Join(dir, "Zockerfile"), "FROM busybox\nRUN echo ok > /ok\nRUN echo about to fail; exit 3\n")
	_, out, err = e.build(t, dir, "app", nil)
	var se *StepError
	if !errors.As(err, &se) || se.ExitCode != 3 || err.Error() != "Zockerfile:3: RUN exited with code 3" {
		t.Fatalf("error %v\n%s", err, out)
	}
	if !strings.Contains(out, "about to fail") {
		t.Errorf("the step's output was not streamed:\n%s", out)
	}
	if tag := e.observe(t).Tags["app"]; tag != good.ID {
		t.Errorf("tag app moved to %s", tag)
	}
	e.assertClean(t)

	// Refused sources fail before any dataset is made.
	outside := t.TempDir()
	mustWrite(t, filepath.Join(outside, "secret"), "s3cret")
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"COPY ../secret /", "COPY link /"} {
		mustWrite(t, filepath.Join(dir, "Zockerfile"), fmt.Sprintf("FROM busybox\n%s\n", line))
		if _, out, err := e.build(t, dir, "app", nil); !errors.Is(err, ErrOutsideContext) {
			t.Errorf("%s: %v\n%s", line, err, out)
		}
	}
	e.assertClean(t)
}

// BenchmarkRebuildUnchanged is a rebuild of the demo with nothing changed:
// every step cached, none run.
func BenchmarkRebuildUnchanged(b *testing.B) {
	e := newZFSEnv(b)
	dir := copyDir(b, filepath.Join("..", "..", "examples", "demo", "hello"))
	if _, out, err := e.build(b, dir, "hello", nil); err != nil {
		b.Fatalf("%v\n%s", err, out)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, _, err := e.build(b, dir, "hello", nil)
		if err != nil || res.Executed != 0 {
			b.Fatalf("rebuild ran %d steps: %v", res.Executed, err)
		}
	}
	b.ReportMetric(0, "steps-run/op")
}

// BenchmarkRunTrueStep is the fixed cost of one `RUN true` step: clone,
// build jail, the command, snapshot and publish. Each iteration's step text
// differs (a shell comment) so that none is cached.
func BenchmarkRunTrueStep(b *testing.B) {
	e := newZFSEnv(b)
	dir := b.TempDir()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		mustWrite(b, filepath.Join(dir, "Zockerfile"), fmt.Sprintf("FROM busybox\nRUN true #%d-%s\n", i, testenv.RandomHex(4)))
		b.StartTimer()
		res, out, err := e.build(b, dir, "", nil)
		if err != nil || res.Executed != 1 {
			b.Fatalf("%v %+v\n%s", err, res, out)
		}
	}
}
