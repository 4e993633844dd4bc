//go:build linux

package linuxns

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"github.com/zocker-reconcile/zocker-reconcile/engine/jail"
	"golang.org/x/sys/unix"
)

// HelperMain runs the Linux driver's helpers in a re-executed process; args
// follow the InitCommand word: "init" (the jail's pid 1, started by Create)
// or "exec ..." (the shim started by Command's *exec.Cmd). It returns the
// process's exit code. The binary's hidden subcommand and test binaries'
// TestMain call it.
func HelperMain(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "jail helper: want init or exec")
		return 2
	}
	// Our own argv prefix, to re-execute ourselves from the exec shim.
	helperPrefix = os.Args[:len(os.Args)-len(args)]
	switch args[0] {
	case "join":
		err := runJoin(args[1:])
		fmt.Fprintf(os.Stderr, "jail join: %v\n", err)
		return 125
	case "init":
		return runInit()
	case "exec":
		code, err := runExec(args[1:])
		if err != nil {
			fmt.Fprintf(os.Stderr, "jail exec: %v\n", err)
		}
		return code
	}
	fmt.Fprintf(os.Stderr, "jail helper: unknown mode %q\n", args[0])
	return 2
}

// runInit is the jail's init: pid 1 of fresh pid, mount, uts, ipc (and
// net) namespaces. It reads its config from fd 3, sets the jail up, answers
// "ok" or "error: ..." on fd 4, then reaps orphans forever.
func runInit() int {
	cfgFile := os.NewFile(3, "config")
	ready := os.NewFile(4, "ready")
	if cfgFile == nil || ready == nil {
		fmt.Fprintln(os.Stderr, "jail init: started without its pipes")
		return 2
	}
	var cfg initConfig
	err := json.NewDecoder(cfgFile).Decode(&cfg)
	cfgFile.Close()
	if err == nil {
		err = setupJail(cfg)
	}
	if err != nil {
		fmt.Fprintf(ready, "error: %v\n", err)
		ready.Close()
		return 1
	}
	// Subscribe before answering, so that no child's exit is missed.
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGCHLD)
	// As pid 1 of its namespace the init would ignore these anyway; being
	// explicit keeps a stray signal from the jail's own processes harmless.
	signal.Ignore(syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGPIPE)
	fmt.Fprintln(ready, "ok")
	ready.Close()
	for {
		for {
			var ws unix.WaitStatus
			pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
		<-sigs
	}
}

// setupJail builds the jail's filesystem view and identity, then pivots
// into its root. Every mount happens in the init's private mount namespace
// (made private first, so nothing propagates to the host) and goes with it.
func setupJail(cfg initConfig) error {
	unix.Umask(0o022)
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	root := cfg.Root
	// pivot_root needs the new root to be a mount point.
	if err := unix.Mount(root, root, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind root %s: %w", root, err)
	}
	// resolv.conf and localtime go into the image before any volume or
	// /proc is mounted (jail.CopyHostFiles refuses symlinks on the way).
	if err := jail.CopyHostFiles(root, jail.DefaultHostFiles); err != nil {
		return err
	}
	for _, m := range cfg.Mounts {
		if err := bindVolume(root, m); err != nil {
			return err
		}
	}
	proc, err := resolveIn(root, "/proc", true)
	if err != nil {
		return fmt.Errorf("mount /proc: %w", err)
	}
	if err := unix.Mount("proc", proc, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount /proc: %w", err)
	}
	if err := mountDev(root); err != nil {
		return err
	}
	if err := unix.Sethostname([]byte(cfg.Hostname)); err != nil {
		return fmt.Errorf("set hostname %q: %w", cfg.Hostname, err)
	}
	if cfg.PrivateNet {
		if err := loopbackUp(); err != nil {
			return err
		}
	}
	// pivot_root(".", ".") stacks the old root on the new one; detaching it
	// leaves only the jail's mounts in this namespace.
	if err := unix.Chdir(root); err != nil {
		return fmt.Errorf("enter root %s: %w", root, err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root into %s: %w", root, err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach the host's root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir /: %w", err)
	}
	return nil
}

// bindVolume bind-mounts a host path into the root, read-only if declared.
func bindVolume(root string, m jail.Mount) error {
	if _, err := os.Stat(m.Source); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("volume source %s does not exist", m.Source)
		}
		return fmt.Errorf("volume source %s: %w", m.Source, err)
	}
	target, err := mountTarget(root, m.Source, m.Target)
	if err != nil {
		return fmt.Errorf("mount point %s for %s: %w", m.Target, m.Source, err)
	}
	if err := unix.Mount(m.Source, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s to %s: %w", m.Source, m.Target, err)
	}
	if m.ReadOnly {
		// A bind mount takes its read-only flag only on a remount; keep the
		// flags the kernel insists on for the source's mount.
		flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY)
		var st unix.Statfs_t
		if err := unix.Statfs(target, &st); err == nil {
			flags |= uintptr(st.Flags) & (unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_RELATIME | unix.MS_NOATIME | unix.MS_NODIRATIME)
		}
		if err := unix.Mount("", target, "", flags, ""); err != nil {
			return fmt.Errorf("make %s read-only: %w", m.Target, err)
		}
	}
	return nil
}

// devNodes are the character devices of the jail's minimal /dev.
var devNodes = []struct {
	name         string
	major, minor uint32
}{
	{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0},
}

// mountDev mounts a small tmpfs on /dev with the usual harmless devices.
func mountDev(root string) error {
	dev, err := resolveIn(root, "/dev", true)
	if err != nil {
		return fmt.Errorf("mount /dev: %w", err)
	}
	if err := unix.Mount("tmpfs", dev, "tmpfs", unix.MS_NOSUID|unix.MS_NOEXEC, "mode=755,size=64k"); err != nil {
		return fmt.Errorf("mount /dev: %w", err)
	}
	for _, n := range devNodes {
		p := filepath.Join(dev, n.name)
		if err := unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(n.major, n.minor))); err != nil {
			return fmt.Errorf("mknod /dev/%s: %w", n.name, err)
		}
		// mknod's mode passes through the umask.
		if err := os.Chmod(p, 0o666); err != nil {
			return fmt.Errorf("chmod /dev/%s: %w", n.name, err)
		}
	}
	for name, target := range map[string]string{"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"} {
		if err := os.Symlink(target, filepath.Join(dev, name)); err != nil {
			return fmt.Errorf("symlink /dev/%s: %w", name, err)
		}
	}
	if err := os.Mkdir(filepath.Join(dev, "shm"), 0o1777); err != nil {
		return fmt.Errorf("mkdir /dev/shm: %w", err)
	}
	return nil
}

// loopbackUp brings up lo in the jail's fresh network namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("bring up lo: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("bring up lo: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring up lo: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring up lo: %w", err)
	}
	return nil
}

// execArgs are the exec shim's arguments, written by Command.
type execArgs struct {
	pid, uid, gid int
	start         uint64
	nsenter, wd   string
	net           bool
	cgroups       []string
	argv          []string
}

func parseExecArgs(args []string) (execArgs, error) {
	var a execArgs
	for len(args) > 0 {
		k := args[0]
		args = args[1:]
		if k == "--" {
			a.argv = args
			break
		}
		if k == "--net" {
			a.net = true
			continue
		}
		if len(args) == 0 {
			return a, fmt.Errorf("%s wants a value", k)
		}
		v := args[0]
		args = args[1:]
		var err error
		switch k {
		case "--pid":
			a.pid, err = strconv.Atoi(v)
		case "--start":
			a.start, err = strconv.ParseUint(v, 10, 64)
		case "--uid":
			a.uid, err = strconv.Atoi(v)
		case "--gid":
			a.gid, err = strconv.Atoi(v)
		case "--nsenter":
			a.nsenter = v
		case "--wd":
			a.wd = v
		case "--cgroup":
			a.cgroups = append(a.cgroups, v)
		default:
			err = errors.New("unknown option")
		}
		if err != nil {
			return a, fmt.Errorf("%s %s: %w", k, v, err)
		}
	}
	if len(a.argv) == 0 || a.pid <= 0 || a.nsenter == "" {
		return a, errors.New("usage: exec --pid PID --start T --nsenter PATH --uid U --gid G --wd DIR [--net] [--cgroup DIR]... -- ARGV")
	}
	return a, nil
}

// pidsLimited tells whether one of the cgroups caps its number of tasks.
func pidsLimited(cgroups []string) bool {
	for _, c := range cgroups {
		b, err := os.ReadFile(filepath.Join(c, "pids.max"))
		if err == nil && strings.TrimSpace(string(b)) != "max" {
			return true
		}
	}
	return false
}

// helperPrefix is the argv prefix this helper was started with.
var helperPrefix []string

// runJoin moves this process into the cgroups and execs the command: moving
// is not limited by pids.max, and after exec only one task remains to count.
func runJoin(args []string) error {
	var cgroups []string
	for len(args) >= 2 && args[0] == "--cgroup" {
		cgroups = append(cgroups, args[1])
		args = args[2:]
	}
	if len(args) < 2 || args[0] != "--" {
		return errors.New("usage: join [--cgroup DIR]... -- ARGV")
	}
	if err := joinCgroups(cgroups, os.Getpid()); err != nil {
		return err
	}
	return unix.Exec(args[1], args[1:], os.Environ())
}

// forwarded are the signals the shim passes on to the command.
var forwarded = []os.Signal{
	syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1,
	syscall.SIGUSR2, syscall.SIGWINCH, syscall.SIGALRM, syscall.SIGCONT, syscall.SIGTSTP,
}

// runExec is the exec shim: it joins the jail's cgroups, makes the jail's
// pid namespace the one its children are born into (setns on a locked
// thread affects only that thread's children), runs nsenter for the other
// namespaces, the root, workdir and user, forwards signals, and exits as the
// command did (re-raising a fatal signal).
func runExec(args []string) (int, error) {
	a, err := parseExecArgs(args)
	if err != nil {
		return 2, err
	}
	if start, err := procStartTime(a.pid); err != nil || start != a.start {
		return 125, fmt.Errorf("jail init %d is gone", a.pid)
	}
	runtime.LockOSThread() // never unlocked: the thread dies with the process
	ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/pid", a.pid))
	if err != nil {
		return 125, fmt.Errorf("open pid namespace: %w", err)
	}
	err = unix.Setns(int(ns.Fd()), unix.CLONE_NEWPID)
	ns.Close()
	if err != nil {
		return 125, fmt.Errorf("enter pid namespace of %d: %w", a.pid, err)
	}
	nsArgs := []string{"--target", strconv.Itoa(a.pid), "--mount", "--uts", "--ipc"}
	if a.net {
		nsArgs = append(nsArgs, "--net")
	}
	nsArgs = append(nsArgs, "--root", "--wdns="+a.wd, "--no-fork",
		"--setgid", strconv.Itoa(a.gid), "--setuid", strconv.Itoa(a.uid), "--")
	nsArgs = append(nsArgs, a.argv...)
	cmd := exec.Command(a.nsenter, nsArgs...)
	if !pidsLimited(a.cgroups) {
		if err := joinCgroups(a.cgroups, os.Getpid()); err != nil {
			return 125, err
		}
	} else {
		// The shim itself stays out of the jail's cgroups: its Go runtime's
		// threads would count against maxProcesses and fail to start. A
		// short-lived copy of this binary joins them and execs nsenter.
		join := append([]string{"/proc/self/exe"}, helperPrefix[1:]...)
		join = append(join, "join")
		for _, c := range a.cgroups {
			join = append(join, "--cgroup", c)
		}
		join = append(append(join, "--", a.nsenter), nsArgs...)
		cmd = exec.Command(join[0], join[1:]...)
		cmd.Args[0] = helperPrefix[0]
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = os.Environ()

	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, forwarded...)
	if err := cmd.Start(); err != nil {
		return 125, fmt.Errorf("start %s: %w", a.nsenter, err)
	}
	go func() {
		for s := range sigs {
			_ = cmd.Process.Signal(s)
		}
	}()
	err = cmd.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return 125, err
	}
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return exitBySignal(ws.Signal()), nil
	}
	return ws.ExitStatus(), nil
}

// exitBySignal ends the shim by sig, as the command ended, so that the
// caller reads "killed by sig", not an exit status. The signal goes to this
// thread (tgkill; the caller has locked it), not to the process: a
// process-directed signal may be taken by another thread of the Go runtime
// while this one has already returned and exited 128+sig ("exit status 143,
// want killed by SIGTERM" on a loaded machine). A thread-directed signal is
// handled before the syscall returns: the runtime, no longer notifying sig,
// dies by it. The return value is reached only if sig cannot kill (ignored
// or blocked by the environment).
func exitBySignal(sig syscall.Signal) int {
	signal.Reset(sig)
	_ = unix.Tgkill(unix.Getpid(), unix.Gettid(), sig)
	return 128 + int(sig)
}
