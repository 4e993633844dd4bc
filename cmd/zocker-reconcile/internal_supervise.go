package main

import (
	"context"
	"fmt"
	"log/slog"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/zocker-reconcile/zocker-reconcile/engine/jail"
	"github.com/zocker-reconcile/zocker-reconcile/engine/supervisor"
)

// SuperviseCommand is the hidden subcommand that runs one container's
// supervisor: `zocker-reconcile __supervise STATE_DIR NAME`. The service
// starts it through supervisor.Start with self = [exe, SuperviseCommand].
const SuperviseCommand = "__supervise"

// superviseOptions are the hidden command's own flags.
type superviseOptions struct {
	loopbackInterface string
}

// newSupervisorDriver builds the jail driver a supervisor uses; it is set by
// the per-OS files (internal_supervise_linux.go, _freebsd.go) and is nil on
// systems without a driver.
var newSupervisorDriver func(stateDir string, opts superviseOptions, log *slog.Logger) (jail.Driver, error)

func init() {
	register(func(g *globals) *cobra.Command {
		var opts superviseOptions
		cmd := &cobra.Command{
			Use:    SuperviseCommand + " STATE_DIR NAME",
			Short:  "Run one container's supervisor (started by the service, not by people)",
			Hidden: true,
			Args:   cobra.ExactArgs(2),
			RunE: func(_ *cobra.Command, args []string) error {
				log, err := g.logger()
				if err != nil {
					return err
				}
				if err := runSupervisor(args[0], args[1], opts, log); err != nil {
					return err
				}
				return removeWhenDone(g, args[0], args[1], log)
			},
		}
		cmd.Flags().StringVar(&opts.loopbackInterface, "loopback-interface", "", "FreeBSD: the interface of loopback addresses when the jail spec names none")
		return cmd
	})
}

func runSupervisor(stateDir, name string, opts superviseOptions, log *slog.Logger) error {
	if newSupervisorDriver == nil {
		return fmt.Errorf("supervise container %s: no jail driver on this system", name)
	}
	driver, err := newSupervisorDriver(stateDir, opts, log)
	if err != nil {
		return fmt.Errorf("supervise container %s: %w", name, err)
	}
	// SIGTERM is the stop request (supervisor.Stop sends it); SIGINT too,
	// for a supervisor run by hand. SIGHUP is ignored: the supervisor has
	// no terminal, and a stray hang-up must not stop a container.
	signal.Ignore(syscall.SIGHUP, syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := supervisor.Run(ctx, stateDir, name, driver, log); err != nil {
		return withCode(1, err)
	}
	return nil
}
