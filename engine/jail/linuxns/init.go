//go:build linux

package linuxns

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"

	"github.com/zocker-reconcile/zocker-reconcile/engine/jail"
	"golang.org/x/sys/unix"
)

// HelperMain runs the Linux driver's helpers in a re-executed process; args
// follow the InitCommand word: "init" (the jail's pid 1, started by Create)
// or "run --sock PATH" (the shim started by Command's *exec.Cmd, which asks
// the init to run the command). It returns the process's exit code. The
// binaries' hidden subcommand and test binaries' TestMain call it.
func HelperMain(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "jail helper: want init or run")
		return 2
	}
	switch args[0] {
	case "init":
		return runInit()
	case "run":
		code, err := runShim(args[1:])
		if err != nil {
			fmt.Fprintf(os.Stderr, "jail exec: %v\n", err)
		}
		return code
	}
	fmt.Fprintf(os.Stderr, "jail helper: unknown mode %q\n", args[0])
	return 2
}

// runInit is the jail's init: pid 1 of fresh pid, mount, uts, ipc (and
// net) namespaces. It reads its config from fd 3, binds its control socket,
// sets the jail up, answers "ok" or "error: ..." on fd 4, then starts the
// commands it is asked to (control.go) and reaps every exited process.
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
	var ln *net.UnixListener
	var procs []*os.File
	if err == nil {
		// Bound and opened before the pivot: afterwards the host's
		// directories are out of reach (of the jail's processes too).
		ln, err = listenControl(cfg.ControlDir, cfg.ControlFile)
	}
	for _, p := range cfg.JoinProcs {
		if err != nil {
			break
		}
		var f *os.File
		if f, err = os.OpenFile(p, os.O_WRONLY, 0); err == nil {
			procs = append(procs, f)
		}
	}
	if err == nil {
		err = setupJail(cfg)
	}
	if err != nil {
		fmt.Fprintf(ready, "error: %v\n", err)
		ready.Close()
		return 1
	}
	srv := newControlServer(procs)
	// Subscribe before answering, so that no child's exit is missed.
	// The other signals are caught (and dropped), not ignored: an ignored
	// signal stays ignored across execve, and the commands the init starts
	// must get SIGTERM. As pid 1 the init gets only what it has a handler
	// for; these keep a stray signal from the jail's own processes
	// harmless. They share SIGCHLD's channel (a stray one costs a reap
	// that finds nothing) rather than keep a goroutine of their own.
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGCHLD, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT,
		syscall.SIGPIPE, syscall.SIGUSR1, syscall.SIGUSR2)
	go srv.serve(ln)
	fmt.Fprintln(ready, "ok")
	ready.Close()
	// No debug.FreeOSMemory for the setup's garbage: the collection it runs
	// starts the runtime's forced GC every 2 minutes, whose cycles leave
	// more GC metadata resident than the garbage it frees (idle init: 1.41
	// MB at once growing to 1.67 MB, against 1.20 MB flat without it).
	for {
		srv.reap()
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

// forwarded are the signals the shim passes on to the command.
var forwarded = []os.Signal{
	syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1,
	syscall.SIGUSR2, syscall.SIGWINCH, syscall.SIGALRM, syscall.SIGCONT, syscall.SIGTSTP,
}

// runShim is the exec shim: it reads the request Command prepared from fd
// 3, hands it with its own standard files to the jail's init, relays the
// signals it gets, and exits as the command did (re-raising a fatal
// signal). It runs with a fixed environment: the command's own arrives as
// data and is applied only by the init's execve inside the jail.
func runShim(args []string) (int, error) {
	if len(args) != 2 || args[0] != "--sock" {
		return 2, errors.New("usage: run --sock PATH (request on fd 3)")
	}
	// Subscribed first: a signal that arrives while the command is being
	// started waits in the channel and is relayed once it runs.
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs, forwarded...)
	reqFile := os.NewFile(3, "request")
	if reqFile == nil {
		return 125, errors.New("started without its request")
	}
	var req runRequest
	err := json.NewDecoder(io.LimitReader(reqFile, maxRequest)).Decode(&req)
	reqFile.Close()
	if err != nil {
		return 125, fmt.Errorf("read the request: %w", err)
	}
	c, err := dialSocket(args[1])
	if err != nil {
		return 125, fmt.Errorf("connect to the jail's init: %w", err)
	}
	defer c.Close()
	if _, err := startVia(c, req, [3]*os.File{os.Stdin, os.Stdout, os.Stderr}); err != nil {
		var se *startError
		if errors.As(err, &se) {
			return se.code, err
		}
		return 125, err
	}
	go func() {
		for s := range sigs {
			if sig, ok := s.(syscall.Signal); ok {
				_ = signalVia(c, sig)
			}
		}
	}()
	ws, err := waitVia(c)
	if err != nil {
		return 125, err
	}
	if ws.Signaled() {
		reraise(ws.Signal())
		return 128 + int(ws.Signal()), nil
	}
	return ws.ExitStatus(), nil
}

// reraise dies of sig, as the command did. The signal goes to this very
// thread (tgkill), so it is delivered before the syscall returns and the
// process never gets to exit normally instead.
func reraise(sig syscall.Signal) {
	signal.Reset(sig)
	runtime.LockOSThread()
	_ = unix.Tgkill(unix.Getpid(), unix.Gettid(), sig)
}
