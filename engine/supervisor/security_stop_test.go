package supervisor

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"
	"time"
)

func init() {
	// TEST __stuck STATE NAME: a supervisor that holds the container's lock
	// and ignores SIGTERM (wedged), until killed.
	helpers["__stuck"] = func(args []string) int {
		if err := os.MkdirAll(Dir(args[0], args[1]), 0o750); err != nil {
			return 1
		}
		lock, err := acquireLock(args[0], args[1])
		if err != nil {
			return 1
		}
		defer lock.Close()
		signal.Ignore(syscall.SIGTERM)
		os.Stdout.WriteString("locked\n")
		select {}
	}
}

// TestSecurityStopNeverKillsARecycledPID: when a supervisor does not stop
// in time, Stop kills it and removes the jail; it must not SIGKILL the
// command's PID from status.json, which may name another process by then
// (review: "Stop may SIGKILL a recycled PID"). Before the fix the victim,
// an unrelated process whose PID the status named, was killed.
func TestSecurityStopNeverKillsARecycledPID(t *testing.T) {
	defer func(m time.Duration) { stopMargin = m }(stopMargin)
	stopMargin = 0
	state, name := t.TempDir(), "wedged"

	victim := exec.Command("sleep", "1000")
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	victimDone := make(chan struct{}) // closed once the victim is reaped
	go func() { _ = victim.Wait(); close(victimDone) }()
	t.Cleanup(func() { _ = victim.Process.Kill(); <-victimDone })

	stuck := exec.Command(os.Args[0], "__stuck", state, name)
	out, err := stuck.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := stuck.Start(); err != nil {
		t.Fatal(err)
	}
	stuckDone := make(chan error, 1)
	go func() { stuckDone <- stuck.Wait() }()
	t.Cleanup(func() { _ = stuck.Process.Kill() })
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "locked\n" {
		t.Fatalf("the stuck supervisor did not take the lock: %q %v", line, err)
	}
	if err := writeConfig(state, Config{Name: name, StopTimeout: Duration(200 * time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	if err := writeStatus(state, &Status{Name: name, State: StateRunning, PID: victim.Process.Pid, SupervisorPID: stuck.Process.Pid}); err != nil {
		t.Fatal(err)
	}
	driver := newHostDriver(state)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := Stop(ctx, state, name, driver); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	select {
	case <-stuckDone: // killed: that one was ours
	case <-time.After(10 * time.Second):
		t.Fatal("the stuck supervisor was not killed")
	}
	// A SIGKILL sent by Stop has been delivered by now; its reaping is
	// what this window waits for (2 s: passing costs the whole window).
	select {
	case <-victimDone:
		t.Fatal("the process whose PID the status named was killed")
	case <-time.After(2 * time.Second):
	}
	if st, err := Get(state, name); err != nil || st.Alive || st.State != StateStopped {
		t.Errorf("after Stop: %+v, %v", st, err)
	}
}
