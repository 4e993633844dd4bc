package main

import (
	"log/slog"

	"github.com/zocker-reconcile/zocker-reconcile/engine/jail"
	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
)

func init() {
	newSupervisorDriver = func(stateDir string, opts superviseOptions, log *slog.Logger) (jail.Driver, error) {
		return jail.NewFreeBSD(stateDir, &runner.Exec{Logger: log}, log, jail.FreeBSDOptions{LoopbackInterface: opts.loopbackInterface}), nil
	}
}
