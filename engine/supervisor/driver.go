package supervisor

import (
	"context"
	"fmt"
	"log/slog"
	"os/signal"
	"syscall"

	"github.com/zocker-reconcile/zocker-reconcile/engine/jail"
)

// AnnotationRemove "true" in a config's annotations: remove the container
// (its clone and state) once its command is done for good (run -d --rm).
// A supervisor cannot do it itself (it has no ZFS code): when it exits it
// runs the main binary's hidden command for it (RemoveWanted).
const AnnotationRemove = "removeWhenDone"

// RemoveWanted tells whether container name, whose supervisor has just
// exited, asked to be removed and is done (exited, not stopped by hand).
func RemoveWanted(stateDir, name string) bool {
	cfg, err := ReadConfig(stateDir, name)
	if err != nil || cfg.Annotations[AnnotationRemove] != "true" {
		return false
	}
	st, err := Get(stateDir, name)
	return err == nil && st.State == StateExited
}

// DriverOptions are what a supervisor's jail driver needs beyond the state
// directory.
type DriverOptions struct {
	// LoopbackInterface (FreeBSD) is the interface of loopback addresses
	// when the jail spec names none.
	LoopbackInterface string
}

// newDriver builds the host's jail driver for a supervisor; set by the
// per-OS files, nil on systems without a driver.
var newDriver func(stateDir string, opts DriverOptions, log *slog.Logger) jail.Driver

// NewDriver returns the host's jail driver as a supervisor process uses it
// (on Linux, its jail init is this process's own binary re-executed).
func NewDriver(stateDir string, opts DriverOptions, log *slog.Logger) (jail.Driver, error) {
	if newDriver == nil {
		return nil, fmt.Errorf("no jail driver on this system")
	}
	return newDriver(stateDir, opts, log), nil
}

// Main is the body of a supervisor process (the zocker-supervise binary, or
// the main binary's hidden __supervise command): SIGTERM and SIGINT are the
// stop request (Stop sends SIGTERM); SIGHUP and SIGPIPE are ignored, since
// the supervisor has no terminal and a stray hang-up must not stop a
// container.
func Main(stateDir, name string, opts DriverOptions, log *slog.Logger) error {
	driver, err := NewDriver(stateDir, opts, log)
	if err != nil {
		return fmt.Errorf("supervise container %s: %w", name, err)
	}
	signal.Ignore(syscall.SIGHUP, syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return Run(ctx, stateDir, name, driver, log)
}
