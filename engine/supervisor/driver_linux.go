package supervisor

import (
	"log/slog"

	"github.com/zocker-reconcile/zocker-reconcile/engine/jail"
	"github.com/zocker-reconcile/zocker-reconcile/engine/jail/linuxns"
	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
)

func init() {
	newDriver = func(stateDir string, _ DriverOptions, log *slog.Logger) jail.Driver {
		// self nil: the jail init is this binary re-executed.
		return linuxns.New(stateDir, nil, &runner.Exec{Logger: log}, log)
	}
}
