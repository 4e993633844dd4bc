package service

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/reconcile"
)

func TestParseDeadlines(t *testing.T) {
	d, err := ParseDeadlines(DefaultDeadlines)
	if err != nil {
		t.Fatal(err)
	}
	for op, want := range map[reconcile.Op]time.Duration{reconcile.OpBuild: 30 * time.Minute, reconcile.OpPull: 30 * time.Minute,
		reconcile.OpImport: 30 * time.Minute, reconcile.OpStart: 2 * time.Minute, reconcile.OpPrune: 2 * time.Minute} {
		if got := d.For(op); got != want {
			t.Errorf("default deadline of %s = %s, want %s", op, got, want)
		}
	}
	if got := (Deadlines{}).For(reconcile.OpBuild); got != 30*time.Minute {
		t.Errorf("zero Deadlines build = %s, want the default 30m", got)
	}
	d, err = ParseDeadlines("5m, build=2h")
	if err != nil || d.For(reconcile.OpBuild) != 2*time.Hour || d.For(reconcile.OpStop) != 5*time.Minute {
		t.Errorf("5m,build=2h = %+v, %v", d, err)
	}
	for _, bad := range []string{"soon", "buidl=1h", "start=-1s", "0s"} {
		if _, err := ParseDeadlines(bad); err == nil || !strings.Contains(err.Error(), "--action-timeout") {
			t.Errorf("ParseDeadlines(%q) = %v, want an error naming the flag", bad, err)
		}
	}
}

// TestDeadlineCancelsAndHealthzFails: an action gets its deadline as a
// context; one that ignores it keeps its worker, and /healthz says so.
func TestDeadlineCancelsAndHealthzFails(t *testing.T) {
	a := reconcile.Action{Kind: "Image", Name: "slow", Op: reconcile.OpBuild}
	err := runWithDeadline(context.Background(), a, 20*time.Millisecond, func(ctx context.Context, _ reconcile.Action) error {
		<-ctx.Done()
		return ctx.Err()
	})
	if err == nil || !strings.Contains(err.Error(), "past its 20ms deadline") || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("an action past its deadline: %v", err)
	}

	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f := &inFlight{now: func() time.Time { return now }}
	done := f.begin(a, 30*time.Minute)
	now = now.Add(29 * time.Minute)
	if late := f.overdue(); late != "" {
		t.Fatalf("within its deadline: %q", late)
	}
	now = now.Add(2 * time.Minute)
	if late := f.overdue(); !strings.Contains(late, "build Image/slow has run for 31m0s, past its 30m0s deadline") {
		t.Fatalf("past its deadline: %q", late)
	}
	done()
	if late := f.overdue(); late != "" {
		t.Fatalf("after it returned: %q", late)
	}
}
