//go:build !linux

package zfs

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
)

// Holders names the processes with files open in the file system mounted at
// mountpoint: what keeps a leftover dataset busy. FreeBSD: fuser(1) -c
// writes only the PIDs on standard output (the rest goes to stderr).
func Holders(mountpoint string) []string {
	if mountpoint == "" || mountpoint == "-" || mountpoint == "none" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, _ := (&runner.Exec{}).Run(ctx, runner.Cmd{Argv: []string{"/usr/bin/fuser", "-c", mountpoint}})
	var pids []string
	for _, f := range strings.Fields(string(out)) {
		// fuser appends access letters (c, r, ...) to each PID.
		if pid := strings.TrimRight(f, "cerwtmx"); pid != "" {
			pids = append(pids, fmt.Sprintf("pid %s", pid))
		}
	}
	return pids
}
