package service

import (
	"errors"
	"testing"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/engine/supervisor"
	"github.com/zocker-reconcile/zocker-reconcile/reconcile"
)

func TestReadinessMessages(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		oc     reconcile.ObservedContainer
		ready  bool
		reason string
		msg    string
	}{
		{"running", reconcile.ObservedContainer{Running: true, Runtime: reconcile.ContainerRuntime{State: "running"}}, true, ReasonInSync, ""},
		{"crash loop", reconcile.ObservedContainer{Running: true, Exited: true, LastExitCode: 3, Restarts: 4, Runtime: reconcile.ContainerRuntime{State: "backoff", NextStartAt: now.Add(16 * time.Second)}},
			false, ReasonCrashLoop, "exited 3, 4 restarts, next in 16s"},
		{"missing command", reconcile.ObservedContainer{Running: true, Exited: true, LastExitCode: 127, Restarts: 1, Runtime: reconcile.ContainerRuntime{State: "backoff", Message: "exec /nope: no such file or directory", NextStartAt: now.Add(2 * time.Second)}},
			false, ReasonCommandNotFound, "exec /nope: no such file or directory (exit 127), 1 restart, next in 2s"},
		{"killed", reconcile.ObservedContainer{Running: true, Exited: true, LastExitCode: 137, Restarts: 2, Runtime: reconcile.ContainerRuntime{State: "backoff", LastSignal: "SIGKILL"}},
			false, ReasonCrashLoop, "killed by SIGKILL, 2 restarts"},
		{"unhealthy", reconcile.ObservedContainer{Running: true, Health: reconcile.HealthUnhealthy, HealthOutput: "wget: can't connect\n", Runtime: reconcile.ContainerRuntime{State: "running", HealthExitCode: 1, HealthStreak: 3}},
			false, ReasonUnhealthy, "wget: can't connect (exit 1, 3 failed checks in a row)"},
		{"exited under OnFailure", reconcile.ObservedContainer{Running: true, Exited: true, Runtime: reconcile.ContainerRuntime{State: "exited"}}, true, ReasonCompleted, "exited 0; the restart policy does not restart it"},
		{"no supervisor", reconcile.ObservedContainer{}, false, ReasonNotRunning, "no supervisor runs it"},
	} {
		ready, reason, msg := readiness(tc.oc, now)
		if ready != tc.ready || reason != tc.reason || msg != tc.msg {
			t.Errorf("%s: readiness = %v %q %q, want %v %q %q", tc.name, ready, reason, msg, tc.ready, tc.reason, tc.msg)
		}
	}
}

// TestStatusCrashLoopBetweenPasses: a container the plan is in sync with
// becomes Ready=False CrashLoop from the supervisors' next report, without a
// pass, and Ready again when it runs.
func TestStatusCrashLoopBetweenPasses(t *testing.T) {
	clk := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	b := NewStatusBook(clk.now)
	s := newSet(image("base"), web())
	d := desired(s)
	o := observed(applied(t, web(), "id1", func(oc *reconcile.ObservedContainer) {
		oc.Runtime = reconcile.ContainerRuntime{State: "running"}
	}))
	b.Planned(reconcile.Diff(d, o, reconcile.Options{}), d, o)
	if c := cond(t, b.Snapshot(), "Container/web", ConditionReady); !c.Status {
		t.Fatalf("in sync and running: %+v", c)
	}
	changed := b.Runtime(map[string]supervisor.Status{"web": {Name: "web", Alive: true, State: supervisor.StateBackoff, LastExitAt: clk.t, LastExitCode: 3, Restarts: 4, NextStartAt: clk.t.Add(16 * time.Second)}})
	c := cond(t, b.Snapshot(), "Container/web", ConditionReady)
	if len(changed) != 1 || c.Status || c.Reason != ReasonCrashLoop || c.Message != "exited 3, 4 restarts, next in 16s" {
		t.Fatalf("after a crash report: changed %v, %+v", changed, c)
	}
	if b.Snapshot().AllReady() {
		t.Error("AllReady with a crash-looping container")
	}
	b.Runtime(map[string]supervisor.Status{"web": {Name: "web", Alive: true, State: supervisor.StateRunning, Restarts: 4}})
	if c := cond(t, b.Snapshot(), "Container/web", ConditionReady); !c.Status {
		t.Errorf("running again: %+v", c)
	}
	// A supervisor that is gone is not Ready either.
	b.Runtime(map[string]supervisor.Status{})
	if c := cond(t, b.Snapshot(), "Container/web", ConditionReady); c.Status || c.Reason != ReasonNotRunning {
		t.Errorf("without a supervisor: %+v", c)
	}
}

// TestStatusKeepsLastError (F2): the last failure stays on the object across
// passes until an action of it succeeds; a terminal one is Stalled while the
// action's generation is the same.
func TestStatusKeepsLastError(t *testing.T) {
	clk := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	b := NewStatusBook(clk.now)
	s := newSet(image("base"))
	d := desired(s)
	o := observed()
	delete(o.Images, "id1")
	delete(o.Tags, "base")
	p := reconcile.Diff(d, o, reconcile.Options{})
	if len(p.Actions) != 1 {
		t.Fatalf("plan: %+v", p.Actions)
	}
	a := p.Actions[0]
	b.Planned(p, d, o)
	b.Failed(a, errors.New("import image base: sha256 mismatch: the file has 095c, 0000 was declared"), true)
	for pass := 0; pass < 3; pass++ {
		b.Planned(reconcile.Diff(d, o, reconcile.Options{}), d, o)
		st := b.Snapshot()
		r, stalled := cond(t, st, "Image/base", ConditionReady), cond(t, st, "Image/base", ConditionStalled)
		if r.Status || !stalled.Status || stalled.Reason != ReasonFailed || r.Message != "import image base: sha256 mismatch: the file has 095c, 0000 was declared" {
			t.Fatalf("pass %d: ready %+v stalled %+v", pass, r, stalled)
		}
	}
	// A transient failure keeps the object Reconciling with the error.
	b.Failed(a, errors.New("import image base: open /x.tar: no such file or directory"), false)
	b.Planned(reconcile.Diff(d, o, reconcile.Options{}), d, o)
	if rc := cond(t, b.Snapshot(), "Image/base", ConditionReconciling); !rc.Status || rc.Reason != ReasonRetrying || rc.Message != "import image base: open /x.tar: no such file or directory" {
		t.Fatalf("after a transient failure: %+v", rc)
	}
	b.Succeeded(a)
	b.Planned(reconcile.Diff(d, o, reconcile.Options{}), d, o)
	if rc := cond(t, b.Snapshot(), "Image/base", ConditionReconciling); rc.Reason != ReasonChangesPending {
		t.Errorf("after a success the error is gone: %+v", rc)
	}
}
