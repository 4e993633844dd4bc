package service

import (
	"fmt"
	"strings"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/reconcile"
)

// Reasons of a container the plan has nothing to do for, but which does not
// run as declared (issue 19: Ready never hides a crash loop).
const (
	ReasonCrashLoop       = "CrashLoop"
	ReasonCommandNotFound = "CommandNotFound"
	ReasonExited          = "Exited"
	ReasonCompleted       = "Completed"
	ReasonStarting        = "Starting"
	ReasonStartFailed     = "StartFailed"
	ReasonNotRunning      = "NotRunning"
)

// exitNotStarted is the exit code a supervisor records for a command that
// could not be started (missing, not executable), as shells do.
const exitNotStarted = 127

// readiness says whether a container that should run does, as the
// supervisor last reported: Ready means its command runs and, with a health
// check, passes it. The message says why not, with what a person needs to
// act: the exit code, the restarts, when it starts again, the check's output.
func readiness(oc reconcile.ObservedContainer, now time.Time) (ready bool, reason, msg string) {
	rt := oc.Runtime
	state := rt.State
	if state == "" && oc.Running {
		state = "running" // an observation without the supervisor's details
	}
	switch state {
	case "running":
		switch oc.Health {
		case reconcile.HealthUnhealthy:
			return false, ReasonUnhealthy, unhealthyMessage(oc)
		case reconcile.HealthStarting:
			return false, ReasonHealthStarting, "health check not yet passed"
		}
		return true, ReasonInSync, ""
	case "backoff":
		next := ""
		if !rt.NextStartAt.IsZero() {
			next = fmt.Sprintf(", next in %s", max(0, rt.NextStartAt.Sub(now)).Round(time.Second))
		}
		if oc.LastExitCode == exitNotStarted {
			m := "the command could not be started"
			if rt.Message != "" {
				m = rt.Message
			}
			return false, ReasonCommandNotFound, fmt.Sprintf("%s (exit 127), %s%s", m, restarts(oc.Restarts), next)
		}
		return false, ReasonCrashLoop, fmt.Sprintf("%s, %s%s", exited(oc), restarts(oc.Restarts), next)
	case "exited":
		if oc.LastExitCode == 0 && rt.LastSignal == "" {
			return true, ReasonCompleted, "exited 0; the restart policy does not restart it"
		}
		if oc.LastExitCode == exitNotStarted {
			return false, ReasonCommandNotFound, "the command could not be started (exit 127); the restart policy does not restart it"
		}
		return false, ReasonExited, exited(oc) + "; the restart policy does not restart it"
	case "starting":
		return false, ReasonStarting, "the supervisor is starting the container"
	case "failed":
		return false, ReasonStartFailed, rt.Message
	case "dead":
		return false, ReasonNotRunning, "its supervisor died"
	}
	return false, ReasonNotRunning, "no supervisor runs it"
}

func exited(oc reconcile.ObservedContainer) string {
	if oc.Runtime.LastSignal != "" {
		return "killed by " + oc.Runtime.LastSignal
	}
	return fmt.Sprintf("exited %d", oc.LastExitCode)
}

func restarts(n int) string {
	if n == 1 {
		return "1 restart"
	}
	return fmt.Sprintf("%d restarts", n)
}

// unhealthyMessage is the last check's output (one line) with its exit code
// and the failing streak.
func unhealthyMessage(oc reconcile.ObservedContainer) string {
	rt := oc.Runtime
	out := strings.Join(strings.Fields(oc.HealthOutput), " ")
	if len(out) > 200 {
		out = out[:197] + "..."
	}
	if out == "" {
		out = "health check failing"
	}
	return fmt.Sprintf("%s (exit %d, %d failed checks in a row)", out, rt.HealthExitCode, rt.HealthStreak)
}
