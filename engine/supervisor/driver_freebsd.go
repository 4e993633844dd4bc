package supervisor

import (
	"log/slog"

	"github.com/zocker-reconcile/zocker-reconcile/engine/jail"
	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
)

func init() {
	newDriver = func(stateDir string, opts DriverOptions, log *slog.Logger) jail.Driver {
		return jail.NewFreeBSD(stateDir, &runner.Exec{Logger: log}, log, jail.FreeBSDOptions{LoopbackInterface: opts.LoopbackInterface})
	}
}
