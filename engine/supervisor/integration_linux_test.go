package supervisor

import (
	"context"
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

// childPid returns the first child of pid: the Linux driver's command is a
// shim whose child is the container's command (nsenter --no-fork execs it).
// Children are listed per thread (/proc/PID/task/TID/children), and the shim
// forks from the thread it locked for setns, which need not be the main
// one: reading only the main thread's list is what failed as "process has
// no child" when the Go scheduler had moved the shim's main goroutine.
func childPid(t *testing.T, pid int) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		lists, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/children")
		for _, l := range lists {
			b, _ := os.ReadFile(l)
			if f := strings.Fields(string(b)); len(f) > 0 {
				n, _ := strconv.Atoi(f[0])
				return n
			}
		}
		time.Sleep(10 * time.Millisecond) // polling step under the deadline
	}
	t.Fatalf("process %d has no child", pid)
	return 0
}

// A busybox container supervised through the real Linux driver: its output
// reaches the log, a SIGKILLed command restarts, a failing and a passing
// health check are seen, and stop leaves no jail.
func TestLinuxDriverIntegration(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireTool(t, "nsenter", "util-linux")
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

	// SIGKILL the container's command (the shim's child, inside the jail).
	cmdPid := childPid(t, st.PID)
	if err := syscall.Kill(cmdPid, syscall.SIGKILL); err != nil {
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
	infos, err := driver.List(context.Background())
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
