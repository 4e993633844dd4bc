package supervisor

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/engine/jail"
)

// maxHealthOutput bounds the check output kept in the status file.
const maxHealthOutput = 4096

// healthLoop runs the health check every interval while the command runs
// (until ctx ends). One passing check makes the container healthy; Retries
// consecutive failures make it unhealthy (Docker's rule, so a container that
// depends on this one starts as soon as it answers).
func (s *supervisor) healthLoop(ctx context.Context) {
	hc := s.cfg.Healthcheck
	t := time.NewTicker(hc.Interval.D())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		code, out := s.check(ctx, hc)
		if ctx.Err() != nil {
			return // the command is stopping: this result means nothing
		}
		at := s.now().UTC()
		s.update(func(st *Status) {
			h := &st.Health
			prev := h.Status
			h.LastCheckAt, h.LastExitCode, h.LastOutput = at, code, out
			if code == 0 {
				h.FailingStreak = 0
				h.Status = HealthHealthy
			} else {
				h.FailingStreak++
				if h.FailingStreak >= hc.Retries {
					h.Status = HealthUnhealthy
				}
			}
			if h.Status != prev {
				s.log.Info("health changed", "action", "health", "health", h.Status, "exit", code)
			}
		})
	}
}

// check runs the health check command once, killing it after the timeout.
// It returns the exit code (-1 for a timeout, 127 when it could not start)
// and the output, truncated.
func (s *supervisor) check(ctx context.Context, hc *Healthcheck) (int, string) {
	p := jail.Process{Argv: hc.Argv, Env: s.cfg.Process.Env, User: s.cfg.Process.User, Workdir: s.cfg.Process.Workdir}
	cmd, err := s.driver.Command(s.cfg.Jail.Name, p)
	if err != nil {
		return 127, truncate(fmt.Sprintf("health check of container %s: %v", s.cfg.Name, err))
	}
	var out bytes.Buffer
	cmd.Stdin = nil
	cmd.Stdout = &limitedBuffer{buf: &out, max: maxHealthOutput}
	cmd.Stderr = cmd.Stdout
	// A check that leaves a child holding its output must not hang us.
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return 127, truncate(fmt.Sprintf("health check of container %s: %v", s.cfg.Name, err))
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t := time.NewTimer(hc.Timeout.D())
	defer t.Stop()
	select {
	case err = <-done:
	case <-t.C:
		_ = cmd.Process.Kill()
		<-done
		return -1, truncate(fmt.Sprintf("health check timed out after %s\n%s", hc.Timeout.D(), out.String()))
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-done
		return -1, ""
	}
	if cmd.ProcessState == nil {
		return 127, truncate(fmt.Sprintf("health check of container %s: %v\n%s", s.cfg.Name, err, out.String()))
	}
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	code, _ := exitStatus(ws)
	return code, truncate(out.String())
}

func truncate(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > maxHealthOutput {
		s = s[:maxHealthOutput]
	}
	return s
}

// limitedBuffer keeps the first max bytes written and discards the rest
// (without failing the writer, which would kill the check).
type limitedBuffer struct {
	buf *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.buf.Len(); room > 0 {
		if len(p) > room {
			l.buf.Write(p[:room])
		} else {
			l.buf.Write(p)
		}
	}
	return len(p), nil
}
