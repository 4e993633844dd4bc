//go:build linux

package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/engine/supervisor"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat: 100
// on every Linux architecture Go supports.
const clockTicks = 100

// BenchmarkServeIdle declares containers in steps (10, 100, then
// ZOCKER_BENCH_IDLE_N, default 200) to one serve process and measures:
//   - how long each step takes to converge (every container running);
//   - the external commands of a no-op pass (forced with SIGHUP) at 10 and
//     100 containers, counted from the debug log lines "exec" (the runner)
//     and "go-zfs";
//   - at the last step, over a 60 s window (ZOCKER_BENCH_IDLE_WINDOW) with
//     --resync 30s, the CPU time of the serve process (utime+stime from
//     /proc/PID/stat) and its RSS (VmRSS), then the CPU of one full pass
//     (forced with SIGHUP: the same load, observe and plan as a resync).
//
// It is long (minutes): run it with -benchtime=1x.
func BenchmarkServeIdle(b *testing.B) {
	total := envInt("ZOCKER_BENCH_IDLE_N", 200)
	window := 60 * time.Second
	if v := os.Getenv("ZOCKER_BENCH_IDLE_WINDOW"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("ZOCKER_BENCH_IDLE_WINDOW: %v", err)
		}
		window = d
	}
	for i := 0; i < b.N; i++ {
		s := startServe(b, "debug", 30*time.Second)
		declared, prev := 0, 0
		for _, n := range steps(total) {
			start := time.Now()
			for ; declared < n; declared++ {
				name := fmt.Sprintf("idle%03d", declared)
				s.write(b, name, container(name))
			}
			s.waitAllRunning(b, declared, 20*time.Minute)
			took := time.Since(start)
			b.Logf("%d containers converged; the last %d took %s", n, n-prev, took.Round(time.Second))
			prev = n
			b.ReportMetric(took.Seconds(), fmt.Sprintf("converge-to-%d-s", n))
			if n == 10 || n == 100 {
				b.ReportMetric(float64(s.noopPassCommands(b)), fmt.Sprintf("cmds/noop-pass-%d", n))
			}
		}
		s.measureIdle(b, total, window)
	}
}

// steps are the container counts declared in turn: 10, 100, total (the
// ones not above total).
func steps(total int) []int {
	var out []int
	for _, n := range []int{10, 100} {
		if n < total {
			out = append(out, n)
		}
	}
	return append(out, total)
}

// waitAllRunning waits until n supervisors report their command running.
func (s *service) waitAllRunning(b *testing.B, n int, timeout time.Duration) {
	b.Helper()
	deadline := time.Now().Add(timeout)
	last := -1
	for time.Now().Before(deadline) {
		st, err := supervisor.List(s.state)
		if err != nil && !os.IsNotExist(err) {
			b.Fatal(err)
		}
		running := 0
		for _, c := range st {
			if c.State == supervisor.StateRunning && c.Alive {
				running++
			}
		}
		if running >= n {
			return
		}
		if running != last && running%50 == 0 {
			b.Logf("%d of %d running", running, n)
		}
		last = running
		if s.cmd.ProcessState != nil {
			b.Fatalf("serve exited: %v", s.cmd.ProcessState)
		}
		time.Sleep(500 * time.Millisecond)
	}
	b.Fatalf("%d containers not all running after %s", n, timeout)
}

// noopPassCommands forces a pass with SIGHUP once nothing is left to do and
// counts the external commands logged from the SIGHUP to the end of the
// pass (half a second after "pass planned", which catches any action).
func (s *service) noopPassCommands(b *testing.B) int {
	b.Helper()
	for attempt := 0; attempt < 5; attempt++ {
		since := time.Now()
		if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			b.Fatal(err)
		}
		planned := s.waitLog(b, since, time.Minute, func(r record) bool {
			return r.Msg == "pass planned" && r.Trigger == "sighup"
		})
		time.Sleep(time.Second)
		var hup time.Time
		cmds, passes := 0, 0
		var argv []string
		for _, r := range readLog(b, s.logPath) {
			if r.Time.Before(since) {
				continue
			}
			if r.Msg == "SIGHUP: reloading the manifests" && hup.IsZero() {
				hup = r.Time
			}
			if r.Msg == "pass planned" {
				passes++
			}
			if !hup.IsZero() && r.isCommand() && !r.Time.After(planned.Time.Add(500*time.Millisecond)) &&
				!strings.HasSuffix(r.Cmd, " FINISH") {
				cmds++
				argv = append(argv, r.command())
			}
		}
		if planned.Items == nil || *planned.Items != 0 || passes != 1 {
			b.Logf("pass after SIGHUP not a lone no-op (items %s, passes %d); again", itemsOf(planned), passes)
			time.Sleep(2 * time.Second)
			continue
		}
		b.Logf("no-op pass: %d commands: %q", cmds, argv)
		return cmds
	}
	b.Fatal("no lone no-op pass after 5 SIGHUPs")
	return 0
}

// measureIdle samples the serve process's CPU time every second over the
// window, starting right after a resync pass, and its RSS at the end.
func (s *service) measureIdle(b *testing.B, n int, window time.Duration) {
	b.Helper()
	pid := s.cmd.Process.Pid
	since := time.Now()
	// Start the window just after a periodic pass, so that the window holds
	// the time between resyncs and the passes of a 30 s period.
	s.waitLog(b, since, 2*time.Minute, func(r record) bool {
		return r.Msg == "pass planned" && r.Trigger == "periodic"
	})
	time.Sleep(time.Second)
	t0 := time.Now()
	c0 := cpuTicks(b, pid)
	var deltas []int
	prev := c0
	for time.Since(t0) < window {
		time.Sleep(time.Second)
		c := cpuTicks(b, pid)
		deltas = append(deltas, c-prev)
		prev = c
	}
	elapsed := time.Since(t0)
	cpu := time.Duration(prev-c0) * time.Second / clockTicks
	passes, cmds := 0, 0
	for _, r := range readLog(b, s.logPath) {
		if r.Time.Before(t0) || r.Time.After(t0.Add(elapsed)) {
			continue
		}
		if r.Msg == "pass planned" {
			passes++
		}
		if r.isCommand() && !strings.HasSuffix(r.Cmd, " FINISH") {
			cmds++
		}
	}
	rss := rssKB(b, pid)
	// Between resyncs: the median one-second sample (most seconds hold no
	// pass).
	sorted := append([]int(nil), deltas...)
	sort.Ints(sorted)
	base := sorted[len(sorted)/2]
	b.Logf("idle with %d containers over %s: CPU %s (%.3f%%), %d passes planned, %d commands, per-second ticks %v, RSS %d kB",
		n, elapsed.Round(time.Millisecond), cpu, 100*cpu.Seconds()/elapsed.Seconds(), passes, cmds, deltas, rss)
	b.ReportMetric(100*cpu.Seconds()/elapsed.Seconds(), "idle-cpu-%")
	b.ReportMetric(float64(base)*1000/clockTicks, "between-resync-cpu-ms/s")
	b.ReportMetric(float64(passes), "resyncs-in-window")
	b.ReportMetric(float64(rss)/1024, "rss-MB")
	b.ReportMetric(float64(s.passCPU(b, pid).Microseconds())/1000, "cpu-ms/resync")
	// The helpers of the idle containers, measured after the window (by
	// then past the runtime's forced GC of each): what the host pays for
	// them on top of the service.
	sup, init, alive := helperPSS(b, s.state)
	b.Logf("helpers of %d live containers: supervisors %d kB, jail inits %d kB (Pss)", alive, sup, init)
	b.ReportMetric(float64(sup+init)/1024, "helpers-pss-total-MB")
}

// passCPU is the CPU time of serve for one full pass, the work of every
// resync (load, observe, plan): a pass forced with SIGHUP, measured from
// just before the signal to just after "pass planned", the median of three.
func (s *service) passCPU(b *testing.B, pid int) time.Duration {
	b.Helper()
	var ds []time.Duration
	for i := 0; i < 3; i++ {
		since := time.Now()
		c0 := cpuTicks(b, pid)
		if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			b.Fatal(err)
		}
		s.waitLog(b, since, time.Minute, func(r record) bool {
			return r.Msg == "pass planned" && r.Trigger == "sighup"
		})
		time.Sleep(200 * time.Millisecond)
		ds = append(ds, time.Duration(cpuTicks(b, pid)-c0)*time.Second/clockTicks)
		time.Sleep(time.Second)
	}
	b.Logf("CPU of three forced passes: %v", ds)
	return percentile(ds, 0.5)
}

// cpuTicks is utime+stime of a process, in clock ticks (/proc/PID/stat
// fields 14 and 15, counted after the parenthesised command name).
func cpuTicks(b *testing.B, pid int) int {
	b.Helper()
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		b.Fatal(err)
	}
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	// After ")": state is field 3, so utime (14) and stime (15) are at 11, 12.
	u, err1 := strconv.Atoi(fields[11])
	st, err2 := strconv.Atoi(fields[12])
	if err1 != nil || err2 != nil {
		b.Fatalf("parse /proc/%d/stat: %q", pid, s)
	}
	return u + st
}

// rssKB is VmRSS from /proc/PID/status.
func rssKB(b *testing.B, pid int) int {
	b.Helper()
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			if err != nil {
				b.Fatalf("parse VmRSS %q: %v", line, err)
			}
			return kb
		}
	}
	b.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

func envInt(name string, def int) int {
	if v := os.Getenv(name); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			return n
		}
	}
	return def
}

// itemsOf is the items count of a "pass planned" record, for messages.
func itemsOf(r record) string {
	if r.Items == nil {
		return "none"
	}
	return strconv.Itoa(*r.Items)
}
