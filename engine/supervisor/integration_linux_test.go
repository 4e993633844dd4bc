package supervisor

import (
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

	"github.com/zocker-reconcile/zocker-reconcile/engine/jail"
	"github.com/zocker-reconcile/zocker-reconcile/engine/jail/linuxns"
	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
	"github.com/zocker-reconcile/zocker-reconcile/internal/testenv"
	"golang.org/x/sys/unix"
)

// The real Linux driver re-executes the test binary as its jail init and
// exec shim, and a supervisor using it as "__supervise-linux".
func init() {
	helpers[linuxns.InitCommand] = linuxns.HelperMain
	helpers["__supervise-linux"] = func(args []string) int {
		return superviseMain(args[0], args[1], linuxDriver(args[0]))
	}
}

func linuxDriver(stateDir string) *linuxns.Driver {
	exe, _ := os.Executable()
	return linuxns.New(stateDir, []string{exe, linuxns.InitCommand}, &runner.Exec{}, nil)
}

// parentPid returns the parent of pid (PPid in /proc/PID/status).
func parentPid(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatalf("process %d: %v", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "PPid:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	t.Fatalf("process %d: no PPid", pid)
	return 0
}

// A busybox container supervised through the real Linux driver: its output
// reaches the log, a SIGKILLed command restarts, a failing and a passing
// health check are seen, and stop leaves no jail.
func TestLinuxDriverIntegration(t *testing.T) {
	testenv.RequireRoot(t)
	src := testenv.BusyboxRootfs(t)
	root := filepath.Join(t.TempDir(), "rootfs")
	if out, err := exec.Command("cp", "-a", src, root).CombinedOutput(); err != nil {
		t.Fatalf("copy rootfs: %v: %s", err, out)
	}
	stateDir := t.TempDir()
	cfg := testConfig("/bin/sh", "-c", `echo "host=$(hostname) greeting=$GREETING"; exec sleep 600`)
	cfg.Jail = jail.Spec{Name: "c1", Root: root, Hostname: "boxy", Network: jail.Network{Mode: jail.NetNone}}
	cfg.Process.Env = []string{"PATH=/bin", "GREETING=hello"}
	cfg.Healthcheck = &Healthcheck{
		Argv: []string{"/bin/sh", "-c", "test -f /tmp/ok"}, Interval: Duration(100 * time.Millisecond),
		Timeout: Duration(2 * time.Second), Retries: 2,
	}
	exe, _ := os.Executable()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pid, err := Start(ctx, stateDir, "c1", []string{exe, "__supervise-linux"}, cfg)
	if err != nil {
		t.Fatalf("Start: %v\n%s", err, readFile(supervisorLogPath(stateDir, "c1")))
	}
	driver := linuxDriver(stateDir)
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			if err := Stop(context.Background(), stateDir, "c1", driver); err != nil {
				t.Errorf("cleanup: %v", err)
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		if t.Failed() {
			t.Logf("supervisor.log:\n%s", readFile(supervisorLogPath(stateDir, "c1")))
		}
	})

	waitLog(t, stateDir, "stdout host=boxy greeting=hello")
	waitLogCount := func(n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			lines, _ := Tail(LogPath(stateDir, "c1"), 0)
			c := 0
			for _, l := range lines {
				if strings.Contains(l, "host=boxy") {
					c++
				}
			}
			if c >= n {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("the command did not print %d times", n)
	}
	st := waitStatus(t, stateDir, "c1", 5*time.Second, "unhealthy", func(s Status) bool { return s.Health.Status == HealthUnhealthy })
	if err := os.WriteFile(filepath.Join(root, "tmp", "ok"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	st = waitStatus(t, stateDir, "c1", 5*time.Second, "healthy", func(s Status) bool { return s.Health.Status == HealthHealthy })

	// The container is the supervisor and the jail's init: the command is
	// the init's child, with no shim between.
	infos, err := driver.List(context.Background())
	if err != nil || len(infos) != 1 {
		t.Fatalf("List = %v, %v", infos, err)
	}
	if pp := parentPid(t, st.PID); pp != infos[0].JID {
		t.Errorf("the command %d is the child of %d, want the jail's init %d", st.PID, pp, infos[0].JID)
	}
	if pp := parentPid(t, infos[0].JID); pp != pid {
		t.Errorf("the jail's init %d is the child of %d, want the supervisor %d", infos[0].JID, pp, pid)
	}
	// SIGKILL the container's command.
	if err := syscall.Kill(st.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	st = waitStatus(t, stateDir, "c1", 10*time.Second, "restarted", func(s Status) bool { return s.Restarts == 1 && s.State == StateRunning })
	if st.LastExitCode != 137 {
		t.Errorf("exit code after SIGKILL = %d, want 137", st.LastExitCode)
	}
	waitLogCount(2)

	if err := Stop(context.Background(), stateDir, "c1", driver); err != nil {
		t.Fatal(err)
	}
	stopped = true
	infos, err = driver.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range infos {
		if i.Name == "c1" {
			t.Errorf("jail c1 remains after stop: %+v", i)
		}
	}
	if st, _ := Get(stateDir, "c1"); st.State != StateStopped || st.Alive {
		t.Errorf("after stop: %+v", st)
	}
}

// TestSecurityInheritedDescriptorsStayOnHost: a descriptor the supervisor's
// starter left open without close-on-exec (an administrator's shell, rc.d)
// must not reach the jail's init or the container's command, and the
// supervisor closes it too. Before CloseInherited every process of the
// container held it: a host pipe in untrusted hands.
func TestSecurityInheritedDescriptorsStayOnHost(t *testing.T) {
	testenv.RequireRoot(t)
	src := testenv.BusyboxRootfs(t)
	root := filepath.Join(t.TempDir(), "rootfs")
	if out, err := exec.Command("cp", "-a", src, root).CombinedOutput(); err != nil {
		t.Fatalf("copy rootfs: %v: %s", err, out)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if _, err := unix.FcntlInt(w.Fd(), unix.F_SETFD, 0); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(w.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	leak := fmt.Sprintf("pipe:[%d]", st.Ino)

	stateDir := t.TempDir()
	cfg := testConfig("/bin/sleep", "600")
	cfg.Name = "fd1"
	cfg.Jail = jail.Spec{Name: "fd1", Root: root, Network: jail.Network{Mode: jail.NetNone}}
	exe, _ := os.Executable()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pid, err := Start(ctx, stateDir, "fd1", []string{exe, "__supervise-linux"}, cfg)
	if err != nil {
		t.Fatalf("Start: %v\n%s", err, readFile(supervisorLogPath(stateDir, "fd1")))
	}
	t.Cleanup(func() {
		if err := Stop(context.Background(), stateDir, "fd1", linuxDriver(stateDir)); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	running := waitStatus(t, stateDir, "fd1", 10*time.Second, "running", func(s Status) bool { return s.State == StateRunning && s.PID > 0 })
	procs := map[string]int{"supervisor": pid, "jail init": parentPid(t, running.PID), "command": running.PID}
	for what, p := range procs {
		fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p))
		if err != nil {
			t.Fatalf("%s %d: %v", what, p, err)
		}
		for _, fd := range fds {
			if target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", p, fd.Name())); target == leak {
				t.Errorf("the %s (pid %d) holds the test process's %s as fd %s", what, p, leak, fd.Name())
			}
		}
	}
}
