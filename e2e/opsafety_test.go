package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Tests of issue 19 (operator safety); F-numbers are the rows of
// shared/reviews/ux-2026-12-02.md.

// runWith runs the binary with explicit global flags (another root or state
// directory than the host's).
func (h *host) runWith(globals []string, args ...string) result {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.bin, append(globals, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			h.t.Fatalf("run %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

func exists(t *testing.T, ds string) bool {
	t.Helper()
	return exec.Command("zfs", "get", "-H", "-o", "value", "type", ds).Run() == nil
}

// TestMissingRoot (F4): a misspelt root is an error naming the root the
// user meant, for every read command; apply and serve create nothing
// without --init.
func TestMissingRoot(t *testing.T) {
	t.Parallel()
	h := newHost(t)
	h.write("images.yaml", h.imageYAML())
	// One letter dropped from the real root's last component.
	typo := h.root[:len(h.root)-1]
	g := []string{"--root", typo, "--state-dir", filepath.Join(t.TempDir(), "s"), "--manifests", h.man}
	want := fmt.Sprintf("root %s does not exist (did you mean %s?)", typo, h.root)
	for _, args := range [][]string{{"ps"}, {"ps", "-a"}, {"images"}, {"volumes"}, {"plan"}, {"status", "--local"}, {"inspect", "bb"}, {"gc"}, {"apply"}} {
		res := h.runWith(g, args...)
		if res.code != 1 || !strings.Contains(res.stderr, want) || strings.Contains(res.stdout, "in sync") {
			t.Errorf("%v on a misspelt root: exit %d, want 1 with %q\nstdout: %s\nstderr: %s", args, res.code, want, res.stdout, res.stderr)
		}
	}
	if exists(t, typo) {
		t.Fatalf("a command created the misspelt root %s", typo)
	}
	// serve without --init refuses at once.
	res := h.runWith(g, "serve", "--listen", freeAddr(t))
	if res.code != 1 || !strings.Contains(res.stderr, "does not exist") || exists(t, typo) {
		t.Fatalf("serve on a missing root: exit %d, exists %v\nstderr: %s", res.code, exists(t, typo), res.stderr)
	}
	// A root whose parent is missing is not created even with --init.
	deep := h.root + "-nothere/zocker"
	res = h.runWith([]string{"--root", deep, "--state-dir", filepath.Join(t.TempDir(), "s2"), "--manifests", h.empty}, "apply", "--init")
	if res.code != 1 || !strings.Contains(res.stderr, "parent") || exists(t, h.root+"-nothere") {
		t.Fatalf("apply --init under a missing parent: exit %d\nstderr: %s", res.code, res.stderr)
	}
	// --init creates it when the parent exists, and says so on stdout.
	fresh := h.root + "/fresh"
	g2 := []string{"--root", fresh, "--state-dir", filepath.Join(t.TempDir(), "s3"), "--manifests", h.empty}
	if res := h.runWith(g2, "init"); res.code != 0 || !strings.Contains(res.stdout, "created root "+fresh) {
		t.Fatalf("init: exit %d\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
	}
	if res := h.runWith(g2, "ps"); res.code != 0 {
		t.Fatalf("ps on the new root: exit %d: %s", res.code, res.stderr)
	}
}

// TestOneWriterPerRoot (F7): a second serve and an apply on a root that a
// service holds are refused with the holder's pid; read commands work.
func TestOneWriterPerRoot(t *testing.T) {
	t.Parallel()
	h := newHost(t)
	h.write("images.yaml", h.imageYAML())
	h.write("w.yaml", containerYAML("w", "/bin/sleep", "100701"))
	srv := h.start()
	h.waitRunning("w", []string{"/bin/sleep", "100701"}, converge)
	pid := strconv.Itoa(srv.cmd.Process.Pid)

	res := h.run("serve", "--listen", freeAddr(t))
	if res.code != 1 || !strings.Contains(res.stderr, "pid "+pid) || !strings.Contains(res.stderr, srv.addr) {
		t.Errorf("second serve: exit %d, want 1 naming pid %s and %s\nstderr: %s", res.code, pid, srv.addr, res.stderr)
	}
	res = h.run("apply")
	if res.code != 1 || !strings.Contains(res.stderr, "pid "+pid) || !strings.Contains(res.stderr, "use plan") {
		t.Errorf("apply while serve runs: exit %d, want 1 naming pid %s and plan\nstdout: %s\nstderr: %s", res.code, pid, res.stdout, res.stderr)
	}
	if strings.Contains(res.stdout, "Converged") {
		t.Errorf("the refused apply acted: %s", res.stdout)
	}
	// The root names its holder.
	out, err := exec.Command("zfs", "get", "-H", "-o", "value", "zocker:owner", h.root).Output()
	if err != nil || !strings.Contains(string(out), " "+pid+" serve ") {
		t.Errorf("zocker:owner of %s = %q, %v; want it to name pid %s", h.root, out, err, pid)
	}
	// Read-only commands keep working beside the service.
	for _, args := range [][]string{{"ps"}, {"images"}, {"plan"}, {"status", "--listen", srv.addr}} {
		if res := h.run(args...); res.code != 0 {
			t.Errorf("%v beside serve: exit %d\nstdout: %s\nstderr: %s", args, res.code, res.stdout, res.stderr)
		}
	}
	// Once the service stopped, the root is free again.
	if err := srv.stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if out, _ := exec.Command("zfs", "get", "-H", "-o", "value", "zocker:owner", h.root).Output(); strings.TrimSpace(string(out)) != "-" {
		t.Errorf("zocker:owner after serve stopped = %q, want unset", out)
	}
	if res := h.run("apply"); res.code != 0 {
		t.Errorf("apply after serve stopped: exit %d\nstderr: %s", res.code, res.stderr)
	}
}

// TestRmiTags (F8, F9): one tag of several goes while containers use the
// image; a refused rmi of the ID leaves every tag in place.
func TestRmiTags(t *testing.T) {
	t.Parallel()
	h := newHost(t)
	h.write("images.yaml", h.imageYAML())
	h.write("u.yaml", containerYAML("u", "/bin/sleep", "100801"))
	if res := h.run("apply"); res.code != 0 {
		t.Fatalf("apply: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	id, why := h.imageID("bb")
	if id == "" {
		t.Fatal(why)
	}
	for _, tag := range []string{"bb2", "bb3"} {
		if res := h.run("tag", "bb", tag); res.code != 0 {
			t.Fatalf("tag bb %s: exit %d: %s", tag, res.code, res.stderr)
		}
	}
	if res := h.run("rmi", "bb3"); res.code != 0 || !strings.Contains(res.stdout, "untagged bb3") {
		t.Fatalf("rmi of one extra tag while in use: exit %d\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
	}
	before := h.run("images", "-q")
	res := h.run("rmi", id[:12])
	if res.code != 1 || !strings.Contains(res.stderr, "in use by container u") {
		t.Fatalf("rmi of the ID of a used image: exit %d, want 1 naming container u\nstderr: %s", res.code, res.stderr)
	}
	for _, tag := range []string{"bb", "bb2"} {
		if got, why := h.imageID(tag); got != id {
			t.Errorf("after the refused rmi, tag %s: %s %s; want %s", tag, got, why, id)
		}
	}
	if _, why := h.imageID("bb3"); why == "" {
		t.Errorf("bb3 still resolves after rmi bb3")
	}
	if after := h.run("images", "-q"); after.stdout != before.stdout {
		t.Errorf("the refused rmi changed the images: %q -> %q", before.stdout, after.stdout)
	}
}

// TestStateDirBoundToRoot (F10): a command given another state directory
// than the one the root's containers run with is refused, instead of
// seeing them as created and planning to start them again.
func TestStateDirBoundToRoot(t *testing.T) {
	t.Parallel()
	h := newHost(t)
	h.write("images.yaml", h.imageYAML())
	h.write("r.yaml", containerYAML("r", "/bin/sleep", "101001"))
	if res := h.run("apply"); res.code != 0 {
		t.Fatalf("apply: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	h.waitRunning("r", []string{"/bin/sleep", "101001"}, converge)
	other := []string{"--root", h.root, "--state-dir", filepath.Join(t.TempDir(), "other"), "--manifests", h.man}
	for _, args := range [][]string{{"ps", "-a"}, {"plan"}, {"apply"}, {"status", "--local"}} {
		res := h.runWith(other, args...)
		if res.code != 1 || !strings.Contains(res.stderr, "give --state-dir "+h.state) {
			t.Errorf("%v with another state dir: exit %d, want 1 naming %s\nstdout: %s\nstderr: %s", args, res.code, h.state, res.stdout, res.stderr)
		}
		if strings.Contains(res.stdout, "start container r") {
			t.Errorf("%v with another state dir plans to start the running container: %s", args, res.stdout)
		}
	}
	// A state directory that belongs to another root is refused too.
	fresh := h.root + "/other"
	res := h.runWith([]string{"--root", fresh, "--state-dir", h.state}, "init")
	if res.code != 1 || !strings.Contains(res.stderr, "belongs to root "+h.root) || exists(t, fresh) {
		t.Errorf("init with a state dir of another root: exit %d\nstderr: %s", res.code, res.stderr)
	}
}

// TestInterruptBuild (F6): SIGINT to build during a RUN kills the step,
// removes the build jail and the work dataset, exits 130; the next serve
// is ready in its normal start time.
func TestInterruptBuild(t *testing.T) {
	t.Parallel()
	h := newHost(t)
	h.write("images.yaml", h.imageYAML())
	if res := h.run("apply"); res.code != 0 {
		t.Fatalf("apply: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	ctxDir := t.TempDir()
	writeFile(t, filepath.Join(ctxDir, "Zockerfile"), "FROM bb\nRUN echo step1\nRUN /bin/sleep 100601\n")
	outPath := filepath.Join(t.TempDir(), "build.out")
	out, err := os.Create(outPath)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(h.bin, append(h.globals(), "build", "-t", "sleeper", ctxDir)...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	argv := []string{"/bin/sleep", "100601"}
	poll(t, converge, "the RUN step to run", func() (bool, string) {
		b, _ := os.ReadFile(outPath)
		return len(commandProcs(argv, 0)) > 0, string(b)
	})
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	select {
	case err = <-waitErr:
	case <-time.After(converge):
		cmd.Process.Kill()
		t.Fatal("build did not exit within a minute of SIGINT")
	}
	b, _ := os.ReadFile(outPath)
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
		t.Errorf("build after SIGINT: %v, want exit 130\n%s", err, b)
	}
	if p := commandProcs(argv, 0); len(p) > 0 {
		t.Errorf("the RUN process survived the interrupt: %v", p)
		for _, pid := range p {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if inits := jailInits(); len(inits) > 0 {
		t.Errorf("build jail inits survived the interrupt: %v", inits)
	}
	if left := datasets(t, h.root+"/tmp"); len(left) != 1 {
		t.Errorf("work datasets left in ROOT/tmp: %v", left)
	}
	// The next service starts as fast as usual: nothing busy to wait for.
	start := time.Now()
	srv := h.start()
	srv.waitReady(t, converge)
	took := time.Since(start)
	for _, l := range srv.lines() {
		if strings.Contains(l, "busy") {
			t.Errorf("serve met a busy leftover: %s", l)
		}
	}
	t.Logf("serve ready %s after the interrupted build", took.Round(10*time.Millisecond))
}

// jailInits returns the live __jail-init processes whose root is a build
// jail's (a chroot below a ROOT/tmp work dataset of some test).
func jailInits() []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !alive(pid) {
			continue
		}
		b, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if !strings.Contains(string(b), "__jail-init\x00init") {
			continue
		}
		if r, err := os.Readlink(filepath.Join("/proc", e.Name(), "root")); err == nil && strings.Contains(r, "/tmp/") && strings.Contains(r, "/zt-testinterruptbuild") {
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestApplyOneFile (F5): `apply one.yaml` beside 6 running containers acts
// on that file's object and prunes none; plan FILE says so; only the
// directory prunes.
func TestApplyOneFile(t *testing.T) {
	t.Parallel()
	h := newHost(t)
	h.write("images.yaml", h.imageYAML())
	argv := func(i int) []string { return []string{"/bin/sleep", fmt.Sprint(100500 + i)} }
	for i := 0; i < 6; i++ {
		h.write(fmt.Sprintf("c%d.yaml", i), containerYAML(fmt.Sprintf("c%d", i), argv(i)...))
	}
	if res := h.run("apply"); res.code != 0 {
		t.Fatalf("apply: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	before := map[string]int{}
	for i := 0; i < 6; i++ {
		before[fmt.Sprintf("c%d", i)] = h.waitRunning(fmt.Sprintf("c%d", i), argv(i), converge).PID
	}
	// A file outside the manifest directory, the kubectl habit.
	other := mkdir(t, t.TempDir(), "elsewhere")
	one := filepath.Join(other, "one.yaml")
	writeFile(t, one, containerYAML("one", "/bin/sleep", "100599"))
	res := h.run("plan", one)
	if res.code != 2 || !strings.Contains(res.stdout, "Only the 1 object(s) of "+one) || strings.Contains(res.stdout, "- prune") {
		t.Fatalf("plan FILE: exit %d\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
	}
	res = h.run("apply", one)
	if res.code != 0 || strings.Contains(res.stdout, "- prune") || !strings.Contains(res.stdout, "Only the 1 object(s)") {
		t.Fatalf("apply FILE: exit %d\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
	}
	h.waitRunning("one", []string{"/bin/sleep", "100599"}, converge)
	for i := 0; i < 6; i++ {
		name := fmt.Sprintf("c%d", i)
		if row := h.waitRunning(name, argv(i), 5*time.Second); row.PID != before[name] {
			t.Errorf("%s changed pid %d -> %d", name, before[name], row.PID)
		}
	}
	// A file inside the directory: its object only, with the others'
	// references resolved; an edit there replaces that container alone.
	h.write("c0.yaml", containerYAML("c0", "/bin/sleep", "100598"))
	res = h.run("apply", filepath.Join(h.man, "c0.yaml"))
	if res.code != 0 || !strings.Contains(res.stdout, "~ replace container c0") || strings.Contains(res.stdout, "- prune") {
		t.Fatalf("apply DIR/c0.yaml: exit %d\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
	}
	// The directory is the whole desired state: it prunes "one".
	res = h.run("plan")
	if res.code != 2 || !strings.Contains(res.stdout, "Whole manifest directory") || !strings.Contains(res.stdout, "- prune container one") {
		t.Fatalf("plan of the directory: exit %d\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
	}
}
