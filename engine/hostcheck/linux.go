package hostcheck

// The Linux substrate checks' logic (zfs-fuse, the adapter, namespaces,
// cgroups), portable so that the tests drive it with fake hosts;
// hostcheck_linux.go lists them.

import (
	"context"
	"path/filepath"
	"strings"

	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
)

// ZFSFuse: a zfs-fuse process is running (its /proc/PID/comm).
func ZFSFuse(h *Host) Result {
	comms, _ := h.Glob("/proc/[0-9]*/comm")
	for _, c := range comms {
		b, err := h.ReadFile(c)
		if err == nil && strings.TrimSpace(string(b)) == "zfs-fuse" {
			return ok("zfs-fuse is running (pid %s)", filepath.Base(filepath.Dir(c)))
		}
	}
	return fail("start it: eval \"$(scripts/substrate.sh up POOL)\" (or zfs-fuse as root)", "no zfs-fuse process")
}

// Adapter: the zfs on PATH accepts `zfs list -p` (go-zfs needs it): the
// zfs-fuse adapter, or OpenZFS. zfs-fuse's own zfs refuses it.
func Adapter(ctx context.Context, o Options, h *Host) Result {
	pool := strings.SplitN(o.Root, "/", 2)[0]
	_, err := h.Run.Run(ctx, runner.Cmd{Argv: []string{o.ZFS, "list", "-H", "-p", "-o", "name", pool}})
	if err == nil {
		return ok("%s accepts list -p (the zfs-fuse adapter or OpenZFS)", o.ZFS)
	}
	if timedOut(err) {
		return fail(hungZFS, "%s list -p did not answer: %v", o.ZFS, err)
	}
	msg := stderrOf(err)
	if strings.Contains(msg, "does not exist") {
		return ok("%s accepts list -p (pool %s is checked below)", o.ZFS, pool)
	}
	return fail("put the zfs-fuse adapter first on PATH: eval \"$(scripts/substrate.sh up POOL)\"",
		"%s list -p fails: %s", o.ZFS, msg)
}

// Namespaces: the mount, pid, uts, ipc and net namespaces the Linux driver
// gives every container can be made here (unshare(1) runs true in them).
func Namespaces(ctx context.Context, h *Host) Result {
	_, err := h.Run.Run(ctx, runner.Cmd{Argv: []string{"unshare", "--mount", "--pid", "--uts", "--ipc", "--net", "--fork", "true"}})
	if err != nil {
		return fail("run as root on a kernel with namespaces (util-linux's unshare must be on PATH)", "unshare: %s", stderrOf(err))
	}
	return ok("mount, pid, uts, ipc and net namespaces")
}

// Cgroups: why limits would not be enforced, from the Linux driver's own
// detection (enforced, reason).
func Cgroups(enforced bool, why string) Result {
	if !enforced {
		return warn("mount the cgroup v2 hierarchy with the memory, cpu and pids controllers enabled", "%s", why)
	}
	return ok("memory, cpu and pids controllers: limits are enforced")
}
