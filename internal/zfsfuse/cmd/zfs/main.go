// Command zfs is the zfs-fuse adapter (package internal/zfsfuse): put first on
// PATH, it rewrites the `zfs list -Hp` calls zfs-fuse refuses and execs the
// real zfs, named by ZOCKER_REAL_ZFS (default /usr/sbin/zfs), for everything else.
package main

import (
	"fmt"
	"os"
	"syscall"

	"github.com/zocker-reconcile/zocker-reconcile/internal/zfsfuse"
)

func main() {
	realZFS := os.Getenv("ZOCKER_REAL_ZFS")
	if realZFS == "" {
		realZFS = "/usr/sbin/zfs"
	}
	// Never exec ourselves: with ZOCKER_REAL_ZFS pointing at the adapter
	// (or a PATH lookup that found it) that would loop forever.
	if self, err := os.Executable(); err == nil {
		if a, errA := os.Stat(self); errA == nil {
			if b, errB := os.Stat(realZFS); errB == nil && os.SameFile(a, b) {
				fmt.Fprintf(os.Stderr, "zfs-fuse adapter: ZOCKER_REAL_ZFS=%s is the adapter itself; point it at the real zfs\n", realZFS)
				os.Exit(2)
			}
		}
	}
	args := os.Args[1:]
	plan, err := zfsfuse.Translate(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if plan.Passthrough {
		// Exec rather than wrap: stdin, stdout, signals and the exit status
		// (send/receive streams) stay exactly the real command's.
		err := syscall.Exec(realZFS, append([]string{realZFS}, args...), os.Environ())
		fmt.Fprintf(os.Stderr, "zfs-fuse adapter: exec %s: %v\n", realZFS, err)
		os.Exit(127)
	}
	os.Exit(zfsfuse.Run(realZFS, plan, os.Stdout, os.Stderr))
}
