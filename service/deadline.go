package service

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/reconcile"
)

// DefaultDeadlines is --action-timeout's default: image work (imports,
// builds, pulls) may take long; every other action must finish in minutes.
const DefaultDeadlines = "2m,import=30m,build=30m,pull=30m"

// Deadlines bound every action (issue 11, M4 of the security review): an
// action still running at its deadline has its context cancelled, and the
// service's /healthz fails while one runs past it (a worker pinned by
// something that ignores its context).
type Deadlines struct {
	Default time.Duration
	ByOp    map[reconcile.Op]time.Duration
}

// ParseDeadlines reads --action-timeout: comma-separated entries, a bare
// duration for every action, OP=DURATION for one operation (import, build,
// pull, create, start, stop, replace, prune, create-volume, update-volume,
// destroy-volume).
func ParseDeadlines(s string) (Deadlines, error) {
	d := Deadlines{ByOp: map[reconcile.Op]time.Duration{}}
	for _, e := range strings.Split(s, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		op, val, named := strings.Cut(e, "=")
		if !named {
			op, val = "", e
		}
		dur, err := time.ParseDuration(val)
		if err != nil || dur <= 0 {
			return d, fmt.Errorf("--action-timeout %q: %q is not a positive duration (e.g. 2m, 30m, 1h)", s, val)
		}
		if !named {
			d.Default = dur
			continue
		}
		if !slices.Contains(reconcile.Ops(), reconcile.Op(op)) {
			return d, fmt.Errorf("--action-timeout %q: unknown action %q (want one of %s)", s, op, opNames())
		}
		d.ByOp[reconcile.Op(op)] = dur
	}
	if d.Default == 0 {
		d.Default = 2 * time.Minute
	}
	return d, nil
}

func opNames() string {
	var names []string
	for _, op := range reconcile.Ops() {
		names = append(names, string(op))
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// For returns the deadline of op. The zero Deadlines are the defaults.
func (d Deadlines) For(op reconcile.Op) time.Duration {
	if d.Default == 0 && d.ByOp == nil {
		d, _ = ParseDeadlines(DefaultDeadlines)
	}
	if v, ok := d.ByOp[op]; ok {
		return v
	}
	if d.Default > 0 {
		return d.Default
	}
	return 2 * time.Minute
}

// inFlight tracks the actions running now, for /healthz.
type inFlight struct {
	mu  sync.Mutex
	now func() time.Time
	run map[string]flight
}

type flight struct {
	action   reconcile.Action
	start    time.Time
	deadline time.Duration
}

func (f *inFlight) begin(a reconcile.Action, deadline time.Duration) func() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.run == nil {
		f.run = map[string]flight{}
	}
	id := fmt.Sprintf("%s %p", a.Key(), &a)
	f.run[id] = flight{action: a, start: f.now(), deadline: deadline}
	return func() {
		f.mu.Lock()
		delete(f.run, id)
		f.mu.Unlock()
	}
}

// overdue describes the actions running past their deadline ("" when none).
func (f *inFlight) overdue() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var late []string
	for _, fl := range f.run {
		if age := f.now().Sub(fl.start); age > fl.deadline {
			late = append(late, fmt.Sprintf("%s %s has run for %s, past its %s deadline", fl.action.Op, fl.action.Key(), age.Round(time.Second), fl.deadline))
		}
	}
	sort.Strings(late)
	return strings.Join(late, "; ")
}

// WithDeadlines wraps an executor so that every action runs under its
// deadline (apply's passes; the service's recorder does the same).
func WithDeadlines(exec reconcile.Executor, d Deadlines) reconcile.Executor {
	return deadlineExec{exec: exec, d: d}
}

type deadlineExec struct {
	exec reconcile.Executor
	d    Deadlines
}

func (e deadlineExec) Execute(ctx context.Context, a reconcile.Action) error {
	return runWithDeadline(ctx, a, e.d.For(a.Op), e.exec.Execute)
}

// runWithDeadline runs one action with its deadline and says so when the
// deadline, not the action, ended it.
func runWithDeadline(ctx context.Context, a reconcile.Action, deadline time.Duration, run func(context.Context, reconcile.Action) error) error {
	actx, cancel := context.WithTimeoutCause(ctx, deadline, fmt.Errorf("%s %s: past its %s deadline (--action-timeout)", a.Op, a.Key(), deadline))
	defer cancel()
	err := run(actx, a)
	if err != nil && ctx.Err() == nil && actx.Err() != nil {
		return fmt.Errorf("%w: %w", context.Cause(actx), err)
	}
	return err
}
