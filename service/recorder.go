package service

import (
	"context"
	"log/slog"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/engine"
	"github.com/zocker-reconcile/zocker-reconcile/metrics"
	"github.com/zocker-reconcile/zocker-reconcile/reconcile"
)

// recorder runs an action on the engine and records it: one log line with
// action, the object (container=web), reason, duration, result and err; the action metrics; the
// status book.
type recorder struct{ s *Service }

func (r *recorder) Execute(ctx context.Context, a reconcile.Action) error {
	start := time.Now()
	deadline := r.s.cfg.Deadlines.For(a.Op)
	done := r.s.flights.begin(a, deadline)
	err := runWithDeadline(ctx, a, deadline, r.s.cfg.Engine.Execute)
	done()
	// Whatever its result, the action may have changed the store: the next
	// observation reads it again (Service.observe).
	r.s.mu.Lock()
	r.s.touched.Merge(engine.TouchedBy(a))
	r.s.mu.Unlock()
	took := time.Since(start)
	result := metrics.ResultSuccess
	level := slog.LevelInfo
	switch {
	case err == nil:
		if a.Op == reconcile.OpRollback && a.Failed != "" {
			r.s.m.Rollback(a.Name)
		}
		r.s.book.Succeeded(a)
		r.s.mu.Lock()
		r.s.acted = true
		r.s.mu.Unlock()
	case reconcile.IsWait(err):
		result = "wait"
	default:
		result = metrics.ResultError
		level = slog.LevelError
		r.s.book.Failed(a, err, reconcile.IsTerminal(err))
	}
	if result != "wait" {
		r.s.m.ObserveAction(a.Kind, a.Op.Verb(), result, took)
	}
	attrs := []any{"action", string(a.Op), reconcile.ObjectAttr(a.Kind, a.Name), "reason", a.Reason,
		"duration", took.Round(time.Millisecond), "result", result}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	r.s.log.Log(ctx, level, "action", attrs...)
	return err
}
