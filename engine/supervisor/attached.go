package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"syscall"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/engine/jail"
)

// Stdio are the standard streams of an attached run: the caller's terminal,
// or a pseudo-terminal the caller relays.
type Stdio struct {
	// Stdin is read by the command; nil gives it /dev/null.
	Stdin io.Reader
	// Stdout and Stderr receive its output.
	Stdout, Stderr *os.File
	// TTY says that Stdin, Stdout and Stderr are one terminal (the slave of
	// a pseudo-terminal): the command then gets it as its controlling
	// terminal in a session of its own, so ^C typed there reaches it.
	TTY bool
}

// RunAttached runs container name once in this process, with its standard
// streams on io, instead of under a detached supervisor: `run` in the
// foreground and `start -a`. It writes cfg and the same status file a
// supervisor writes and holds the same lock meanwhile, so ps, exec, logs
// (nothing is logged: the output goes to the terminal) and Stop work on it;
// Stop signals this process, whose caller cancels ctx. When ctx ends the
// command is stopped as a supervisor stops it (stop signal, SIGKILL after
// the stop timeout). The jail is removed in every case and the state left
// exited with the command's exit code, which is returned: 128+N for a death
// by signal N, 127 when it could not start.
func RunAttached(ctx context.Context, stateDir, name string, cfg Config, driver jail.Driver, stdio Stdio, log *slog.Logger) (int, error) {
	log = log.With("container", name)
	if err := prepare(stateDir, name, &cfg); err != nil {
		return 0, err
	}
	lock, err := acquireLock(stateDir, name)
	if err != nil {
		return 0, err
	}
	defer lock.Close()
	prev, prevErr := readStatus(stateDir, name)
	if err := writeConfig(stateDir, cfg); err != nil {
		return 0, err
	}
	s := &supervisor{stateDir: stateDir, driver: driver, log: log, now: time.Now, cfg: cfg.withDefaults()}
	s.status = Status{Name: name, SupervisorPID: os.Getpid(), State: StateStarting, Health: Health{Status: HealthNone}, Annotations: cfg.Annotations}
	s.stopSig, _ = ParseSignal(s.cfg.StopSignal)
	s.writeStatus()
	if err := s.createJail(ctx, prevErr == nil && prev.State != StateStopped && prev.State != StateExited); err != nil {
		s.fail(err)
		return 0, err
	}
	code, runErr := s.runAttached(ctx, stdio)

	rctx, cancel := context.WithTimeout(context.Background(), removeTimeout)
	defer cancel()
	if err := driver.Remove(rctx, name); err != nil {
		err = fmt.Errorf("remove jail of container %s: %w", name, err)
		s.fail(err)
		return code, err
	}
	s.update(func(st *Status) { st.State, st.PID = StateExited, 0 })
	return code, runErr
}

// runAttached starts the command on stdio, waits for it (stopping it when
// ctx ends), and records its start and exit.
func (s *supervisor) runAttached(ctx context.Context, stdio Stdio) (int, error) {
	cmd, err := s.driver.Command(s.cfg.Jail.Name, s.cfg.Process)
	if err != nil {
		s.recordExit(exit{code: 127, at: s.now().UTC(), startErr: err})
		return 127, fmt.Errorf("start command of container %s: %w", s.cfg.Name, err)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdio.Stdin, stdio.Stdout, stdio.Stderr
	if stdio.TTY {
		// A session of its own with the terminal as controlling terminal
		// (fd 0 in the child): job control and ^C work inside.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	} else {
		// Its own process group: ^C on the caller's terminal reaches only
		// the caller, which stops the container as `stop` would.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
	// A reader that is not a file (or the terminal) is copied by a goroutine
	// that may block on a read; do not wait for it once the command is gone.
	cmd.WaitDelay = 200 * time.Millisecond
	if err := cmd.Start(); err != nil {
		s.recordExit(exit{code: 127, at: s.now().UTC(), startErr: err})
		return 127, fmt.Errorf("start command of container %s: %w", s.cfg.Name, err)
	}
	s.update(func(st *Status) {
		st.State, st.PID, st.StartedAt = StateRunning, cmd.Process.Pid, s.now().UTC()
	})
	s.log.Info("command started", "action", "start", "pid", cmd.Process.Pid)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var werr error
	select {
	case werr = <-done:
	case <-ctx.Done():
		werr = s.stop(cmd, done)
	}
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		s.log.Debug("kill the command's process group", "pid", cmd.Process.Pid, "err", err)
	}
	code, sig := exitStatus(cmd, werr)
	s.recordExit(exit{code: code, signal: sig, at: s.now().UTC()})
	s.log.Info("command exited", "action", "exit", "code", code, "signal", sig)
	return code, nil
}

func (s *supervisor) recordExit(ex exit) {
	s.update(func(st *Status) {
		st.PID, st.LastExitCode, st.LastSignal, st.LastExitAt = 0, ex.code, ex.signal, ex.at
		if ex.startErr != nil {
			st.Message = ex.startErr.Error()
		}
	})
}

// SetStopTimeout changes the stop timeout in container name's config, which
// a supervisor reads again when it is asked to stop (stop -t).
func SetStopTimeout(stateDir, name string, d time.Duration) error {
	cfg, err := ReadConfig(stateDir, name)
	if err != nil {
		return err
	}
	cfg.StopTimeout = Duration(d)
	cfg.Name = name
	return writeConfig(stateDir, cfg)
}
