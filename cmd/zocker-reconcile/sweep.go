package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/engine"
)

// retrySweep retries, every period while the service runs, the leftovers in
// ROOT/tmp that were busy at start (each attempt logs who holds them), so
// that a busy leftover neither stops the service nor is forgotten.
func retrySweep(ctx context.Context, s engine.Store, period time.Duration, log *slog.Logger) {
	t := time.NewTicker(period)
	defer t.Stop()
	for len(s.SweepTmp(ctx)) > 0 {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
	log.Debug("ROOT/tmp swept")
}
