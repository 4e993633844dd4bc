//go:build linux

package bench

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/engine/supervisor"
	"github.com/zocker-reconcile/zocker-reconcile/internal/testenv"
)

// phases of one manifest-to-running run, from serve's and the supervisor's
// debug logs (millisecond timestamps in the text format, nanoseconds in
// JSON: the benchmark uses JSON).
type phases struct {
	event    time.Duration // rename -> fsnotify event logged by serve
	debounce time.Duration // rename -> the pass's observation command starts (debounce + manifest load)
	observe  time.Duration // observation command -> "pass planned" (zfs get, driver listing, diff)
	queue    time.Duration // planned -> the create action begins
	clone    time.Duration // the create action begins -> "created container" (zfs clone with its properties)
	jail     time.Duration // "created container" -> supervisor logs "jail created" (the start's own observe, spawning the supervisor, namespaces)
	exec     time.Duration // "jail created" -> "command started"
	total    time.Duration // rename -> status.json says running (polled every 2 ms)
}

// BenchmarkManifestToRunning is the latency from a container manifest
// renamed into the watched directory to its process running, through the
// real serve binary on zfs-fuse with the Linux driver. Each run is one new
// container; there are at least 20 runs (b.N when larger), so run it with
// -benchtime=1x: one serve process, 20 runs, ns/op is the whole series.
func BenchmarkManifestToRunning(b *testing.B) {
	s := startServe(b, "debug", 10*time.Minute)
	// Warm-up: a first container (startServe waited for the image import).
	s.write(b, "warm", container("warm"))
	s.waitRunning(b, "warm", 3*time.Minute)
	time.Sleep(500 * time.Millisecond)

	var runs []phases
	n := max(b.N, 20)
	b.ResetTimer()
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("lat%d-%s", i, testenv.RandomHex(2))
		t0 := s.write(b, name, container(name))
		tRun := s.waitRunning(b, name, time.Minute)
		b.StopTimer()
		// The status file says running before the action's own log line.
		s.waitLog(b, t0, time.Minute, func(r record) bool { return r.Msg == "action" && r.Container == name })
		runs = append(runs, s.phasesOf(b, name, t0, tRun))
		// Let the pass finish its bookkeeping before the next write.
		time.Sleep(300 * time.Millisecond)
		b.StartTimer()
	}
	b.StopTimer()
	report := func(unit string, f func(p phases) time.Duration) {
		var ds []time.Duration
		for _, p := range runs {
			ds = append(ds, f(p))
		}
		b.ReportMetric(ms(percentile(ds, 0.5)), unit+"-p50-ms")
	}
	report("total", func(p phases) time.Duration { return p.total })
	b.ReportMetric(ms(percentileOf(runs, func(p phases) time.Duration { return p.total }, 0.95)), "total-p95-ms")
	report("event", func(p phases) time.Duration { return p.event })
	report("debounce", func(p phases) time.Duration { return p.debounce })
	report("observe", func(p phases) time.Duration { return p.observe })
	report("queue", func(p phases) time.Duration { return p.queue })
	report("clone", func(p phases) time.Duration { return p.clone })
	report("jail", func(p phases) time.Duration { return p.jail })
	report("exec", func(p phases) time.Duration { return p.exec })
}

func percentileOf(runs []phases, f func(phases) time.Duration, p float64) time.Duration {
	var ds []time.Duration
	for _, r := range runs {
		ds = append(ds, f(r))
	}
	return percentile(ds, p)
}

// phasesOf splits one run using the log lines at or after t0. The plan's
// one "create" action clones and then starts the container (the engine logs
// "created container" between the two); the supervisor logs "jail created"
// and "command started" in its own log.
func (s *service) phasesOf(b *testing.B, name string, t0, tRun time.Time) phases {
	b.Helper()
	var p phases
	var evAt, obsAt, planAt, actBegin, clonedAt time.Time
	for _, r := range readLog(b, s.logPath) {
		if r.Time.Before(t0) {
			continue
		}
		switch {
		case r.Msg == "manifest event" && evAt.IsZero():
			evAt = r.Time
		case r.isCommand() && obsAt.IsZero() && strings.Contains(" "+r.command()+" ", " get "):
			obsAt = r.Time
		case r.Msg == "pass planned" && !obsAt.IsZero() && planAt.IsZero():
			planAt = r.Time
		case r.Msg == "created container" && r.Container == name && clonedAt.IsZero():
			clonedAt = r.Time
		case r.Msg == "action" && r.Container == name && r.Action == "create":
			actBegin = r.Time.Add(-time.Duration(r.Duration))
		}
	}
	// The supervisor may write its status file before its log line.
	var jailAt, cmdAt time.Time
	for deadline := time.Now().Add(5 * time.Second); cmdAt.IsZero() && time.Now().Before(deadline); {
		for _, r := range readLog(b, filepath.Join(supervisor.Dir(s.state, name), "supervisor.log")) {
			switch {
			case r.Msg == "jail created" && jailAt.IsZero():
				jailAt = r.Time
			case r.Msg == "command started" && cmdAt.IsZero():
				cmdAt = r.Time
			}
		}
		if cmdAt.IsZero() {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if evAt.IsZero() || obsAt.IsZero() || planAt.IsZero() || actBegin.IsZero() || clonedAt.IsZero() || jailAt.IsZero() || cmdAt.IsZero() {
		b.Fatalf("run %s: missing log lines: event %v observe %v planned %v action %v cloned %v jail %v command %v",
			name, evAt, obsAt, planAt, actBegin, clonedAt, jailAt, cmdAt)
	}
	p.event = evAt.Sub(t0)
	p.debounce = obsAt.Sub(t0)
	p.observe = planAt.Sub(obsAt)
	// The action's duration is logged rounded to the millisecond.
	p.queue = max(actBegin.Sub(planAt), 0)
	from := actBegin
	if from.Before(planAt) {
		from = planAt
	}
	p.clone = clonedAt.Sub(from)
	p.jail = jailAt.Sub(clonedAt)
	p.exec = cmdAt.Sub(jailAt)
	p.total = tRun.Sub(t0)
	b.Logf("%s: total %s = debounce %s (event %s), observe %s, queue %s, clone %s, jail %s, exec %s, status %s",
		name, p.total.Round(time.Millisecond), p.debounce.Round(time.Millisecond), p.event.Round(time.Millisecond),
		p.observe.Round(time.Millisecond), p.queue.Round(time.Millisecond), p.clone.Round(time.Millisecond),
		p.jail.Round(time.Millisecond), p.exec.Round(time.Millisecond), tRun.Sub(cmdAt).Round(time.Millisecond))
	return p
}
