//go:build linux

package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/engine/jail"
	"github.com/zocker-reconcile/zocker-reconcile/engine/jail/linuxns"
	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
	"github.com/zocker-reconcile/zocker-reconcile/engine/supervisor"
	"github.com/zocker-reconcile/zocker-reconcile/internal/testenv"
)

// TestIdleSupervisorNeverCollects: a supervisor's start-up allocates less
// than its first heap goal (GOGC 25: 1 MiB), so an idle one never runs a
// collection, and so never the runtime's forced one every 2 minutes,
// whose cycles leave GC metadata resident (issue 15: 1.37 MB flat against
// 1.6 MB growing to 1.97 MB). gctrace prints a line per collection.
func TestIdleSupervisorNeverCollects(t *testing.T) {
	testenv.RequireRoot(t)
	bin := filepath.Join(t.TempDir(), "zocker-supervise")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	root := filepath.Join(t.TempDir(), "rootfs")
	if out, err := exec.Command("cp", "-a", testenv.BusyboxRootfs(t), root).CombinedOutput(); err != nil {
		t.Fatalf("copy rootfs: %v: %s", err, out)
	}
	state := t.TempDir()
	// Start passes its environment on to the supervisor.
	t.Setenv("GODEBUG", "gctrace=1")
	cfg := supervisor.Config{
		Jail:          jail.Spec{Name: "idle", Root: root, Network: jail.Network{Mode: jail.NetNone}},
		Process:       jail.Process{Argv: []string{"/bin/sleep", "600"}, Env: []string{"PATH=/bin"}},
		RestartPolicy: supervisor.RestartNever,
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := supervisor.Start(ctx, state, "idle", []string{bin}, cfg); err != nil {
		t.Fatalf("start: %v", err)
	}
	// Stopped, the supervisor has written all it will: its whole life,
	// start-up and stop, fits in the first heap goal.
	driver := linuxns.New(state, nil, &runner.Exec{}, nil)
	if err := supervisor.Stop(ctx, state, "idle", driver); err != nil {
		t.Fatalf("stop: %v", err)
	}
	log, err := os.ReadFile(filepath.Join(supervisor.Dir(state, "idle"), "supervisor.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "msg=stopped") {
		t.Fatalf("supervisor.log has no stop:\n%s", log)
	}
	for _, line := range strings.Split(string(log), "\n") {
		if strings.HasPrefix(line, "gc ") {
			t.Errorf("the supervisor ran a collection (its heap outgrew the first goal):\n%s", log)
			break
		}
	}
}
