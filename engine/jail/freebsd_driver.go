//go:build linux || freebsd

// The FreeBSD driver is compiled on Linux too, although it only works on
// FreeBSD: every command it runs goes through the runner, so its command
// sequences (create, undo, remove) are tested on Linux with a recording
// runner. Wire it in only on FreeBSD.

package jail

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
	"github.com/zocker-reconcile/zocker-reconcile/internal/atomicfile"
)

// FreeBSDOptions tune the FreeBSD driver.
type FreeBSDOptions struct {
	// LoopbackInterface carries loopback-mode addresses (--loopback-interface);
	// "" means lo0.
	LoopbackInterface string
	// HostFiles are copied into the jail root at every start; nil means
	// DefaultHostFiles, an empty non-nil slice copies nothing.
	HostFiles []string
	// Probe reads mount points and interface addresses for the sweep; nil
	// means the host's (statfs(2), getifaddrs(3)). Tests give a fake.
	Probe HostProbe
}

// HostProbe is what the sweep reads of the host besides running commands.
type HostProbe interface {
	// MountedAt reports the file system type mounted exactly at p.
	MountedAt(p string) (fstype string, on bool, err error)
	// HasAddr reports whether iface carries addr.
	HasAddr(iface, addr string) (bool, error)
}

// FreeBSD is the jail(8) driver: a generated jail.conf and fstab per
// container in STATE/jails, `jail -c` / `jail -r`, jexec for commands, jls
// for listings and rctl for limits. It is safe for concurrent use.
type FreeBSD struct {
	stateDir string
	run      runner.Runner
	log      *slog.Logger
	opts     FreeBSDOptions

	mu sync.Mutex
	// racct caches kern.racct.enable (a boot-time tunable: it cannot change
	// while we run); nil until probed.
	racct *bool
	// jexecWorkdir caches whether jexec has -d; nil until probed.
	jexecWorkdir *bool
	// limits records, per jail with limits, whether they are enforced.
	limits map[string]bool
	// mounted reports the file system mounted exactly at a path
	// (mountedAt; tests replace it).
	mounted func(p string) (fstype string, on bool, err error)
	// hasAddr reports whether an interface carries an address
	// (ifaceHasAddr; tests replace it).
	hasAddr func(iface, addr string) (bool, error)
}

var _ Driver = (*FreeBSD)(nil)

// NewFreeBSD returns the FreeBSD driver writing its files under stateDir
// and running every command through r.
func NewFreeBSD(stateDir string, r runner.Runner, log *slog.Logger, opts FreeBSDOptions) *FreeBSD {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.HostFiles == nil {
		opts.HostFiles = DefaultHostFiles
	}
	d := &FreeBSD{stateDir: stateDir, run: r, log: log, opts: opts, limits: map[string]bool{},
		mounted: mountedAt, hasAddr: ifaceHasAddr}
	if opts.Probe != nil {
		d.mounted, d.hasAddr = opts.Probe.MountedAt, opts.Probe.HasAddr
	}
	return d
}

func (d *FreeBSD) jailsDir() string             { return filepath.Join(d.stateDir, "jails") }
func (d *FreeBSD) confPath(name string) string  { return filepath.Join(d.jailsDir(), name+".conf") }
func (d *FreeBSD) fstabPath(name string) string { return filepath.Join(d.jailsDir(), name+".fstab") }

// LimitsEnforced reports whether resource limits are in force on this host:
// false with a reason when kern.racct.enable is 0 (or could not be read),
// in which case containers still start and their status must say so.
func (d *FreeBSD) LimitsEnforced() (bool, string) {
	on, err := d.racctEnabled(context.Background())
	if err != nil {
		return false, fmt.Sprintf("limits not enforced: %v", err)
	}
	if !on {
		return false, "limits not enforced: kern.racct.enable is 0 (set kern.racct.enable=1 in /boot/loader.conf and reboot)"
	}
	return true, ""
}

// JailLimitsEnforced reports, for a jail created by this driver with
// limits, whether its rctl rules were installed; ok is false when the jail
// has no limits or is unknown.
func (d *FreeBSD) JailLimitsEnforced(name string) (enforced, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	enforced, ok = d.limits[name]
	return enforced, ok
}

func (d *FreeBSD) racctEnabled(ctx context.Context) (bool, error) {
	d.mu.Lock()
	if d.racct != nil {
		v := *d.racct
		d.mu.Unlock()
		return v, nil
	}
	d.mu.Unlock()
	out, err := d.run.Run(ctx, runner.Cmd{Argv: RacctArgv()})
	on := false
	if err == nil {
		on, err = ParseRacct(out)
	} else {
		// A kernel built without RACCT has no such sysctl: limits are off.
		var ce *runner.CommandError
		if errors.As(err, &ce) && strings.Contains(ce.Stderr, "unknown oid") {
			err = nil
		}
	}
	if err != nil {
		return false, fmt.Errorf("read %s: %w", RacctSysctl, err)
	}
	d.mu.Lock()
	d.racct = &on
	d.mu.Unlock()
	return on, nil
}

// Create writes the jail's conf and fstab, prepares its root (mount points,
// host files) and runs `jail -f CONF -c NAME`, then installs rctl rules
// when the spec has limits and racct is on. On failure, what was done is
// undone.
func (d *FreeBSD) Create(ctx context.Context, s Spec) (err error) {
	log := d.log.With("container", s.Name, "action", "create")
	conf, err := RenderConf(s, ConfOptions{FstabPath: d.fstabPath(s.Name), LoopbackInterface: d.opts.LoopbackInterface})
	if err != nil {
		return err
	}
	fstab, err := RenderFstab(s)
	if err != nil {
		return err
	}
	record, err := newJailRecord(s, d.opts.LoopbackInterface)
	if err != nil {
		return fmt.Errorf("create jail %s: %w", s.Name, err)
	}
	recordJSON, err := json.Marshal(record)
	if err != nil {
		return fmt.Errorf("create jail %s: %w", s.Name, err)
	}
	confPath, fstabPath, recordPath := d.confPath(s.Name), d.fstabPath(s.Name), d.recordPath(s.Name)
	if _, err := os.Stat(confPath); err == nil {
		// Our files exist: either the jail runs (then they are what
		// `jail -r` needs, and must not be overwritten or deleted) or it
		// vanished without us (a crash, a `jail -r` from outside), leaving
		// its mounts and aliases. Checked before the root is touched.
		running, err := d.jailRunning(ctx, s.Name)
		if err != nil {
			return fmt.Errorf("create jail %s: %w", s.Name, err)
		}
		if running {
			return fmt.Errorf("create jail %s: a jail of that name is already running", s.Name)
		}
		if err := d.sweep(ctx, s.Name); err != nil {
			return fmt.Errorf("create jail %s: %w", s.Name, err)
		}
	}
	// jail(8) creates no mount point (command.c check_path): an image
	// without /dev could not mount devfs.
	if err := MkdirInRoot(s.Root, "/dev"); err != nil {
		return fmt.Errorf("create jail %s: %w", s.Name, err)
	}
	for _, m := range s.Mounts {
		fi, err := os.Stat(m.Source)
		if err != nil {
			return fmt.Errorf("create jail %s: volume source: %w", s.Name, err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("create jail %s: volume source %s is not a directory (nullfs mounts directories)", s.Name, m.Source)
		}
		if err := MkdirInRoot(s.Root, m.Target); err != nil {
			return fmt.Errorf("create jail %s: %w", s.Name, err)
		}
	}
	if err := CopyHostFiles(s.Root, d.opts.HostFiles); err != nil {
		return fmt.Errorf("create jail %s: %w", s.Name, err)
	}
	if err := d.jailResolvConf(s); err != nil {
		return fmt.Errorf("create jail %s: %w", s.Name, err)
	}

	if err := os.MkdirAll(d.jailsDir(), 0o700); err != nil {
		return fmt.Errorf("create jail %s: state directory: %w", s.Name, err)
	}
	if err := atomicfile.Write(recordPath, recordJSON, 0o644); err != nil {
		return fmt.Errorf("create jail %s: %w", s.Name, err)
	}
	if err := atomicfile.Write(fstabPath, fstab, 0o644); err != nil {
		os.Remove(recordPath)
		return fmt.Errorf("create jail %s: %w", s.Name, err)
	}
	if err := atomicfile.Write(confPath, conf, 0o644); err != nil {
		os.Remove(fstabPath)
		os.Remove(recordPath)
		return fmt.Errorf("create jail %s: %w", s.Name, err)
	}
	created, rctlTouched := false, false
	defer func() {
		if err == nil {
			return
		}
		uctx := context.WithoutCancel(ctx)
		if rctlTouched {
			if rerr := d.rctlRemove(uctx, s.Name); rerr != nil {
				log.Error("undo rctl rules", "err", rerr)
			}
		}
		if created {
			// jail -r also unmounts devfs and the fstab mounts.
			if _, rerr := d.run.Run(uctx, runner.Cmd{Argv: JailRemoveArgv(confPath, s.Name)}); rerr != nil {
				log.Error("undo jail creation", "err", rerr)
			}
		}
		// A failed jail -c undoes its own steps, a failed jail -r may not
		// have: whatever is left is swept before the files go.
		if serr := d.sweep(uctx, s.Name); serr != nil {
			log.Error("undo jail creation", "err", serr)
			return
		}
		os.Remove(confPath)
		os.Remove(fstabPath)
		os.Remove(recordPath)
	}()

	if _, err := d.run.Run(ctx, runner.Cmd{Argv: JailCreateArgv(confPath, s.Name)}); err != nil {
		return fmt.Errorf("create jail %s: %w", s.Name, err)
	}
	created = true

	rules := RctlRules(s.Name, s.Limits)
	if len(rules) == 0 {
		d.setLimits(s.Name, false, false)
		return nil
	}
	on, rerr := d.racctEnabled(ctx)
	if rerr != nil || !on {
		log.Warn("resource limits not enforced: racct is off", "err", rerr)
		d.setLimits(s.Name, false, true)
		return nil
	}
	rctlTouched = true
	// Rules left by an earlier jail of the same name would add up with ours.
	if err := d.rctlRemove(ctx, s.Name); err != nil {
		return fmt.Errorf("clear rctl rules of jail %s: %w", s.Name, err)
	}
	if _, err := d.run.Run(ctx, runner.Cmd{Argv: RctlAddArgv(rules)}); err != nil {
		return fmt.Errorf("set rctl limits of jail %s: %w", s.Name, err)
	}
	d.setLimits(s.Name, true, true)
	return nil
}

// jailResolvConf rewrites the copied /etc/resolv.conf of a loopback or
// alias jail whose host resolves through 127.0.0.1 (JailResolvConf), or
// warns that name resolution will fail in it.
func (d *FreeBSD) jailResolvConf(s Spec) error {
	for _, f := range d.opts.HostFiles {
		if filepath.Base(f) != "resolv.conf" {
			continue
		}
		host, err := os.ReadFile(f)
		if err != nil {
			return nil // not copied either (CopyHostFiles skips it)
		}
		out, warning := JailResolvConf(host, s.Network.Mode, s.Nameservers)
		if warning != "" {
			d.log.Warn(warning, "container", s.Name)
		}
		if string(out) == string(host) {
			return nil
		}
		// Where CopyHostFiles put it: the same path as on the host.
		return WriteFileInRoot(s.Root, f, out, 0o644)
	}
	return nil
}

func (d *FreeBSD) setLimits(name string, enforced, has bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if has {
		d.limits[name] = enforced
	} else {
		delete(d.limits, name)
	}
}

// Command prepares `jexec ... NAME /usr/bin/env -i ... ARGV` for p. A jail
// that is not running is ErrNotFound (jexec would only exit 1 with
// `jexec: jail "NAME" not found`, like any failing command), so that the
// supervisor re-creates a jail removed from outside. A numeric user is
// turned into its name from the jail's own passwd: jexec -U takes names.
func (d *FreeBSD) Command(name string, p Process) (*exec.Cmd, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	running, err := d.jailRunning(ctx, name)
	if err != nil {
		return nil, err
	}
	if !running {
		return nil, fmt.Errorf("command in jail %s: %w", name, ErrNotFound)
	}
	if isUID(p.User) && p.User != "0" {
		r, ok, err := d.readRecord(name)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("command in jail %s: user %s: no record of the jail's root to look the uid up in", name, p.User)
		}
		if p.User, err = LookupUID(r.Root, p.User); err != nil {
			return nil, fmt.Errorf("command in jail %s: %w", name, err)
		}
	}
	argv, err := JexecArgv(name, p, d.hasJexecWorkdir())
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	// jexec itself needs no environment: env -i sets the command's.
	cmd.Env = []string{}
	return cmd, nil
}

// hasJexecWorkdir probes once whether jexec has -d, from the usage message
// it prints when run without arguments.
func (d *FreeBSD) hasJexecWorkdir() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.jexecWorkdir != nil {
		return *d.jexecWorkdir
	}
	// jexec without arguments prints its usage on stderr and exits 1.
	_, err := d.run.Run(context.Background(), runner.Cmd{Argv: []string{JexecPath}, Timeout: 10 * time.Second})
	var usage []byte
	var ce *runner.CommandError
	if errors.As(err, &ce) {
		usage = []byte(ce.Stderr)
	}
	v := JexecSupportsWorkdir(usage)
	if !v {
		d.log.Info("jexec has no -d: commands run from / whatever their workdir", "err", err)
	}
	d.jexecWorkdir = &v
	return v
}

// Remove runs `jail -f CONF -r NAME` (which kills the jail's processes and
// unmounts devfs and the fstab mounts) or, without our conf, `jail -R NAME`;
// then, once jls confirms the jail is gone, it sweeps the mounts and
// aliases jail(8) did not take down (a jail removed from outside, or one
// of jail -r's unmounts failing), drops its rctl rules and deletes its
// generated files. A jail that does not exist is not an error; a sweep
// that leaves something mounted is, and keeps the files for the retry.
func (d *FreeBSD) Remove(ctx context.Context, name string) error {
	if err := validJailName(name); err != nil {
		return fmt.Errorf("remove jail: %w", err)
	}
	confPath := d.confPath(name)
	if _, err := os.Stat(confPath); err != nil {
		confPath = ""
	}
	if _, rerr := d.run.Run(ctx, runner.Cmd{Argv: JailRemoveArgv(confPath, name)}); rerr != nil {
		var ce *runner.CommandError
		if !errors.As(rerr, &ce) {
			return fmt.Errorf("remove jail %s: %w", name, rerr)
		}
		if !strings.Contains(ce.Stderr, "not found") {
			// jail -r exits 1 when one of its stop commands failed, even
			// though the jail itself was removed (jail.c, command.c).
			running, err := d.jailRunning(ctx, name)
			if err != nil || running {
				return fmt.Errorf("remove jail %s: %w", name, rerr)
			}
			d.log.Warn("jail removed, but jail -r reported an error: sweeping", "container", name, "err", rerr)
		}
	}
	if err := d.sweep(ctx, name); err != nil {
		return fmt.Errorf("remove jail %s: %w", name, err)
	}
	if on, err := d.racctEnabled(ctx); err == nil && on {
		if err := d.rctlRemove(ctx, name); err != nil {
			return fmt.Errorf("remove rctl rules of jail %s: %w", name, err)
		}
	}
	d.setLimits(name, false, false)
	for _, p := range []string{d.confPath(name), d.fstabPath(name), d.recordPath(name)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove jail %s: %w", name, err)
		}
	}
	return nil
}

// rctlRemove drops every rule of the jail. The kernel answers ESRCH when no
// rule matched the filter, which rctl prints as "No such process": nothing
// to remove is not an error here.
func (d *FreeBSD) rctlRemove(ctx context.Context, name string) error {
	_, err := d.run.Run(ctx, runner.Cmd{Argv: RctlRemoveArgv(name)})
	var ce *runner.CommandError
	if errors.As(err, &ce) && strings.Contains(ce.Stderr, "No such process") {
		return nil
	}
	return err
}

// List runs `jls --libxo json -v` once.
func (d *FreeBSD) List(ctx context.Context) ([]Info, error) {
	out, err := d.run.Run(ctx, runner.Cmd{Argv: JLSArgv()})
	if err != nil {
		return nil, fmt.Errorf("list jails: %w", err)
	}
	return ParseJLS(out)
}

// Usage returns a jail's resource usage from `rctl -u jail:NAME` (for the
// memory and CPU metrics); it fails when racct is off.
func (d *FreeBSD) Usage(ctx context.Context, name string) (Usage, error) {
	out, err := d.run.Run(ctx, runner.Cmd{Argv: RctlUsageArgv(name)})
	if err != nil {
		return Usage{}, fmt.Errorf("read usage of jail %s: %w", name, err)
	}
	return ParseRctlUsage(out)
}
