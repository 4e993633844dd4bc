package supervisor

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// With ExitWhenDone (the containers of run -d and start) the supervisor
// removes the jail and exits once the command is done for good, keeping
// the exit code on record; Stop then changes nothing of it.
func TestExitWhenDone(t *testing.T) {
	cfg := testConfig("/bin/sh", "-c", "exit 3")
	cfg.RestartPolicy = RestartNever
	cfg.ExitWhenDone = true
	stateDir, _ := startTest(t, cfg)
	st := waitStatus(t, stateDir, "c1", 10*time.Second, "the supervisor gone, exited", func(s Status) bool { return !s.Alive && s.State == StateExited })
	if st.LastExitCode != 3 || st.PID != 0 {
		t.Errorf("status: %+v", st)
	}
	if newHostDriver(stateDir).exists("c1") {
		t.Errorf("the jail stays after the command is done")
	}
	if err := Stop(context.Background(), stateDir, "c1", newHostDriver(stateDir)); err != nil {
		t.Fatal(err)
	}
	if st, _ := Get(stateDir, "c1"); st.State != StateExited || st.LastExitCode != 3 {
		t.Errorf("after Stop: %+v", st)
	}
}

func TestRunAttached(t *testing.T) {
	stateDir := t.TempDir()
	d := newHostDriver(stateDir)
	out, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	log := slog.New(slog.DiscardHandler)
	code, err := RunAttached(context.Background(), stateDir, "c1", testConfig("/bin/sh", "-c", "echo $GREETING; read x; echo got $x; exit 3"), d,
		Stdio{Stdin: strings.NewReader("input\n"), Stdout: out, Stderr: out}, log)
	if err != nil || code != 3 {
		t.Fatalf("RunAttached: %d %v", code, err)
	}
	if b, _ := os.ReadFile(out.Name()); string(b) != "hello\ngot input\n" {
		t.Errorf("output %q", b)
	}
	st, err := Get(stateDir, "c1")
	if err != nil || st.State != StateExited || st.LastExitCode != 3 || st.Alive || d.exists("c1") {
		t.Errorf("after: %+v %v (jail there: %v)", st, err, d.exists("c1"))
	}
	if cfg, err := ReadConfig(stateDir, "c1"); err != nil || cfg.Process.Argv[0] != "/bin/sh" {
		t.Errorf("config: %+v %v", cfg, err)
	}

	// Cancelling (Ctrl-C) stops it: the stop signal, 128+15.
	ctx, cancel := context.WithCancel(context.Background())
	cfg := testConfig("/bin/sh", "-c", "echo up; exec sleep 100")
	go func() {
		waitStatus(t, stateDir, "c1", 10*time.Second, "running", func(s Status) bool { return s.State == StateRunning && s.PID > 0 })
		cancel()
	}()
	code, err = RunAttached(ctx, stateDir, "c1", cfg, d, Stdio{Stdout: out, Stderr: out}, log)
	if err != nil || code != 143 {
		t.Errorf("cancelled: %d %v", code, err)
	}
}
