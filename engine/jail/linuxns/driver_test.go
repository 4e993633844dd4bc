//go:build linux

package linuxns

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/engine/jail"
	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
	"github.com/zocker-reconcile/zocker-reconcile/internal/testenv"
)

// creatorEnv makes the test binary act as a short-lived process that creates
// a jail and then waits to be killed (TestLinuxSurvivesCreator).
const creatorEnv = "ZOCKER_JAIL_TEST_CREATOR"

// selfEnv, when set, names a zocker-reconcile binary whose hidden
// subcommand serves as the init and exec shim instead of this test binary:
// ZOCKER_JAIL_TEST_BINARY=$PWD/zocker-reconcile go test ./engine/jail/
// checks the production wiring.
const selfEnv = "ZOCKER_JAIL_TEST_BINARY"

func testSelf() []string {
	if b := os.Getenv(selfEnv); b != "" {
		return []string{b, InitCommand}
	}
	return []string{os.Args[0], InitCommand}
}

func TestMain(m *testing.M) {
	// The driver re-executes this test binary as its init and exec shim.
	if len(os.Args) > 1 && os.Args[1] == InitCommand {
		os.Exit(HelperMain(os.Args[2:]))
	}
	if v := os.Getenv(creatorEnv); v != "" {
		os.Exit(runCreator(v))
	}
	if os.Getenv(exitBySignalEnv) != "" {
		os.Exit(runExitBySignal())
	}
	os.Exit(m.Run())
}

func runCreator(v string) int {
	parts := strings.SplitN(v, "|", 3)
	if len(parts) != 3 {
		return 2
	}
	d := New(parts[0], testSelf(), &runner.Exec{}, nil)
	if err := d.Create(context.Background(), jail.Spec{Name: parts[2], Root: parts[1], Network: jail.Network{Mode: jail.NetNone}}); err != nil {
		fmt.Println("error:", err)
		return 1
	}
	fmt.Println("created")
	select {} // until the test kills us
}

func newTestDriver(t testing.TB) *Driver {
	t.Helper()
	testenv.RequireRoot(t)
	return New(t.TempDir(), testSelf(), &runner.Exec{}, nil)
}

// testRoot returns a private copy of the busybox root filesystem.
func testRoot(t testing.TB) string {
	t.Helper()
	src := testenv.BusyboxRootfs(t)
	dst := filepath.Join(t.TempDir(), "root")
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("copy rootfs: %v: %s", err, out)
	}
	return dst
}

func create(t testing.TB, d *Driver, s jail.Spec) {
	t.Helper()
	if err := d.Create(context.Background(), s); err != nil {
		t.Fatalf("Create: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Remove(context.Background(), s.Name); err != nil {
			t.Errorf("Remove: %v", err)
		}
	})
}

// run runs p in the jail and returns its combined output and exit code.
func run(t testing.TB, d *Driver, name string, p jail.Process) (string, int) {
	t.Helper()
	cmd, err := d.Command(name, p)
	if err != nil {
		t.Fatalf("Command %v: %v", p.Argv, err)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run %v: %v", p.Argv, err)
	}
	return out.String(), cmd.ProcessState.ExitCode()
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestLinuxInheritHTTP(t *testing.T) {
	d := newTestDriver(t)
	root := testRoot(t)
	if err := os.WriteFile(filepath.Join(root, "var/www/index.html"), []byte("hello from the jail\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	create(t, d, jail.Spec{Name: "web", Root: root, Network: jail.Network{Mode: jail.NetInherit}})
	port := freePort(t)
	cmd, err := d.Command("web", jail.Process{Argv: []string{"httpd", "-f", "-p", fmt.Sprintf("127.0.0.1:%d", port), "-h", "/var/www"}, User: "www"})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// SIGTERM reaches httpd through the shim; SIGKILL would kill only the shim.
	cmd.WaitDelay = 5 * time.Second
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	url := fmt.Sprintf("http://127.0.0.1:%d/index.html", port)
	var body []byte
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := client.Get(url)
		if err == nil {
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("GET %s: %s", url, resp.Status)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v (httpd output: %s)", url, err, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if string(body) != "hello from the jail\n" {
		t.Fatalf("body = %q", body)
	}
}

func TestLinuxNoneSeesOnlyLoopback(t *testing.T) {
	d := newTestDriver(t)
	root := testRoot(t)
	create(t, d, jail.Spec{Name: "isolated", Root: root, Network: jail.Network{Mode: jail.NetNone}})
	out, code := run(t, d, "isolated", jail.Process{Argv: []string{"cat", "/proc/net/dev"}})
	if code != 0 {
		t.Fatalf("cat /proc/net/dev: exit %d: %s", code, out)
	}
	var ifaces []string
	for _, line := range strings.Split(out, "\n") {
		if name, _, ok := strings.Cut(line, ":"); ok && !strings.Contains(name, "|") {
			ifaces = append(ifaces, strings.TrimSpace(name))
		}
	}
	if !slices.Equal(ifaces, []string{"lo"}) {
		t.Fatalf("interfaces = %v, want only lo:\n%s", ifaces, out)
	}
	out, _ = run(t, d, "isolated", jail.Process{Argv: []string{"ip", "link", "show", "lo"}})
	if !strings.Contains(out, "UP") {
		t.Fatalf("lo is not up: %s", out)
	}
	// Loopback works, the host's does not leak in.
	out, code = run(t, d, "isolated", jail.Process{Argv: []string{"ping", "-c", "1", "-W", "2", "127.0.0.1"}})
	if code != 0 {
		t.Fatalf("ping 127.0.0.1 inside: exit %d: %s", code, out)
	}
}

func TestLinuxVolumes(t *testing.T) {
	d := newTestDriver(t)
	root := testRoot(t)
	ro, rw := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(ro, "data"), []byte("ro data\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	create(t, d, jail.Spec{Name: "vols", Root: root, Network: jail.Network{Mode: jail.NetNone}, Mounts: []jail.Mount{
		{Source: ro, Target: "/srv/ro", ReadOnly: true},
		{Source: rw, Target: "/srv/rw"},
	}})
	out, code := run(t, d, "vols", jail.Process{Argv: []string{"cat", "/srv/ro/data"}})
	if code != 0 || out != "ro data\n" {
		t.Fatalf("read ro volume: exit %d: %q", code, out)
	}
	out, code = run(t, d, "vols", jail.Process{Argv: []string{"sh", "-c", "echo x > /srv/ro/new"}})
	if code == 0 {
		t.Fatalf("write to read-only volume succeeded: %s", out)
	}
	if !strings.Contains(out, "Read-only file system") {
		t.Errorf("write to ro volume: want EROFS, got %q", out)
	}
	if _, err := os.Stat(filepath.Join(ro, "new")); err == nil {
		t.Fatal("file written through the read-only volume exists on the host")
	}
	out, code = run(t, d, "vols", jail.Process{Argv: []string{"sh", "-c", "echo written inside > /srv/rw/new"}})
	if code != 0 {
		t.Fatalf("write to rw volume: exit %d: %s", code, out)
	}
	b, err := os.ReadFile(filepath.Join(rw, "new"))
	if err != nil || string(b) != "written inside\n" {
		t.Fatalf("host sees %q, %v", b, err)
	}
}

func TestLinuxIdentity(t *testing.T) {
	d := newTestDriver(t)
	root := testRoot(t)
	t.Setenv("ZOCKER_HOST_ONLY", "leak")
	create(t, d, jail.Spec{Name: "ident", Root: root, Hostname: "web-1", Network: jail.Network{Mode: jail.NetLoopback}})
	out, code := run(t, d, "ident", jail.Process{
		Argv:    []string{"sh", "-c", "hostname; id -u; id -g; pwd; env"},
		Env:     []string{"GREETING=hello world", "TZ=UTC"},
		User:    "www",
		Workdir: "/var/www",
	})
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	lines := strings.Split(out, "\n")
	if len(lines) < 4 || lines[0] != "web-1" || lines[1] != "80" || lines[2] != "80" || lines[3] != "/var/www" {
		t.Fatalf("hostname/uid/gid/pwd = %q", lines)
	}
	env := lines[4:]
	for _, want := range []string{"GREETING=hello world", "TZ=UTC", defaultPath} {
		if !slices.Contains(env, want) {
			t.Errorf("env lacks %q: %q", want, env)
		}
	}
	if strings.Contains(out, "ZOCKER_HOST_ONLY") {
		t.Errorf("host environment leaked in: %s", out)
	}
	// The jail's resolv.conf is the host's.
	if host, err := os.ReadFile("/etc/resolv.conf"); err == nil {
		out, _ := run(t, d, "ident", jail.Process{Argv: []string{"cat", "/etc/resolv.conf"}})
		if out != string(host) {
			t.Errorf("resolv.conf inside = %q, host %q", out, host)
		}
	}
	// A numeric user needs no passwd entry; a missing name is an error.
	out, _ = run(t, d, "ident", jail.Process{Argv: []string{"id", "-u"}, User: "4242"})
	if strings.TrimSpace(out) != "4242" {
		t.Errorf("numeric user: id -u = %q", out)
	}
	if _, err := d.Command("ident", jail.Process{Argv: []string{"id"}, User: "nosuchuser"}); err == nil {
		t.Error("unknown user accepted")
	}
	// The command is pid-namespaced: the init is pid 1.
	out, _ = run(t, d, "ident", jail.Process{Argv: []string{"cat", "/proc/1/cmdline"}})
	if !strings.Contains(out, InitCommand) {
		t.Errorf("pid 1 inside is %q, want the init", out)
	}
}

func TestLinuxExitCodesAndSignals(t *testing.T) {
	d := newTestDriver(t)
	create(t, d, jail.Spec{Name: "codes", Root: testRoot(t), Network: jail.Network{Mode: jail.NetNone}})
	if _, code := run(t, d, "codes", jail.Process{Argv: []string{"sh", "-c", "exit 3"}}); code != 3 {
		t.Errorf("exit 3: got %d", code)
	}
	if out, code := run(t, d, "codes", jail.Process{Argv: []string{"/no/such/command"}}); code != 127 {
		t.Errorf("missing command: exit %d, want 127: %s", code, out)
	}
	// A SIGTERM that reaches the shim before its command started, and one
	// that reaches it while the command runs: either way the caller sees
	// the command killed by SIGTERM, and nothing is left running.
	for _, early := range []bool{true, false} {
		argv := []string{"sleep", "100123"}
		cmd, err := d.Command("codes", jail.Process{Argv: argv})
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if !early {
			waitProcess(t, argv, true)
		}
		start := time.Now()
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
		if !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
			t.Errorf("SIGTERM (before the command started: %v): %v, want killed by SIGTERM", early, cmd.ProcessState)
		}
		if time.Since(start) > 5*time.Second {
			t.Errorf("SIGTERM took %s to reach the command", time.Since(start))
		}
		waitProcess(t, argv, false)
	}
}

// waitProcess waits until a process runs argv (running true) or none does,
// with a deadline: the observable state a signal test synchronises on.
func waitProcess(t *testing.T, argv []string, running bool) {
	t.Helper()
	if running {
		waitProcesses(t, argv, 1)
		return
	}
	waitProcesses(t, argv, 0)
}

// waitProcesses waits until exactly n processes run argv, with a deadline.
func waitProcesses(t *testing.T, argv []string, n int) {
	t.Helper()
	want := strings.Join(argv, "\x00") + "\x00"
	deadline := time.Now().Add(20 * time.Second)
	for {
		found := 0
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			if b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); err == nil && string(b) == want {
				found++
			}
		}
		if found == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d processes run %q, want %d", found, argv, n)
		}
		time.Sleep(10 * time.Millisecond) // polling step under the deadline
	}
}

// The shim ends by the command's signal even when the runtime has other
// threads that could take a process-directed signal (the cause of "exit
// status 143, want killed by SIGTERM" under load).
func TestExitBySignal(t *testing.T) {
	for i := range 20 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), exitBySignalEnv+"=1")
		err := cmd.Run()
		ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
		if !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
			t.Fatalf("run %d: %v (%v), want killed by SIGTERM", i, cmd.ProcessState, err)
		}
	}
}

// exitBySignalEnv makes the test binary call reraise(SIGTERM) while other
// threads are busy, as the jail's init does for its command.
const exitBySignalEnv = "ZOCKER_JAIL_TEST_EXIT_BY_SIGNAL"

func runExitBySignal() int {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM) // the shim forwards SIGTERM until its command ends
	for range 4 {
		go func() {
			for {
				runtime.Gosched()
			}
		}()
	}
	reraise(syscall.SIGTERM)
	return 128 + int(syscall.SIGTERM) // reached only if SIGTERM could not kill
}

func mountinfo(t testing.TB) string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// jailInits lists the pids of live jail inits started from this test binary.
func jailInits(t testing.TB) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if string(b) == strings.Join(append(testSelf(), "init"), "\x00")+"\x00" {
			if _, err := procStartTime(pid); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

func assertNothingLeft(t *testing.T, d *Driver, name, root string, before []int) {
	t.Helper()
	if mi := mountinfo(t); strings.Contains(mi, root) {
		t.Errorf("host mount table mentions %s:\n%s", root, mi)
	}
	if inits := jailInits(t); !slices.Equal(inits, before) {
		t.Errorf("jail inits = %v, before %v", inits, before)
	}
	for _, f := range []string{d.pidFile(name), d.stateFile(name)} {
		if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s remains (%v)", f, err)
		}
	}
	if l, err := d.List(context.Background()); err != nil || len(l) != 0 {
		t.Errorf("List = %v, %v", l, err)
	}
}

// TestSecurityInitHoldsNoCgroupFiles: the Go runtime keeps the cgroup CPU
// files it reads at start-up open unless told not to; in the jail's init
// they were host cgroup files that root in the jail could reopen through
// /proc/1/fd (read checked by hand; access(2) said writable too).
func TestSecurityInitHoldsNoCgroupFiles(t *testing.T) {
	d := newTestDriver(t)
	create(t, d, jail.Spec{Name: "fds", Root: testRoot(t), Network: jail.Network{Mode: jail.NetNone}})
	st, alive := d.load("fds")
	if !alive {
		t.Fatal("no init")
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", st.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", st.Pid, fd.Name()))
		switch filepath.Base(target) {
		case "cpu.max", "cpu.cfs_quota_us", "cpu.cfs_period_us":
			t.Errorf("the jail's init holds %s as fd %s", target, fd.Name())
		}
	}
}

func TestLinuxMissingHostPath(t *testing.T) {
	d := newTestDriver(t)
	root := testRoot(t)
	before := jailInits(t)
	err := d.Create(context.Background(), jail.Spec{Name: "bad", Root: root, Mounts: []jail.Mount{
		{Source: "/nonexistent/zocker-test-dir", Target: "/data"},
	}})
	if err == nil || !strings.Contains(err.Error(), "volume source /nonexistent/zocker-test-dir does not exist") {
		t.Fatalf("Create: %v, want a clear missing volume error", err)
	}
	assertNothingLeft(t, d, "bad", root, before)

	// A failure inside the init (the mount point crosses a regular file)
	// comes back with the init's message and leaves nothing either.
	err = d.Create(context.Background(), jail.Spec{Name: "bad", Root: root, Mounts: []jail.Mount{
		{Source: t.TempDir(), Target: "/etc/passwd/sub"},
	}})
	if err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("Create: %v, want the init's not a directory error", err)
	}
	// The failed init is reaped by a goroutine: wait until it is gone.
	deadline := time.Now().Add(10 * time.Second)
	for !slices.Equal(jailInits(t), before) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // polling step under the deadline
	}
	assertNothingLeft(t, d, "bad", root, before)
}

func TestLinuxRemoveLeavesNothing(t *testing.T) {
	d := newTestDriver(t)
	root := testRoot(t)
	vol := t.TempDir()
	before := jailInits(t)
	if err := d.Create(context.Background(), jail.Spec{Name: "gone", Root: root, Mounts: []jail.Mount{{Source: vol, Target: "/data"}},
		Limits: jail.Limits{MaxProcesses: 50}}); err != nil {
		t.Fatal(err)
	}
	if err := d.Create(context.Background(), jail.Spec{Name: "gone", Root: root}); err == nil {
		t.Error("second Create of a running jail succeeded")
	}
	list, err := d.List(context.Background())
	if err != nil || len(list) != 1 || list[0].Name != "gone" || list[0].Path != root || list[0].Hostname != "gone" {
		t.Fatalf("List = %+v, %v", list, err)
	}
	st, _ := d.load("gone")
	cmd, err := d.Command("gone", jail.Process{Argv: []string{"sh", "-c", "sleep 1000417 & sleep 1000417"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	waitProcesses(t, []string{"sleep", "1000417"}, 2) // both run in the jail
	if err := d.Remove(context.Background(), "gone"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-waited:
	case <-time.After(5 * time.Second):
		t.Fatal("the jail's command survived Remove")
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", st.Pid)); !errors.Is(err, os.ErrNotExist) {
		if start, err := procStartTime(st.Pid); err == nil && start == st.StartTime {
			t.Errorf("init %d still runs", st.Pid)
		}
	}
	// Its creator (this process) reaps it: no zombie stays behind.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", st.Pid)); errors.Is(err, os.ErrNotExist) {
			break
		}
		time.Sleep(10 * time.Millisecond) // polling step under the deadline
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", st.Pid)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("init %d was not reaped", st.Pid)
	}
	for _, c := range st.Cgroups {
		if _, err := os.Stat(c); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cgroup %s remains", c)
		}
	}
	assertNothingLeft(t, d, "gone", root, before)
	if err := d.Remove(context.Background(), "gone"); err != nil {
		t.Errorf("second Remove: %v", err)
	}
	if _, err := d.Command("gone", jail.Process{Argv: []string{"true"}}); !errors.Is(err, jail.ErrNotFound) {
		t.Errorf("Command after Remove: %v, want jail.ErrNotFound", err)
	}
}

func TestLinuxSurvivesCreator(t *testing.T) {
	d := newTestDriver(t)
	root := testRoot(t)
	creator := exec.Command(os.Args[0])
	creator.Env = append(os.Environ(), creatorEnv+"="+d.stateDir+"|"+root+"|orphan")
	stdout, err := creator.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := creator.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "created" {
		_ = creator.Process.Kill()
		_ = creator.Wait()
		t.Fatalf("creator said %q", line)
	}
	t.Cleanup(func() { _ = d.Remove(context.Background(), "orphan") })
	if err := creator.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = creator.Wait()
	list, err := d.List(context.Background())
	if err != nil || len(list) != 1 || list[0].Name != "orphan" {
		t.Fatalf("after the creator's death, List = %+v, %v", list, err)
	}
	if out, code := run(t, d, "orphan", jail.Process{Argv: []string{"echo", "alive"}}); code != 0 || out != "alive\n" {
		t.Fatalf("exec in the orphaned jail: exit %d: %q", code, out)
	}
	// Still there after the exec: nothing was about to take the init down
	// with its creator.
	if list, err := d.List(context.Background()); err != nil || len(list) != 1 {
		t.Fatalf("after an exec in the orphaned jail, List = %+v, %v", list, err)
	}
}

func TestLinuxLimits(t *testing.T) {
	d := newTestDriver(t)
	ok, why := d.LimitsEnforced()
	testenv.Require(t, ok, "limits not enforced on this host: %s", why)
	create(t, d, jail.Spec{Name: "limited", Root: testRoot(t), Network: jail.Network{Mode: jail.NetNone},
		Limits: jail.Limits{MemoryBytes: 64 << 20, MaxProcesses: 8, CPUPercent: 50}})
	st, _ := d.load("limited")
	want := map[string]string{"pids.max": "8", "memory.limit_in_bytes": strconv.Itoa(64 << 20), "cpu.cfs_quota_us": "50000"}
	found := 0
	for _, dir := range st.Cgroups {
		for file, v := range want {
			if b, err := os.ReadFile(filepath.Join(dir, file)); err == nil {
				found++
				if strings.TrimSpace(string(b)) != v {
					t.Errorf("%s/%s = %q, want %s", dir, file, b, v)
				}
			}
		}
	}
	if found != len(want) {
		t.Errorf("found %d of %d limit files in %v", found, len(want), st.Cgroups)
	}
	// Commands run in the jail's cgroup: 7 processes fit (the init does
	// not count), forking past maxProcesses fails.
	if out, code := run(t, d, "limited", jail.Process{Argv: []string{"sh", "-c", "for i in 1 2 3 4 5 6; do sleep 1 & done; wait"}}); code != 0 {
		t.Errorf("7 processes under maxProcesses 8: exit %d: %q", code, out)
	}
	out, _ := run(t, d, "limited", jail.Process{Argv: []string{"sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 1 & done; wait"}})
	t.Logf("output under maxProcesses 8: %q", out)
	if !strings.Contains(out, "fork") {
		t.Errorf("12 processes under maxProcesses 8 all started: %q", out)
	}
}

func TestResolveInStaysInside(t *testing.T) {
	root := t.TempDir()
	for _, dir := range []string{"real/sub", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{"abs": "/real", "up": "../../../../..", "etcp": "/etc/passwd", "loop": "loop"}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"/abs/sub", "real/sub"},
		{"/up", ""},
		{"/up/etc", "etc"},
		{"/../../etc", "etc"},
		{"/abs/../etc", "etc"},
	} {
		got, err := resolveIn(root, tc.in, false)
		if err != nil || got != filepath.Join(root, tc.want) {
			t.Errorf("resolveIn(%s) = %q, %v; want %q", tc.in, got, err, filepath.Join(root, tc.want))
		}
	}
	if _, err := resolveIn(root, "/etcp", false); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("link to the host's /etc/passwd: %v, want not exist inside the root", err)
	}
	if _, err := resolveIn(root, "/loop/x", false); !errors.Is(err, syscall.ELOOP) {
		t.Errorf("symlink loop: %v, want ELOOP", err)
	}
	got, err := resolveIn(root, "/up/new/dir", true)
	if err != nil || got != filepath.Join(root, "new/dir") {
		t.Fatalf("mkdir through up: %q, %v", got, err)
	}
	if fi, err := os.Stat(got); err != nil || !fi.IsDir() {
		t.Fatalf("not created: %v", err)
	}
}

func TestLookupUser(t *testing.T) {
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(root, "etc", name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("passwd", "# comment\nroot:x:0:0::/root:/bin/sh\nwww:x:80:81::/var/www:/bin/sh\n")
	write("group", "root:x:0:\nwww:x:81:\nstaff:x:50:\n")
	for _, tc := range []struct {
		user     string
		uid, gid int
		err      bool
	}{
		{"", 0, 0, false},
		{"www", 80, 81, false},
		{"80", 80, 81, false},
		{"1000", 1000, 0, false},
		{"www:staff", 80, 50, false},
		{"www:7", 80, 7, false},
		{"nobody", 0, 0, true},
		{"www:nogroup", 0, 0, true},
	} {
		uid, gid, err := lookupUser(root, tc.user)
		if (err != nil) != tc.err || (!tc.err && (uid != tc.uid || gid != tc.gid)) {
			t.Errorf("lookupUser(%q) = %d, %d, %v", tc.user, uid, gid, err)
		}
	}
}

// BenchmarkStart measures a container start: Create, the first Command of
// /bin/true run to completion, and Remove. Run it with -benchtime=50x for
// the p50/p95 over 50 starts.
func BenchmarkStart(b *testing.B) {
	d := newTestDriver(b)
	root := testRoot(b)
	var creates, starts, totals []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if err := d.Create(context.Background(), jail.Spec{Name: "bench", Root: root, Network: jail.Network{Mode: jail.NetNone}}); err != nil {
			b.Fatal(err)
		}
		creates = append(creates, time.Since(t0))
		cmd, err := d.Command("bench", jail.Process{Argv: []string{"/bin/true"}})
		if err != nil {
			b.Fatal(err)
		}
		if err := cmd.Run(); err != nil {
			b.Fatal(err)
		}
		starts = append(starts, time.Since(t0))
		if err := d.Remove(context.Background(), "bench"); err != nil {
			b.Fatal(err)
		}
		totals = append(totals, time.Since(t0))
	}
	b.StopTimer()
	pct := func(ds []time.Duration, p float64) float64 {
		s := slices.Clone(ds)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		return float64(s[int(float64(len(s)-1)*p)].Microseconds()) / 1000
	}
	b.ReportMetric(pct(creates, 0.50), "create-p50-ms")
	b.ReportMetric(pct(starts, 0.50), "start-p50-ms")
	b.ReportMetric(pct(starts, 0.95), "start-p95-ms")
	b.ReportMetric(pct(totals, 0.50), "start+remove-p50-ms")
	b.ReportMetric(pct(totals, 0.95), "start+remove-p95-ms")
}

func TestLinuxRejectsBadSpecs(t *testing.T) {
	d := New(t.TempDir(), testSelf(), &runner.Exec{}, nil)
	root := t.TempDir()
	for _, tc := range []struct {
		spec jail.Spec
		want string
	}{
		{jail.Spec{Name: "a/b", Root: root}, `invalid name "a/b"`},
		{jail.Spec{Name: "rel", Root: "relative/root"}, "is not an absolute path"},
		{jail.Spec{Name: "nort", Root: filepath.Join(root, "missing")}, "no such file or directory"},
		{jail.Spec{Name: "alias", Root: root, Network: jail.Network{Mode: jail.NetAlias}}, "network mode alias is not supported by the Linux driver yet"},
		{jail.Spec{Name: "relmount", Root: root, Mounts: []jail.Mount{{Source: "data", Target: "/data"}}}, "paths must be absolute"},
	} {
		err := d.Create(context.Background(), tc.spec)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Create(%+v) = %v, want %q", tc.spec, err, tc.want)
		}
	}
	if l, err := d.List(context.Background()); err != nil || len(l) != 0 {
		t.Errorf("List after rejected specs = %v, %v", l, err)
	}
	if err := d.Remove(context.Background(), "never-created"); err != nil {
		t.Errorf("Remove of an unknown jail: %v", err)
	}
}
