package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/zocker-reconcile/zocker-reconcile/engine/supervisor"
	"github.com/zocker-reconcile/zocker-reconcile/image"
)

func init() {
	register(func(g *globals) *cobra.Command {
		var follow bool
		var tail int
		cmd := &cobra.Command{
			Use:   "logs [-f] [--tail N] NAME",
			Short: "Print a container's log",
			Long: `logs prints a container's log: its command's stdout and stderr, one line per
output line, prefixed with the UTC time and the stream. The log is capped in
size and rotated (log, log.1, ...) under STATE/containers/NAME; the rotated
files are read too.`,
			Example: `  zocker-reconcile logs web
  zocker-reconcile logs --tail 20 -f web`,
			Args: needs(1, "a container NAME"),
			RunE: func(cmd *cobra.Command, args []string) error {
				return runLogs(cmd.Context(), g, args[0], tail, follow)
			},
		}
		cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing lines as they are written, until interrupted")
		cmd.Flags().IntVar(&tail, "tail", -1, "print only the last N lines (-1: all)")
		return cmd
	})
}

func runLogs(ctx context.Context, g *globals, name string, tail int, follow bool) error {
	if ctx == nil {
		ctx = context.Background()
	}
	// The name becomes a path under the state directory: checked first.
	if err := image.ValidName("container", name); err != nil {
		return err
	}
	dir := supervisor.Dir(g.stateDir, name)
	if _, err := os.Stat(dir); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("logs of container %s: no such container in %s", name, g.stateDir)
		}
		return fmt.Errorf("logs of container %s: %w", name, err)
	}
	path := supervisor.LogPath(g.stateDir, name)
	if follow {
		ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
		if err := supervisor.Follow(ctx, path, tail, g.stdout); err != nil {
			return fmt.Errorf("logs of container %s: %w", name, err)
		}
		return nil
	}
	if tail == 0 {
		return nil
	}
	n := tail
	if n < 0 {
		n = 0 // Tail's "every line kept"
	}
	lines, err := supervisor.Tail(path, n)
	if errors.Is(err, supervisor.ErrNotFound) {
		return nil // the container has not written anything yet
	}
	if err != nil {
		return fmt.Errorf("logs of container %s: %w", name, err)
	}
	for _, l := range lines {
		if _, err := fmt.Fprintln(g.stdout, l); err != nil {
			return err
		}
	}
	return nil
}
