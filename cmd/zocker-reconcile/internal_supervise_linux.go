package main

import (
	"log/slog"

	"github.com/zocker-reconcile/zocker-reconcile/engine/jail"
	"github.com/zocker-reconcile/zocker-reconcile/engine/jail/linuxns"
	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
)

func init() {
	newSupervisorDriver = func(stateDir string, _ superviseOptions, log *slog.Logger) (jail.Driver, error) {
		return linuxns.New(stateDir, nil, &runner.Exec{Logger: log}, log), nil
	}
}
