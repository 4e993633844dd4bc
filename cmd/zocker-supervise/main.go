// Command zocker-supervise is the lean per-container helper that the
// zocker-reconcile service starts for every container:
//
//	zocker-supervise [--log-level L] [--log-format text|json] [--loopback-interface IF] STATE_DIR NAME
//
// It creates the container's jail, runs its command under the restart
// policy, writes its logs and runs its health checks (engine/supervisor).
// On Linux the same binary, re-executed as "__jail-init", is the jail's
// init. A host with hundreds of containers runs hundreds of these, so it
// imports nothing heavy (no CLI framework, Prometheus, YAML, ZFS or SFTP
// code: TestLean checks) and keeps its heap small.
package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"

	"github.com/zocker-reconcile/zocker-reconcile/engine/supervisor"
)

// Heap settings unless GOGC / GOMEMLIMIT are set in the environment: a
// supervisor's live heap is a few hundred kilobytes, so a tight GC target
// costs little CPU. The memory limit is only a backstop against a runaway:
// it counts every byte the runtime has mapped (GC metadata, the profiler's
// hash table, stacks), about 6 MiB in a supervisor, so a limit below that
// (4 MiB, until 2026-12-03) kept the collector running back to back and
// cost 0.3 MB of resident memory per process instead of saving any
// (BENCHMARKS.md, issue 15). GOGC 10, 50 and 100 measured within 10 % of 25.
const (
	gcPercent   = 25
	memoryLimit = 16 << 20
)

func main() {
	tuneGC()
	if len(os.Args) > 1 && os.Args[1] == helperWord {
		os.Exit(helperMain(os.Args[2:]))
	}
	os.Exit(run(os.Args[1:], os.Stderr))
}

func tuneGC() {
	// No heap profile samples: nobody reads a helper's profile, and each
	// sampled stack costs resident memory for the life of the process.
	runtime.MemProfileRate = 0
	// One P: a supervisor's work is a few system calls a second, and every
	// extra P brings threads (each with its stacks) for nothing.
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
}

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("zocker-supervise", flag.ContinueOnError)
	fs.SetOutput(stderr)
	// The service's environment is inherited: its log settings apply here too.
	level := fs.String("log-level", envOr("ZOCKER_LOG_LEVEL", "info"), "debug, info, warn or error (env ZOCKER_LOG_LEVEL)")
	format := fs.String("log-format", envOr("ZOCKER_LOG_FORMAT", "text"), "text or json (env ZOCKER_LOG_FORMAT)")
	removeWith := fs.String("remove-with", "", "the zocker-reconcile binary that removes a run --rm container once it is done")
	var opts supervisor.DriverOptions
	fs.StringVar(&opts.LoopbackInterface, "loopback-interface", "", "FreeBSD: the interface of loopback addresses when the jail spec names none")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: zocker-supervise [flags] STATE_DIR NAME (started by zocker-reconcile, not by people)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return 2
	}
	log, err := newLogger(*level, *format, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "zocker-supervise:", err)
		return 2
	}
	if err := supervisor.Main(fs.Arg(0), fs.Arg(1), opts, log); err != nil {
		fmt.Fprintln(stderr, "zocker-supervise:", err)
		return 1
	}
	if *removeWith != "" && supervisor.RemoveWanted(fs.Arg(0), fs.Arg(1)) {
		// The removal needs ZFS: the main binary's hidden command does it.
		cmd := exec.Command(*removeWith, "__remove-when-done", fs.Arg(0), fs.Arg(1))
		cmd.Stdout, cmd.Stderr = stderr, stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(stderr, "zocker-supervise: remove when done:", err)
			return 1
		}
	}
	return 0
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func newLogger(level, format string, w io.Writer) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}
