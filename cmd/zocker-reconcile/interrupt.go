package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"github.com/spf13/cobra"
)

// ownSignals are the commands that handle SIGINT and SIGTERM themselves:
// serve stops cleanly (exit 0), logs -f ends, exec passes the command's
// status through, and the hidden helpers (supervisors, jail inits) have
// their own rules.
var ownSignals = map[string]bool{"serve": true, "logs": true, "exec": true}

// interruptible returns the context a command runs under: for the commands
// that change things (build, import, pull, load, run, apply, ...), SIGINT or
// SIGTERM cancels it, so that the command undoes its half-done work (the
// build jail removed, its processes killed, the work dataset destroyed)
// before the process exits 128+signal. A second signal exits at once.
func interruptible(cmd *cobra.Command) (ctx context.Context, got func() syscall.Signal, stop func()) {
	if cmd == nil || cmd.Hidden || ownSignals[cmd.Name()] {
		return context.Background(), func() syscall.Signal { return 0 }, func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var sig atomic.Int32
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-ch:
			sig.Store(int32(s.(syscall.Signal)))
			fmt.Fprintf(os.Stderr, "zocker-reconcile: %s: undoing the work in progress (again to exit at once)\n", signalName(s.(syscall.Signal)))
			cancel()
		case <-done:
			return
		}
		select {
		case s := <-ch:
			os.Exit(128 + int(s.(syscall.Signal)))
		case <-done:
		}
	}()
	return ctx, func() syscall.Signal { return syscall.Signal(sig.Load()) }, func() {
		signal.Stop(ch)
		close(done)
		cancel()
	}
}

func signalName(s syscall.Signal) string {
	switch s {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return s.String()
}
