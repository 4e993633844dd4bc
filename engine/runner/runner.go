// Package runner runs every external command of zocker-reconcile: argv only
// (never a shell), a context with a timeout, a debug log line per command, and
// errors that carry the argv and stderr.
package runner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"strings"
	"sync/atomic"
	"time"
)

// DefaultTimeout bounds a command that was given no deadline: a hung zfs or
// jail must never hang the service.
const DefaultTimeout = 2 * time.Minute

// Cmd is one command to run.
type Cmd struct {
	// Argv is the program (an absolute path on FreeBSD) and its arguments.
	Argv []string
	// Stdin, if set, feeds the command; Stdout, if set, receives its output
	// instead of the returned buffer.
	Stdin  io.Reader
	Stdout io.Writer
	// Env, if set, replaces the environment.
	Env []string
	// Dir is the working directory.
	Dir string
	// Timeout overrides DefaultTimeout; negative means none (streams).
	Timeout time.Duration
}

// Runner runs commands. Exec is the real one; tests substitute a counting or
// recording one.
type Runner interface {
	Run(ctx context.Context, c Cmd) ([]byte, error)
}

// CommandError is returned when a command fails to start or exits non-zero.
type CommandError struct {
	Argv     []string
	Stderr   string
	ExitCode int // -1 when it did not start or was killed
	Err      error
}

func (e *CommandError) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if msg == "" {
		msg = e.Err.Error()
	}
	return fmt.Sprintf("%s: %s", strings.Join(e.Argv, " "), msg)
}

func (e *CommandError) Unwrap() error { return e.Err }

// Exec runs commands with os/exec.
type Exec struct {
	Logger *slog.Logger
	// Count counts every command started (for the "commands per pass" checks).
	Count atomic.Int64
}

// Run runs c and returns its standard output (nil when c.Stdout is set).
func (r *Exec) Run(ctx context.Context, c Cmd) ([]byte, error) {
	if len(c.Argv) == 0 {
		return nil, errors.New("runner: empty argv")
	}
	timeout := c.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, c.Argv[0], c.Argv[1:]...)
	cmd.WaitDelay = 5 * time.Second
	cmd.Stdin = c.Stdin
	cmd.Dir = c.Dir
	if c.Env != nil {
		cmd.Env = c.Env
	}
	var stdout, stderr bytes.Buffer
	if c.Stdout != nil {
		cmd.Stdout = c.Stdout
	} else {
		cmd.Stdout = &stdout
	}
	cmd.Stderr = &stderr
	if r.Logger != nil {
		r.Logger.Debug("exec", "argv", c.Argv)
	}
	r.Count.Add(1)
	if err := cmd.Run(); err != nil {
		ce := &CommandError{Argv: c.Argv, Stderr: stderr.String(), ExitCode: -1, Err: err}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			ce.ExitCode = ee.ExitCode()
		}
		if ctx.Err() != nil {
			ce.Err = fmt.Errorf("%w (after %s)", ctx.Err(), timeout)
		}
		return nil, ce
	}
	if c.Stdout != nil {
		return nil, nil
	}
	return stdout.Bytes(), nil
}
