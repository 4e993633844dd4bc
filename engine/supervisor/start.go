package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/engine/jail"
	"github.com/zocker-reconcile/zocker-reconcile/internal/atomicfile"

	"golang.org/x/sys/unix"
)

// pollEvery is how often Start and Stop look at the status file and lock.
const pollEvery = 20 * time.Millisecond

// stopMargin is added to the stop timeout for jail removal when Stop waits
// (a variable for the tests of a stuck supervisor).
var stopMargin = time.Minute

func supervisorLogPath(stateDir, name string) string {
	return filepath.Join(Dir(stateDir, name), "supervisor.log")
}

// Start writes cfg to STATE/containers/NAME/config.json and starts the
// supervisor of container name as a detached process: self is the argv
// prefix that re-executes this binary's hidden supervise command (for
// example [exe, "__supervise"]); Start appends stateDir and name to it. The
// supervisor runs in its own session, with stdin on /dev/null and its own
// log (supervisor.log) as stdout and stderr, so it survives the death,
// restart or upgrade of the caller.
//
// Start returns the supervisor's pid once its status file shows that the
// jail was created and the command was started (running, backoff or
// exited); when the supervisor fails (the jail cannot be created, say) it
// returns that failure. If ctx ends first, the supervisor goes on and List
// will report it. A supervisor that already runs for name is ErrRunning.
func Start(ctx context.Context, stateDir, name string, self []string, cfg Config) (int, error) {
	if len(self) == 0 {
		return 0, fmt.Errorf("start supervisor of container %s: empty self argv", name)
	}
	if err := prepare(stateDir, name, &cfg); err != nil {
		return 0, err
	}
	alive, err := locked(stateDir, name)
	if err != nil {
		return 0, err
	}
	if alive {
		return 0, fmt.Errorf("start supervisor of container %s: %w", name, ErrRunning)
	}
	if err := writeConfig(stateDir, cfg); err != nil {
		return 0, err
	}
	logf, err := os.OpenFile(supervisorLogPath(stateDir, name), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return 0, fmt.Errorf("open supervisor log of container %s: %w", name, err)
	}
	defer logf.Close()

	argv := append(append([]string{}, self[1:]...), stateDir, name)
	cmd := exec.Command(self[0], argv...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// The supervisor closes the write end of this pipe once the container's
	// first state is on record (readyEnv): Start wakes then, not at its
	// next poll.
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return 0, fmt.Errorf("start supervisor of container %s: %w", name, err)
	}
	defer readyR.Close()
	cmd.ExtraFiles = []*os.File{readyW}
	cmd.Env = append(os.Environ(), readyEnv+"=3")
	// Its own session: no signal aimed at the caller's process group or
	// terminal reaches it. Working directory /: it must not keep a
	// container's or the caller's dataset busy.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Dir = "/"
	err = cmd.Start()
	readyW.Close()
	if err != nil {
		return 0, fmt.Errorf("start supervisor of container %s: %w", name, err)
	}
	pid := cmd.Process.Pid
	exited := make(chan error, 1)
	// Reap it when it ends, so that a long-running caller keeps no zombie.
	go func() { exited <- cmd.Wait() }()
	ready := make(chan struct{})
	go func() {
		var b [1]byte
		readyR.Read(b[:]) // EOF once the supervisor closed its end (or died)
		close(ready)
	}()

	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		st, err := readStatus(stateDir, name)
		if err == nil && st.SupervisorPID == pid {
			switch st.State {
			case StateFailed:
				return 0, fmt.Errorf("start container %s: %s", name, st.Message)
			case StateRunning, StateBackoff, StateExited:
				return pid, nil
			}
		}
		select {
		case werr := <-exited:
			st, err := readStatus(stateDir, name)
			if err == nil && st.SupervisorPID == pid && st.State == StateFailed {
				return 0, fmt.Errorf("start container %s: %s", name, st.Message)
			}
			if (err == nil && st.SupervisorPID == pid && st.State == StateExited) || werr == nil {
				// Done already (ExitWhenDone), its state perhaps removed
				// with the container (run -d --rm): a supervisor that
				// failed exits non-zero.
				return pid, nil
			}
			return 0, fmt.Errorf("start container %s: supervisor exited (%v): %s", name, werr, lastLogLines(supervisorLogPath(stateDir, name)))
		case <-ctx.Done():
			return pid, fmt.Errorf("start container %s: supervisor %d not ready: %w", name, pid, ctx.Err())
		case <-ready:
			ready = nil // read the status now; the poll stays as the fallback
		case <-t.C:
		}
	}
}

// readyEnv names the descriptor (always 3) on which a supervisor started
// by Start is told to signal that its container's first state (running,
// backing off, exited or failed) is written: it closes it.
const readyEnv = "ZOCKER_SUPERVISOR_READY_FD"

// CloseInherited closes every descriptor above 2 this process was started
// with and does not itself use, before it creates a jail or starts
// anything: a descriptor its starter left open (an administrator's shell,
// rc.d, a service manager) would otherwise reach the jail's init and the
// container's command, a host pipe or file handed to untrusted code, and
// keep a reader of that pipe waiting for as long as the container runs.
// Inherited descriptors are those without close-on-exec: the Go runtime
// and this package open every one of theirs with it (takeReady, run first,
// sets it on the ready descriptor). /proc/self/fd lists the open ones on
// Linux; elsewhere (FreeBSD's /dev/fd shows 0-2 without fdescfs) every
// number below the descriptor limit, at most 65,536, is looked at.
func CloseInherited() {
	ready := readyFD() // a supervisor's own, until takeReady has it
	inherited := func(fd int) bool {
		if fd == ready {
			return false
		}
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		return err == nil && flags&unix.FD_CLOEXEC == 0
	}
	if entries, err := os.ReadDir("/proc/self/fd"); err == nil {
		for _, e := range entries {
			if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 && inherited(fd) {
				unix.Close(fd)
			}
		}
		return
	}
	limit := 65536
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) == nil && uint64(rl.Cur) < uint64(limit) {
		limit = int(rl.Cur)
	}
	for fd := 3; fd < limit; fd++ {
		if inherited(fd) {
			unix.Close(fd)
		}
	}
}

// takeReady returns the descriptor readyEnv names, close-on-exec so that
// neither the jail nor the command inherits it, and drops the variable from
// the environment; nil when the supervisor was not started by Start.
func takeReady() *os.File {
	fd := readyFD()
	os.Unsetenv(readyEnv)
	if fd < 0 {
		return nil
	}
	syscall.CloseOnExec(fd)
	return os.NewFile(uintptr(fd), "ready")
}

// readyFD is the descriptor readyEnv names, or -1.
func readyFD() int {
	fd, err := strconv.Atoi(os.Getenv(readyEnv))
	if err != nil || fd < 3 {
		return -1
	}
	return fd
}

// prepare names and checks cfg and makes container name's state directory.
func prepare(stateDir, name string, cfg *Config) error {
	if cfg.Name == "" {
		cfg.Name = name
	}
	if cfg.Name != name {
		return fmt.Errorf("start container %s: config names %q", name, cfg.Name)
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(Dir(stateDir, name), 0o750); err != nil {
		return fmt.Errorf("start container %s: %w", name, err)
	}
	return nil
}

// writeConfig writes cfg to its container's config.json, atomically.
func writeConfig(stateDir string, cfg Config) error {
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return fmt.Errorf("encode config of container %s: %w", cfg.Name, err)
	}
	// 0600: the config holds the container's env values (secrets).
	if err := atomicfile.Write(configPath(stateDir, cfg.Name), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write config of container %s: %w", cfg.Name, err)
	}
	return nil
}

func lastLogLines(path string) string {
	lines, err := Tail(path, 3)
	if err != nil || len(lines) == 0 {
		return "see " + path
	}
	return strings.Join(lines, " | ")
}

// Stop stops container name: it sends SIGTERM to its supervisor, which stops
// the command (stop signal, SIGKILL after the stop timeout) and removes the
// jail, and waits for the supervisor to exit, at most the stop timeout plus
// a minute (or until ctx ends). A supervisor that does not exit by then is
// killed with its command. When the supervisor is already dead, Stop removes
// the jail itself through driver and records the state stopped. Stopping a
// container that has no state is not an error.
func Stop(ctx context.Context, stateDir, name string, driver jail.Driver) error {
	st, err := Get(stateDir, name)
	if errors.Is(err, ErrNotFound) {
		if _, cerr := os.Stat(Dir(stateDir, name)); cerr != nil {
			return removeJail(ctx, driver, name)
		}
		st, err = Status{Name: name}, nil
		if st.Alive, err = locked(stateDir, name); err != nil {
			return err
		}
	}
	if err != nil {
		return err
	}
	if st.Alive {
		wait := DefaultStopTimeout
		if cfg, err := ReadConfig(stateDir, name); err == nil {
			wait = cfg.withDefaults().StopTimeout.D()
		}
		wait += stopMargin
		if st.SupervisorPID > 0 {
			if err := syscall.Kill(st.SupervisorPID, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
				return fmt.Errorf("stop container %s: signal supervisor %d: %w", name, st.SupervisorPID, err)
			}
		}
		gone, err := waitUnlocked(ctx, stateDir, name, wait)
		if err != nil {
			return err
		}
		if !gone {
			// It did not stop in time: kill it and clean up as for a dead
			// one. Only the supervisor is killed, whose PID is its own while
			// it holds the lock: the command's PID on record may belong to
			// another process by now (the command gone, the supervisor stuck
			// before recording it), and the jail's removal that follows
			// kills whatever still runs in the jail.
			if st, err := readStatus(stateDir, name); err == nil && st.SupervisorPID > 0 {
				_ = syscall.Kill(st.SupervisorPID, syscall.SIGKILL)
			}
			if gone, err = waitUnlocked(ctx, stateDir, name, 5*time.Second); err != nil {
				return err
			} else if !gone {
				return fmt.Errorf("stop container %s: supervisor %d does not exit", name, st.SupervisorPID)
			}
		}
	}
	// A supervisor that stopped cleanly recorded stopped: nothing to do.
	// Otherwise (dead, killed, or its jail removal failed) remove the jail here.
	return cleanupDead(ctx, stateDir, name, driver)
}

// cleanupDead removes the jail of a container whose supervisor is dead and
// records it stopped, holding the lock meanwhile so that no Start races it.
func cleanupDead(ctx context.Context, stateDir, name string, driver jail.Driver) error {
	lock, err := acquireLock(stateDir, name)
	if err != nil {
		return fmt.Errorf("stop container %s: %w", name, err)
	}
	defer lock.Close()
	st, err := readStatus(stateDir, name)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	if err == nil && st.State == StateStopped {
		return nil
	}
	if err := removeJail(ctx, driver, name); err != nil {
		return err
	}
	// A command that ended on its own keeps its exit on record.
	if st.State != StateExited {
		st.State = StateStopped
	}
	st.Name, st.PID = name, 0
	return writeStatus(stateDir, &st)
}

func removeJail(ctx context.Context, driver jail.Driver, name string) error {
	rctx, cancel := context.WithTimeout(ctx, removeTimeout)
	defer cancel()
	if err := driver.Remove(rctx, name); err != nil {
		return fmt.Errorf("stop container %s: remove jail: %w", name, err)
	}
	return nil
}

// waitUnlocked waits until no supervisor holds name's lock, for at most d.
func waitUnlocked(ctx context.Context, stateDir, name string, d time.Duration) (bool, error) {
	deadline := time.Now().Add(d)
	for {
		alive, err := locked(stateDir, name)
		if err != nil {
			return false, err
		}
		if !alive {
			return true, nil
		}
		if time.Now().After(deadline) {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("stop container %s: %w", name, ctx.Err())
		case <-time.After(pollEvery):
		}
	}
}

// Forget deletes container name's runtime directory (config, status, logs)
// once the container is destroyed. It refuses while a supervisor runs.
func Forget(stateDir, name string) error {
	alive, err := locked(stateDir, name)
	if err != nil {
		return err
	}
	if alive {
		return fmt.Errorf("forget container %s: %w", name, ErrRunning)
	}
	if err := os.RemoveAll(Dir(stateDir, name)); err != nil {
		return fmt.Errorf("forget container %s: %w", name, err)
	}
	return nil
}
