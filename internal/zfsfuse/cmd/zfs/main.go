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
