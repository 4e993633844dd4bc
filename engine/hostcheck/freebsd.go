package hostcheck

// The FreeBSD checks' logic, portable so that it is tested on Linux with a
// recording runner; hostcheck_freebsd.go lists them.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/zocker-reconcile/zocker-reconcile/engine/jail"
	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
)

// Absolute paths doctor runs or looks for on FreeBSD.
const (
	UnamePath   = "/usr/bin/uname"
	DevfsPath   = "/sbin/devfs"
	SysrcPath   = "/usr/sbin/sysrc"
	RCScript    = "/usr/local/etc/rc.d/zocker_reconcile"
	MountNullfs = "/sbin/mount_nullfs"
)

// FreeBSDTools are the programs the service runs on FreeBSD.
var FreeBSDTools = []string{"/sbin/zfs", jail.JailPath, jail.JexecPath, jail.JlsPath, jail.RctlPath,
	MountNullfs, jail.SysctlPath, jail.UmountPath, jail.IfconfigPath, "/usr/bin/tar"}

// FreeBSDRelease: `uname -sr`; FreeBSD 13 and later are what jail(8),
// jexec -d and the rctl rules were written against.
func FreeBSDRelease(ctx context.Context, h *Host) Result {
	out, err := h.Run.Run(ctx, runner.Cmd{Argv: []string{UnamePath, "-sr"}})
	if err != nil {
		return fail("", "uname: %s", stderrOf(err))
	}
	s := strings.TrimSpace(string(out))
	f := strings.Fields(s)
	if len(f) != 2 || f[0] != "FreeBSD" {
		return fail("run zocker-reconcile on FreeBSD (the Linux driver is for tests and demos)", "%s", s)
	}
	major, err := strconv.Atoi(strings.SplitN(f[1], ".", 2)[0])
	if err != nil || major < 13 {
		return warn("upgrade to a supported release (13.x or later)", "%s: older than the releases this was written for", s)
	}
	return ok("%s", s)
}

// Racct: kern.racct.enable is 1; otherwise resource limits are not
// enforced (containers still run).
func Racct(ctx context.Context, h *Host) Result {
	const fix = "echo kern.racct.enable=1 >> /boot/loader.conf and reboot (resource limits need it)"
	out, err := h.Run.Run(ctx, runner.Cmd{Argv: jail.RacctArgv()})
	if err != nil {
		if strings.Contains(stderrOf(err), "unknown oid") {
			return warn("a kernel with options RACCT and RCTL (GENERIC has them)", "this kernel has no RACCT: limits are not enforced")
		}
		return fail("", "sysctl %s: %s", jail.RacctSysctl, stderrOf(err))
	}
	on, err := jail.ParseRacct(out)
	if err != nil {
		return fail("", "%v", err)
	}
	if !on {
		return warn(fix, "%s is 0: memory, cpu and maxProcesses limits are not enforced", jail.RacctSysctl)
	}
	return ok("%s is 1: limits are enforced with rctl", jail.RacctSysctl)
}

// DevfsRuleset: ruleset 4 (devfsrules_jail) is loaded; every container's
// /dev is mounted with it.
func DevfsRuleset(ctx context.Context, h *Host) Result {
	const fix = "sysrc devfs_load_rulesets=YES && service devfs restart (ruleset 4 is devfsrules_jail in /etc/defaults/devfs.rules)"
	out, err := h.Run.Run(ctx, runner.Cmd{Argv: []string{DevfsPath, "rule", "-s", strconv.Itoa(jail.DefaultDevfsRuleset), "show"}})
	if err != nil {
		return fail(fix, "devfs ruleset %d: %s", jail.DefaultDevfsRuleset, stderrOf(err))
	}
	n := len(strings.Fields(strings.TrimSpace(string(out))))
	if n == 0 {
		return fail(fix, "devfs ruleset %d is empty or not loaded: a jail's /dev would show every device", jail.DefaultDevfsRuleset)
	}
	return ok("devfs ruleset %d loaded (%d rules)", jail.DefaultDevfsRuleset, strings.Count(strings.TrimSpace(string(out)), "\n")+1)
}

// Jails lists the running jails (for the loopback pool check).
func Jails(ctx context.Context, h *Host) ([]jail.Info, error) {
	out, err := h.Run.Run(ctx, runner.Cmd{Argv: jail.JLSArgv()})
	if err != nil {
		return nil, fmt.Errorf("jls: %s", stderrOf(err))
	}
	return jail.ParseJLS(out)
}

// RCService: the rc.d script is installed, executable, and enabled.
func RCService(ctx context.Context, h *Host) Result {
	fi, err := h.Stat(RCScript)
	if err != nil || fi.Mode().Perm()&0o111 == 0 {
		return warn("gmake install PREFIX=/usr/local (installs "+RCScript+")", "%s is not installed", RCScript)
	}
	out, err := h.Run.Run(ctx, runner.Cmd{Argv: []string{SysrcPath, "-n", "zocker_reconcile_enable"}})
	var ce *runner.CommandError
	if err != nil && !errors.As(err, &ce) {
		return fail("", "sysrc: %v", err)
	}
	if v := strings.TrimSpace(string(out)); err != nil || !strings.EqualFold(v, "YES") {
		return warn("sysrc zocker_reconcile_enable=YES", "%s installed but not enabled", RCScript)
	}
	return ok("%s installed and enabled", RCScript)
}
