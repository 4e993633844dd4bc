package supervisor

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
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
)

func TestSIGKILLRestartsWithBackoff(t *testing.T) {
	stateDir, _ := startTest(t, testConfig("/bin/sleep", "60"))
	st := waitStatus(t, stateDir, "c1", 5*time.Second, "running", func(s Status) bool { return s.State == StateRunning && s.PID > 0 })
	var delays []time.Duration
	for i := 1; i <= 3; i++ {
		first := st.PID
		if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		bo := waitStatus(t, stateDir, "c1", 5*time.Second, "backoff", func(s Status) bool {
			return s.State == StateBackoff || (s.State == StateRunning && s.PID != first)
		})
		if bo.State == StateBackoff {
			if bo.LastExitCode != 137 || bo.LastSignal != "SIGKILL" {
				t.Errorf("kill %d: exit %d signal %q, want 137 SIGKILL", i, bo.LastExitCode, bo.LastSignal)
			}
			delays = append(delays, bo.NextStartAt.Sub(bo.LastExitAt))
		}
		st = waitStatus(t, stateDir, "c1", 5*time.Second, "restarted", func(s Status) bool {
			return s.State == StateRunning && s.PID > 0 && s.PID != first
		})
		if st.Restarts != i {
			t.Errorf("after kill %d: restarts = %d", i, st.Restarts)
		}
		if !waitGone(first) {
			t.Errorf("killed pid %d still exists", first)
		}
	}
	// 150ms doubling: 150, 300, 600 (the cap).
	if len(delays) != 3 {
		t.Fatalf("saw %d backoff states, want 3", len(delays))
	}
	want := []time.Duration{150 * time.Millisecond, 300 * time.Millisecond, 600 * time.Millisecond}
	for i := range want {
		if d := delays[i] - want[i]; d < 0 || d > 100*time.Millisecond {
			t.Errorf("backoff %d = %s, want about %s", i+1, delays[i], want[i])
		}
	}
}

func TestBackoffCapAndReset(t *testing.T) {
	cfg := testConfig("/bin/sh", "-c", "exit 1")
	cfg.Backoff = Backoff{Initial: Duration(50 * time.Millisecond), Max: Duration(100 * time.Millisecond), Reset: Duration(time.Hour)}
	stateDir, _ := startTest(t, cfg)
	var seen []time.Duration
	last := -1
	deadline := time.Now().Add(5 * time.Second)
	for len(seen) < 4 && time.Now().Before(deadline) {
		st, err := Get(stateDir, "c1")
		if err == nil && st.State == StateBackoff && st.Restarts != last {
			last = st.Restarts
			seen = append(seen, st.NextStartAt.Sub(st.LastExitAt))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if len(seen) < 4 {
		t.Fatalf("saw backoffs %v", seen)
	}
	// NextStartAt is computed just after LastExitAt: allow for that moment.
	for i, want := range []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 100 * time.Millisecond, 100 * time.Millisecond} {
		if d := seen[i] - want; d < 0 || d > 40*time.Millisecond {
			t.Errorf("backoffs %v, want 50ms 100ms 100ms 100ms", seen)
			break
		}
	}

	// A command that ran for Reset or longer restarts after Initial again.
	cfg = testConfig("/bin/sh", "-c", "sleep 0.3; exit 1")
	cfg.Backoff = Backoff{Initial: Duration(50 * time.Millisecond), Max: Duration(time.Second), Reset: Duration(200 * time.Millisecond)}
	stateDir, _ = startTest(t, cfg)
	for i := 0; i < 3; i++ {
		st := waitStatus(t, stateDir, "c1", 5*time.Second, "backoff "+strconv.Itoa(i), func(s Status) bool {
			return s.State == StateBackoff && s.Restarts == i
		})
		if d := st.NextStartAt.Sub(st.LastExitAt); d > 80*time.Millisecond {
			t.Errorf("backoff after a long run = %s, want the initial 50ms", d)
		}
	}
}

func TestOnFailure(t *testing.T) {
	cfg := testConfig("/bin/sh", "-c", "exit 0")
	cfg.RestartPolicy = RestartOnFailure
	stateDir, _ := startTest(t, cfg)
	st := waitStatus(t, stateDir, "c1", 5*time.Second, "exited", func(s Status) bool { return s.State == StateExited })
	// Exited (not backoff, no next start) is the supervisor's decision not
	// to restart: it stays there until stopped.
	if st.LastExitCode != 0 || st.Restarts != 0 || !st.Alive || !st.NextStartAt.IsZero() {
		t.Errorf("exit 0 under OnFailure: %+v, want exited for good", st)
	}

	cfg = testConfig("/bin/sh", "-c", "exit 3")
	cfg.RestartPolicy = RestartOnFailure
	stateDir, _ = startTest(t, cfg)
	st = waitStatus(t, stateDir, "c1", 5*time.Second, "two restarts", func(s Status) bool { return s.Restarts >= 2 })
	if st.LastExitCode != 3 {
		t.Errorf("last exit code = %d, want 3", st.LastExitCode)
	}
}

func TestNeverRestarts(t *testing.T) {
	cfg := testConfig("/bin/sh", "-c", "echo bye; exit 5")
	cfg.RestartPolicy = RestartNever
	stateDir, _ := startTest(t, cfg)
	st := waitStatus(t, stateDir, "c1", 5*time.Second, "exited", func(s Status) bool { return s.State == StateExited })
	if st.State != StateExited || st.Restarts != 0 || st.LastExitCode != 5 || st.PID != 0 || !st.NextStartAt.IsZero() {
		t.Errorf("Never: %+v", st)
	}
	lines, err := Tail(LogPath(stateDir, "c1"), 10)
	if err != nil || len(lines) != 1 || !strings.HasSuffix(lines[0], " stdout bye") {
		t.Errorf("log = %q, %v", lines, err)
	}
}

func TestMissingCommandIs127AndBacksOff(t *testing.T) {
	stateDir, _ := startTest(t, testConfig("/nonexistent/zocker-cmd"))
	st := waitStatus(t, stateDir, "c1", 5*time.Second, "a crash loop", func(s Status) bool { return s.Restarts >= 2 })
	if st.LastExitCode != 127 {
		t.Errorf("exit code = %d, want 127", st.LastExitCode)
	}
	if !strings.Contains(st.Message, "/nonexistent/zocker-cmd") {
		t.Errorf("message %q does not name the command", st.Message)
	}
	st = waitStatus(t, stateDir, "c1", 5*time.Second, "backoff", func(s Status) bool { return s.State == StateBackoff })
	if st.NextStartAt.IsZero() {
		t.Errorf("backoff without a next start time: %+v", st)
	}
	lines, _ := Tail(LogPath(stateDir, "c1"), 1)
	if len(lines) != 1 || !strings.Contains(lines[0], " zocker start command of container c1") {
		t.Errorf("log does not record the start failure: %q", lines)
	}
}

func TestStopKillsAfterStopTimeout(t *testing.T) {
	cfg := testConfig("/bin/sh", "-c", `trap "" TERM; echo ready; while :; do sleep 0.05; done`)
	cfg.StopTimeout = Duration(time.Second)
	stateDir, pid := startTest(t, cfg)
	waitLog(t, stateDir, "ready")
	st, _ := Get(stateDir, "c1")
	begin := time.Now()
	if err := Stop(context.Background(), stateDir, "c1", newHostDriver(stateDir)); err != nil {
		t.Fatal(err)
	}
	took := time.Since(begin)
	if took < time.Second || took > 3*time.Second {
		t.Errorf("stop took %s, want the 1s stop timeout and a little", took)
	}
	after, err := Get(stateDir, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if after.State != StateStopped || after.Alive || after.LastSignal != "SIGKILL" || after.PID != 0 {
		t.Errorf("after stop: %+v", after)
	}
	if !waitGone(st.PID) || !waitGone(pid) {
		t.Errorf("command %d or supervisor %d still exists", st.PID, pid)
	}
	if newHostDriver(stateDir).exists("c1") {
		t.Error("the jail remains after stop")
	}
}

func TestStopSignalIsSentFirst(t *testing.T) {
	cfg := testConfig("/bin/sh", "-c", `trap "echo got-usr1; exit 0" USR1; echo ready; while :; do sleep 0.05; done`)
	cfg.StopSignal = "SIGUSR1"
	cfg.StopTimeout = Duration(5 * time.Second)
	stateDir, _ := startTest(t, cfg)
	waitLog(t, stateDir, "ready")
	begin := time.Now()
	if err := Stop(context.Background(), stateDir, "c1", newHostDriver(stateDir)); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(begin); took > 2*time.Second {
		t.Errorf("stop took %s: the stop signal did not end the command", took)
	}
	st, _ := Get(stateDir, "c1")
	if st.State != StateStopped || st.LastExitCode != 0 {
		t.Errorf("after stop: %+v", st)
	}
	waitLog(t, stateDir, "got-usr1")
}

func TestHealthCheck(t *testing.T) {
	flag := filepath.Join(t.TempDir(), "healthy")
	cfg := testConfig("/bin/sleep", "60")
	cfg.Healthcheck = &Healthcheck{
		Argv:     []string{"/bin/sh", "-c", `echo checking; test -f "$0"`, flag},
		Interval: Duration(100 * time.Millisecond),
		Timeout:  Duration(time.Second),
		Retries:  3,
	}
	stateDir, _ := startTest(t, cfg)
	st, _ := Get(stateDir, "c1")
	if st.Health.Status != HealthStarting && st.Health.FailingStreak == 0 {
		t.Errorf("health right after start = %q, want starting", st.Health.Status)
	}
	st = waitStatus(t, stateDir, "c1", 5*time.Second, "a failure", func(s Status) bool { return s.Health.FailingStreak >= 1 })
	if st.Health.FailingStreak < 3 && st.Health.Status != HealthStarting {
		t.Errorf("health %q after %d failures, want starting until 3", st.Health.Status, st.Health.FailingStreak)
	}
	st = waitStatus(t, stateDir, "c1", 5*time.Second, "unhealthy", func(s Status) bool { return s.Health.Status == HealthUnhealthy })
	if st.Health.FailingStreak < 3 || st.Health.LastExitCode != 1 || st.Health.LastOutput != "checking" {
		t.Errorf("unhealthy: %+v", st.Health)
	}
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	st = waitStatus(t, stateDir, "c1", 5*time.Second, "healthy", func(s Status) bool { return s.Health.Status == HealthHealthy })
	if st.Health.FailingStreak != 0 || st.Health.LastExitCode != 0 {
		t.Errorf("healthy: %+v", st.Health)
	}
}

func TestHealthCheckTimeout(t *testing.T) {
	cfg := testConfig("/bin/sleep", "60")
	cfg.Healthcheck = &Healthcheck{
		Argv:     []string{"/bin/sleep", "10"},
		Interval: Duration(50 * time.Millisecond),
		Timeout:  Duration(100 * time.Millisecond),
		Retries:  2,
	}
	stateDir, _ := startTest(t, cfg)
	st := waitStatus(t, stateDir, "c1", 5*time.Second, "unhealthy", func(s Status) bool { return s.Health.Status == HealthUnhealthy })
	if st.Health.LastExitCode != -1 || !strings.Contains(st.Health.LastOutput, "timed out") {
		t.Errorf("timeout: %+v", st.Health)
	}
}

func TestLogRotationAndTail(t *testing.T) {
	cfg := testConfig("/bin/sh", "-c", `i=0; while [ $i -lt 400 ]; do echo "line-$i"; i=$((i+1)); done; sleep 0.2; echo to-stderr >&2; sleep 0.2; echo done; exec sleep 60`)
	cfg.Log = LogConfig{MaxBytes: 2000, Keep: 2}
	stateDir, _ := startTest(t, cfg)
	waitLog(t, stateDir, "stdout done")
	path := LogPath(stateDir, "c1")
	for i := 0; i <= 2; i++ {
		fi, err := os.Stat(rotatedPath(path, i))
		if err != nil {
			t.Fatalf("log file %d: %v", i, err)
		}
		if fi.Size() > 2000 {
			t.Errorf("%s is %d bytes, over the 2000 cap", fi.Name(), fi.Size())
		}
	}
	if _, err := os.Stat(rotatedPath(path, 3)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("log.3 exists beyond keep=2: %v", err)
	}
	lines, err := Tail(path, 5)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"stdout line-397", "stdout line-398", "stdout line-399", "stderr to-stderr", "stdout done"}
	if len(lines) != 5 {
		t.Fatalf("tail 5 = %q", lines)
	}
	for i, l := range lines {
		ts, rest, _ := strings.Cut(l, " ")
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
			t.Errorf("line %q: bad timestamp: %v", l, err)
		}
		if rest != want[i] {
			t.Errorf("tail line %d = %q, want %q", i, rest, want[i])
		}
	}
	// All kept lines are consecutive across the three files.
	all, err := Tail(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) < 60 {
		t.Fatalf("only %d lines kept", len(all))
	}
	first, _ := strconv.Atoi(strings.TrimPrefix(strings.Fields(all[0])[2], "line-"))
	for i, l := range all[:len(all)-2] {
		if got := strings.Fields(l)[2]; got != "line-"+strconv.Itoa(first+i) {
			t.Fatalf("line %d = %q, want line-%d", i, got, first+i)
		}
	}
}

func TestEnvAndWorkdirReachTheCommand(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig("/bin/sh", "-c", `echo "$GREETING $(pwd)"; exec sleep 60`)
	cfg.Process.Workdir = dir
	stateDir, _ := startTest(t, cfg)
	waitLog(t, stateDir, "stdout hello "+dir)
}

func TestStartFailureLeavesNothing(t *testing.T) {
	stateDir := t.TempDir()
	cfg := testConfig("/bin/sleep", "60")
	cfg.Jail.Root = "/nonexistent/zocker-root"
	_, err := Start(context.Background(), stateDir, "c1", selfArgv(), cfg)
	if err == nil || !strings.Contains(err.Error(), "create jail c1") || !strings.Contains(err.Error(), "/nonexistent/zocker-root") {
		t.Fatalf("Start error = %v, want the jail creation failure", err)
	}
	st, gerr := Get(stateDir, "c1")
	if gerr != nil {
		t.Fatal(gerr)
	}
	waitStatus(t, stateDir, "c1", 5*time.Second, "supervisor gone", func(s Status) bool { return !s.Alive })
	if st.State != StateFailed || st.PID != 0 {
		t.Errorf("status after failed start: %+v", st)
	}
	if newHostDriver(stateDir).exists("c1") {
		t.Error("a jail remains after a failed start")
	}
}

func TestStartTwiceIsErrRunning(t *testing.T) {
	cfg := testConfig("/bin/sleep", "60")
	stateDir, _ := startTest(t, cfg)
	if _, err := Start(context.Background(), stateDir, "c1", selfArgv(), cfg); !errors.Is(err, ErrRunning) {
		t.Errorf("second Start = %v, want ErrRunning", err)
	}
	if err := Forget(stateDir, "c1"); !errors.Is(err, ErrRunning) {
		t.Errorf("Forget of a running container = %v, want ErrRunning", err)
	}
}

// The service that started a container dies: the container runs on, and a
// new service adopts it through List (same supervisor, same command).
func TestSurvivesStarterKill(t *testing.T) {
	stateDir := t.TempDir()
	cfg := testConfig("/bin/sleep", "60")
	cfgFile := filepath.Join(t.TempDir(), "cfg.json")
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(cfgFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	starter := exec.Command(selfArgv()[0], "__start", stateDir, "c1", cfgFile)
	out, err := starter.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	starter.Stderr = os.Stderr
	if err := starter.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = starter.Process.Kill()
		t.Fatalf("starter printed no pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("starter printed %q", line)
	}
	t.Cleanup(func() { cleanupSupervisor(t, stateDir, "c1", pid) })
	before, err := Get(stateDir, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if err := starter.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = starter.Wait()
	// The supervisor outlives its starter: it was detached (its own session),
	// so the starter's death reparented it instead of taking it along.
	if ppid := parentOf(t, pid); ppid == starter.Process.Pid {
		t.Fatalf("supervisor %d still a child of the dead starter", pid)
	}

	all, err := List(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 {
		t.Fatalf("List = %+v", all)
	}
	st := all[0]
	if !st.Alive || st.SupervisorPID != pid || st.State != StateRunning || st.PID != before.PID || st.Restarts != 0 {
		t.Errorf("after the starter died: %+v, want alive supervisor %d running command %d", st, pid, before.PID)
	}
	if !processExists(pid) || !processExists(st.PID) {
		t.Errorf("supervisor %d or command %d is gone", pid, st.PID)
	}
	// The adopted container stops like any other.
	if err := Stop(context.Background(), stateDir, "c1", newHostDriver(stateDir)); err != nil {
		t.Fatal(err)
	}
	if !waitGone(st.PID) {
		t.Errorf("command %d survives Stop", st.PID)
	}
}

// A dead supervisor is noticed by List, and Stop cleans up its jail.
func TestDeadSupervisorIsNoticedAndCleanedUp(t *testing.T) {
	stateDir, pid := startTest(t, testConfig("/bin/sleep", "60"))
	st := waitStatus(t, stateDir, "c1", 5*time.Second, "running", func(s Status) bool { return s.State == StateRunning })
	t.Cleanup(func() { _ = syscall.Kill(st.PID, syscall.SIGKILL) }) // orphaned: the host driver has no jail to kill it
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	st = waitStatus(t, stateDir, "c1", 5*time.Second, "dead", func(s Status) bool { return !s.Alive })
	if st.State != StateRunning {
		t.Errorf("the file of a killed supervisor says %q, want its last word, running", st.State)
	}
	if !newHostDriver(stateDir).exists("c1") {
		t.Fatal("no jail to clean up")
	}
	if err := Stop(context.Background(), stateDir, "c1", newHostDriver(stateDir)); err != nil {
		t.Fatal(err)
	}
	if newHostDriver(stateDir).exists("c1") {
		t.Error("Stop left the jail of a dead supervisor")
	}
	if st, _ := Get(stateDir, "c1"); st.State != StateStopped {
		t.Errorf("state after Stop = %q", st.State)
	}
	// A new supervisor takes over the name, replacing a stale jail.
	if err := newHostDriver(stateDir).Create(context.Background(), jail.Spec{Name: "c1"}); err != nil {
		t.Fatal(err)
	}
	st.State = StateRunning // as a killed supervisor leaves it
	if err := writeStatus(stateDir, &st); err != nil {
		t.Fatal(err)
	}
	pid2, err := Start(context.Background(), stateDir, "c1", selfArgv(), testConfig("/bin/sleep", "60"))
	if err != nil {
		t.Fatalf("Start over a stale jail: %v", err)
	}
	t.Cleanup(func() { cleanupSupervisor(t, stateDir, "c1", pid2) })
	if err := Forget(stateDir, "c1"); err == nil {
		t.Error("Forget succeeded on a running container")
	}
}

func TestForget(t *testing.T) {
	cfg := testConfig("/bin/true")
	cfg.RestartPolicy = RestartNever
	stateDir, _ := startTest(t, cfg)
	if err := Stop(context.Background(), stateDir, "c1", newHostDriver(stateDir)); err != nil {
		t.Fatal(err)
	}
	if err := Forget(stateDir, "c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := Get(stateDir, "c1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Forget = %v", err)
	}
	if all, err := List(stateDir); err != nil || len(all) != 0 {
		t.Errorf("List after Forget = %v, %v", all, err)
	}
	// Stopping what is not there is not an error.
	if err := Stop(context.Background(), stateDir, "c1", newHostDriver(stateDir)); err != nil {
		t.Errorf("Stop of a forgotten container: %v", err)
	}
}

// waitLog waits until the container's log holds a line ending in suffix.
func waitLog(t *testing.T, stateDir, suffix string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		lines, _ := Tail(LogPath(stateDir, "c1"), 0)
		for _, l := range lines {
			if strings.HasSuffix(l, suffix) {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	lines, _ := Tail(LogPath(stateDir, "c1"), 20)
	t.Fatalf("no log line ends in %q; log ends with %q", suffix, lines)
}

// A jail that cannot be removed at stop is not reported stopped: Stop says
// so, and a later Stop retries the removal.
func TestStopRetriesAFailedJailRemoval(t *testing.T) {
	stateDir, _ := startTest(t, testConfig("/bin/sleep", "60"))
	marker := filepath.Join(newHostDriver(stateDir).dir, "c1")
	// A non-empty directory in place of the marker makes Remove fail.
	if err := os.Remove(marker); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(marker, "busy"), 0o755); err != nil {
		t.Fatal(err)
	}
	err := Stop(context.Background(), stateDir, "c1", newHostDriver(stateDir))
	if err == nil || !strings.Contains(err.Error(), "stop container c1: remove jail") {
		t.Fatalf("Stop with a stuck jail = %v", err)
	}
	st, _ := Get(stateDir, "c1")
	if st.State != StateFailed || st.Alive || !strings.Contains(st.Message, "remove jail of container c1") {
		t.Errorf("status with a stuck jail: %+v", st)
	}
	if err := os.Remove(filepath.Join(marker, "busy")); err != nil {
		t.Fatal(err)
	}
	if err := Stop(context.Background(), stateDir, "c1", newHostDriver(stateDir)); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if st, _ := Get(stateDir, "c1"); st.State != StateStopped || newHostDriver(stateDir).exists("c1") {
		t.Errorf("after the second Stop: %+v", st)
	}
}

// parentOf is pid's parent pid, from /proc/PID/stat.
func parentOf(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatalf("supervisor %d is gone: %v", pid, err)
	}
	// pid (comm) state ppid ...: comm may hold spaces, so cut after ')'.
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	ppid, err := strconv.Atoi(fields[1])
	if err != nil {
		t.Fatalf("parse /proc/%d/stat: %v", pid, err)
	}
	return ppid
}
