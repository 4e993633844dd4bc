//go:build linux

package linuxns

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/engine/jail"
	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
	"github.com/zocker-reconcile/zocker-reconcile/internal/atomicfile"
	"golang.org/x/sys/unix"
)

// InitCommand is the hidden subcommand of zocker-reconcile that runs the
// Linux driver's helpers (the jail init and the exec shim); see HelperMain.
const InitCommand = "__jail-init"

// initStartTimeout bounds how long Create waits for the init's readiness.
const initStartTimeout = 30 * time.Second

// defaultPath is given to commands whose environment has no PATH.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Driver is the Linux jail driver: a jail is a long-lived init process (this
// binary re-executed as InitCommand) holding private mount, pid, uts and ipc
// namespaces (and a private network namespace unless the mode is inherit),
// pivoted into the container's root. Its pid is recorded in
// STATE/jails/NAME.pid, so that jails outlive the process that created them
// and any later process can find, enter and remove them.
type Driver struct {
	stateDir string
	self     []string
	run      runner.Runner
	log      *slog.Logger
	cg       cgroupHost
}

// cgroupName is the container's cgroup directory name: NAME.SCOPE, where
// SCOPE is a digest of the state directory, so that two services (or two
// test runs) on one host with a container of the same name never share, and
// never kill each other's processes through, one cgroup.
func (l *Driver) cgroupName(name string) string {
	abs, err := filepath.Abs(l.stateDir)
	if err != nil {
		abs = l.stateDir
	}
	sum := sha256.Sum256([]byte(abs))
	return name + "." + hex.EncodeToString(sum[:4])
}

// New returns the Linux driver keeping its files under stateDir/jails.
// self is the argv prefix that re-executes this binary's helpers; nil means
// [os.Executable(), InitCommand]. r is kept for the external commands the
// driver may need later (alias networking); today Create, Remove and List
// run none: they work through the init, /proc and cgroupfs.
func New(stateDir string, self []string, r runner.Runner, log *slog.Logger) *Driver {
	if len(self) == 0 {
		exe, err := os.Executable()
		if err != nil {
			exe = os.Args[0]
		}
		self = []string{exe, InitCommand}
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Driver{stateDir: stateDir, self: self, run: r, log: log, cg: detectCgroups()}
}

var (
	_ jail.Driver  = (*Driver)(nil)
	_ jail.Starter = (*Driver)(nil)
)

// LimitsEnforced reports whether memory, CPU and process limits can be
// enforced on this host (cgroup controllers memory, cpu and pids), and if not,
// why, so that status can say "limits not enforced".
func (l *Driver) LimitsEnforced() (bool, string) {
	return l.cg.enforced()
}

// state is what the driver records about a running jail beside its pid file.
type state struct {
	Pid int `json:"pid"`
	// StartTime is the init's start time in clock ticks since boot
	// (/proc/PID/stat field 22): a recycled pid never matches it.
	StartTime  uint64   `json:"startTime"`
	Root       string   `json:"root"`
	Hostname   string   `json:"hostname"`
	PrivateNet bool     `json:"privateNet"`
	Cgroups    []string `json:"cgroups,omitempty"`
}

func (l *Driver) jailsDir() string             { return filepath.Join(l.stateDir, "jails") }
func (l *Driver) pidFile(name string) string   { return filepath.Join(l.jailsDir(), name+".pid") }
func (l *Driver) stateFile(name string) string { return filepath.Join(l.jailsDir(), name+".json") }

// initConfig is what Create sends the init through its config pipe.
type initConfig struct {
	Root       string       `json:"root"`
	Hostname   string       `json:"hostname"`
	Mounts     []jail.Mount `json:"mounts"`
	PrivateNet bool         `json:"privateNet"`
	// ControlDir/ControlFile is where the init binds its control socket.
	ControlDir  string `json:"controlDir"`
	ControlFile string `json:"controlFile"`
	// JoinProcs are the cgroup.procs files of the cgroups the init stays
	// out of (v1 pids): it moves each command it starts into them.
	JoinProcs []string `json:"joinProcs,omitempty"`
}

func validName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\x00")
}

func (l *Driver) check(s jail.Spec) error {
	if !validName(s.Name) {
		return fmt.Errorf("create jail: invalid name %q", s.Name)
	}
	if !filepath.IsAbs(s.Root) {
		return fmt.Errorf("create jail %s: root %q is not an absolute path", s.Name, s.Root)
	}
	if fi, err := os.Stat(s.Root); err != nil {
		return fmt.Errorf("create jail %s: root: %w", s.Name, err)
	} else if !fi.IsDir() {
		return fmt.Errorf("create jail %s: root %s is not a directory", s.Name, s.Root)
	}
	switch s.Network.Mode {
	case jail.NetInherit, jail.NetNone, jail.NetLoopback, "":
	case jail.NetAlias:
		// A veth pair and address management are not written yet.
		return fmt.Errorf("create jail %s: network mode alias is not supported by the Linux driver yet", s.Name)
	default:
		return fmt.Errorf("create jail %s: unknown network mode %q", s.Name, s.Network.Mode)
	}
	for _, m := range s.Mounts {
		if !filepath.IsAbs(m.Source) || !filepath.IsAbs(m.Target) {
			return fmt.Errorf("create jail %s: mount %s -> %s: paths must be absolute", s.Name, m.Source, m.Target)
		}
		if _, err := os.Stat(m.Source); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("create jail %s: volume source %s does not exist", s.Name, m.Source)
			}
			return fmt.Errorf("create jail %s: volume source %s: %w", s.Name, m.Source, err)
		}
	}
	return nil
}

// Create starts the jail's init and returns once it has set up the jail, or
// with the init's own error message. Nothing is left behind on failure.
func (l *Driver) Create(ctx context.Context, s jail.Spec) (err error) {
	if err := l.check(s); err != nil {
		return err
	}
	if err := os.MkdirAll(l.jailsDir(), 0o700); err != nil {
		return fmt.Errorf("create jail %s: state directory: %w", s.Name, err)
	}
	unlock, err := l.lock(s.Name)
	if err != nil {
		return fmt.Errorf("create jail %s: %w", s.Name, err)
	}
	defer unlock()
	if st, alive := l.load(s.Name); alive {
		return fmt.Errorf("create jail %s: already running (pid %d)", s.Name, st.Pid)
	} else if st != nil {
		l.cleanup(s.Name, st)
	}
	hostname := s.Hostname
	if hostname == "" {
		hostname = s.Name
	}
	private := s.Network.Mode != jail.NetInherit
	cfg := initConfig{Root: s.Root, Hostname: hostname, Mounts: s.Mounts, PrivateNet: private,
		ControlDir: l.jailsDir(), ControlFile: controlName(s.Name)}

	cgroups, unenforced, err := l.cg.create(l.cgroupName(s.Name), s.Limits)
	if err != nil {
		return fmt.Errorf("create jail %s: %w", s.Name, err)
	}
	if len(unenforced) > 0 {
		l.log.Warn("resource limits not enforced: controller not delegated", "container", s.Name, "controllers", unenforced)
	}
	defer func() {
		if err != nil {
			removeCgroups(cgroups, l.log.With("container", s.Name))
		}
	}()
	if s.Limits != (jail.Limits{}) {
		if ok, why := l.cg.enforced(); !ok {
			l.log.Warn("resource limits not enforced", "container", s.Name, "err", why)
		}
	}

	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("create jail %s: %w", s.Name, err)
	}
	defer cfgW.Close()
	readyR, readyW, err := os.Pipe()
	if err != nil {
		cfgR.Close()
		return fmt.Errorf("create jail %s: %w", s.Name, err)
	}
	defer readyR.Close()

	flags := syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC
	if private {
		flags |= syscall.CLONE_NEWNET
	}
	argv := append(append([]string{}, l.self...), "init")
	cmd := exec.Command(argv[0], argv[1:]...)
	// containermaxprocs=0: otherwise the Go runtime (1.25 and later) keeps
	// the cgroup CPU files it read at start-up open for good, and the
	// init would hold host descriptors that root in the jail can reopen
	// through /proc/1/fd. The init's GOMAXPROCS is fixed anyway.
	cmd.Env = []string{defaultPath, "GODEBUG=containermaxprocs=0"}
	cmd.Dir = "/"
	cmd.ExtraFiles = []*os.File{cfgR, readyW} // fds 3 and 4 in the init
	// Its own session and no parent-death signal: the jail outlives its creator.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Cloneflags: uintptr(flags)}
	l.log.Debug("start jail init", "container", s.Name, "argv", argv)
	err = cmd.Start()
	cfgR.Close()
	readyW.Close()
	if err != nil {
		return fmt.Errorf("create jail %s: start init: %w", s.Name, err)
	}
	pid := cmd.Process.Pid
	// Reap the init when it dies while this process lives; once this
	// process is gone, the host's init (or a subreaper) does.
	waited := make(chan struct{})
	go func() { reap(cmd.Process); close(waited) }()
	defer func() {
		if err != nil {
			_ = cmd.Process.Kill()
			select {
			case <-waited:
			case <-time.After(5 * time.Second):
			}
		}
	}()

	// The init reads its config only now, so it is in its cgroups before it
	// does anything. It stays out of a v1 pids cgroup (its Go runtime's
	// threads would eat the container's maxProcesses) and moves each command
	// it starts into it instead.
	joined := withoutPids(cgroups)
	if err := joinCgroups(joined, pid); err != nil {
		return fmt.Errorf("create jail %s: %w", s.Name, err)
	}
	for _, c := range cgroups {
		if !slices.Contains(joined, c) {
			cfg.JoinProcs = append(cfg.JoinProcs, filepath.Join(c, "cgroup.procs"))
		}
	}
	if err := json.NewEncoder(cfgW).Encode(cfg); err != nil {
		return fmt.Errorf("create jail %s: send config to init: %w", s.Name, err)
	}
	cfgW.Close()

	msg, err := readReady(ctx, readyR)
	if err != nil {
		return fmt.Errorf("create jail %s: %w", s.Name, err)
	}
	if msg != "ok" {
		if msg == "" {
			msg = "init exited without a message"
		}
		return fmt.Errorf("create jail %s: %s", s.Name, strings.TrimPrefix(msg, "error: "))
	}
	start, err := procStartTime(pid)
	if err != nil {
		return fmt.Errorf("create jail %s: %w", s.Name, err)
	}
	st := state{Pid: pid, StartTime: start, Root: s.Root, Hostname: hostname, PrivateNet: private, Cgroups: cgroups}
	data, _ := json.Marshal(st)
	if err := atomicfile.Write(l.stateFile(s.Name), data, 0o600); err != nil {
		return fmt.Errorf("create jail %s: %w", s.Name, err)
	}
	// The pid file comes last: List and Remove key on it.
	if err := atomicfile.Write(l.pidFile(s.Name), []byte(strconv.Itoa(pid)+"\n"), 0o600); err != nil {
		os.Remove(l.stateFile(s.Name))
		return fmt.Errorf("create jail %s: %w", s.Name, err)
	}
	l.log.Info("jail created", "container", s.Name, "action", "create", "pid", pid)
	return nil
}

// reap waits for the child p to exit and reaps it. It waits for a pidfd to
// become readable in the runtime's poller rather than in a wait system call:
// a supervisor's jail init is its child for as long as the container runs,
// and a goroutine blocked in waitid holds an OS thread (and its stacks,
// resident in every supervisor) all that time.
func reap(p *os.Process) {
	if fd, err := unix.PidfdOpen(p.Pid, unix.PIDFD_NONBLOCK); err == nil {
		f := os.NewFile(uintptr(fd), "pidfd")
		if rc, err := f.SyscallConn(); err == nil {
			_ = rc.Read(func(fd uintptr) bool {
				pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
				n, err := unix.Poll(pfd, 0)
				return err != nil || n > 0 // readable once p has exited
			})
		}
		f.Close()
	}
	// p has exited (or the poller could not wait: then this blocks).
	_, _ = p.Wait()
}

// lock serializes Create and Remove of one jail across processes (the
// service, supervisors and the CLI may all act on it).
func (l *Driver) lock(name string) (func(), error) {
	p := filepath.Join(l.jailsDir(), name+".lock")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", p, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", p, err)
	}
	return func() { f.Close() }, nil
}

// withoutPids drops the cgroups that are v1 pids cgroups only.
func withoutPids(dirs []string) []string {
	var out []string
	for _, d := range dirs {
		_, pidsErr := os.Stat(filepath.Join(d, "pids.max"))
		_, memErr := os.Stat(filepath.Join(d, "memory.max")) // v2: one dir for all
		if pidsErr == nil && memErr != nil {
			continue
		}
		out = append(out, d)
	}
	return out
}

// readReady reads the init's one-line verdict: "ok" or "error: message".
func readReady(ctx context.Context, r *os.File) (string, error) {
	deadline := time.Now().Add(initStartTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = r.SetReadDeadline(deadline)
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			_ = r.SetReadDeadline(time.Now())
		case <-done:
		}
	}()
	b, err := io.ReadAll(r)
	if err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("wait for init: %w", ctx.Err())
		}
		return "", fmt.Errorf("wait for init: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// load reads a jail's state; alive tells whether its init still runs (the
// same process, not a recycled pid). st is nil when there is no pid file.
func (l *Driver) load(name string) (st *state, alive bool) {
	b, err := os.ReadFile(l.pidFile(name))
	if err != nil {
		return nil, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return &state{}, false
	}
	st = &state{Pid: pid}
	if data, err := os.ReadFile(l.stateFile(name)); err == nil {
		_ = json.Unmarshal(data, st)
		st.Pid = pid
	}
	start, err := procStartTime(pid)
	return st, err == nil && start == st.StartTime
}

// procStartTime returns the start time of a live (not zombie) process.
func procStartTime(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("process %d: %w", pid, err)
	}
	// The command name may hold spaces and parentheses: fields follow the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("process %d: malformed stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), so field 22 (starttime) is f[19].
	if len(f) < 20 {
		return 0, fmt.Errorf("process %d: malformed stat", pid)
	}
	if f[0] == "Z" || f[0] == "X" {
		return 0, fmt.Errorf("process %d: exited", pid)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// request turns p into the init's request, resolving the user in the
// jail's own /etc/passwd.
func (l *Driver) request(name string, p jail.Process) (*state, runRequest, error) {
	if len(p.Argv) == 0 {
		return nil, runRequest{}, fmt.Errorf("command in jail %s: empty argv", name)
	}
	if !validName(name) {
		return nil, runRequest{}, fmt.Errorf("command in jail: invalid name %q", name)
	}
	st, alive := l.load(name)
	if !alive {
		return nil, runRequest{}, fmt.Errorf("command in jail %s: %w", name, jail.ErrNotFound)
	}
	// /proc/PID/root is the jail's root as its init sees it, volumes included.
	uid, gid, err := lookupUser(fmt.Sprintf("/proc/%d/root", st.Pid), p.User)
	if err != nil {
		return nil, runRequest{}, fmt.Errorf("command in jail %s: user %q: %w", name, p.User, err)
	}
	wd := p.Workdir
	if wd == "" {
		wd = "/"
	}
	return st, runRequest{Argv: p.Argv, Env: p.Env, UID: uid, GID: gid, Dir: wd}, nil
}

// Command prepares p to run in the jail name: the returned process is this
// binary's exec shim, started with a fixed environment (never p.Env, review
// H4), which hands the request (read from a memfd on its fd 3) and its
// standard files to the jail's init, relays every signal it gets to the
// command, and exits as the command did. The init starts the command as its
// child, already inside every namespace, the root and the cgroups; if the
// shim dies, the init kills the command.
func (l *Driver) Command(name string, p jail.Process) (*exec.Cmd, error) {
	_, req, err := l.request(name, p)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("command in jail %s: %w", name, err)
	}
	fd, err := unix.MemfdCreate("zocker-request", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("command in jail %s: %w", name, err)
	}
	// Closed when the *exec.Cmd holding it is garbage (os.File's finalizer).
	reqFile := os.NewFile(uintptr(fd), "request")
	if _, err := reqFile.Write(b); err != nil {
		reqFile.Close()
		return nil, fmt.Errorf("command in jail %s: %w", name, err)
	}
	if _, err := reqFile.Seek(0, io.SeekStart); err != nil {
		reqFile.Close()
		return nil, fmt.Errorf("command in jail %s: %w", name, err)
	}
	argv := append(append([]string{}, l.self...), "run", "--sock", filepath.Join(l.jailsDir(), controlName(name)))
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = []string{defaultPath}
	cmd.Dir = "/"
	cmd.ExtraFiles = []*os.File{reqFile}
	return cmd, nil
}

// Start runs p in the jail name as a child of the jail's init, with no
// process on the host between (jail.Starter): the supervisor's main
// command. When it exits, what is left of its process group is killed.
func (l *Driver) Start(name string, p jail.Process, stdin, stdout, stderr *os.File) (jail.Proc, error) {
	st, req, err := l.request(name, p)
	if err != nil {
		return nil, err
	}
	req.KillGroup = true
	if stdin == nil {
		devnull, err := os.Open(os.DevNull)
		if err != nil {
			return nil, fmt.Errorf("command in jail %s: %w", name, err)
		}
		defer devnull.Close()
		stdin = devnull
	}
	for _, f := range []**os.File{&stdout, &stderr} {
		if *f == nil {
			devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
			if err != nil {
				return nil, fmt.Errorf("command in jail %s: %w", name, err)
			}
			defer devnull.Close()
			*f = devnull
		}
	}
	c, err := l.dialControl(name)
	if err != nil {
		return nil, fmt.Errorf("command in jail %s: %w", name, err)
	}
	nsPid, err := startVia(c, req, [3]*os.File{stdin, stdout, stderr})
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("command in jail %s: %w", name, err)
	}
	return &proc{c: c, pid: hostPid(st.Pid, nsPid)}, nil
}

// proc is a command started through the init's control socket.
type proc struct {
	c   *net.UnixConn
	pid int
}

func (p *proc) Pid() int                        { return p.pid }
func (p *proc) Signal(sig syscall.Signal) error { return signalVia(p.c, sig) }

func (p *proc) Wait() (syscall.WaitStatus, error) {
	defer p.c.Close()
	return waitVia(p.c)
}

func hasKey(env []string, key string) bool {
	for _, kv := range env {
		if strings.HasPrefix(kv, key+"=") {
			return true
		}
	}
	return false
}

// Remove kills the jail's init, which takes every process of its pid
// namespace and, with its mount namespace, every mount it made; then it
// removes the jail's cgroups and files. A jail that does not exist is fine.
func (l *Driver) Remove(ctx context.Context, name string) error {
	if !validName(name) {
		return fmt.Errorf("remove jail: invalid name %q", name)
	}
	if _, err := os.Stat(l.pidFile(name)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	unlock, err := l.lock(name)
	if err != nil {
		return fmt.Errorf("remove jail %s: %w", name, err)
	}
	defer unlock()
	st, alive := l.load(name)
	if st == nil {
		return nil
	}
	if alive {
		if err := syscall.Kill(st.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("remove jail %s: kill init %d: %w", name, st.Pid, err)
		}
		for {
			if start, err := procStartTime(st.Pid); err != nil || start != st.StartTime {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("remove jail %s: wait for init %d: %w", name, st.Pid, ctx.Err())
			case <-time.After(2 * time.Millisecond):
			}
		}
	}
	l.cleanup(name, st)
	l.log.Info("jail removed", "container", name, "action", "destroy")
	return nil
}

// cleanup removes what a dead jail left: its cgroups and files.
func (l *Driver) cleanup(name string, st *state) {
	removeCgroups(st.Cgroups, l.log.With("container", name))
	os.Remove(filepath.Join(l.jailsDir(), controlName(name)))
	os.Remove(l.pidFile(name))
	os.Remove(l.stateFile(name))
}

// List returns the running jails from the pid files, without any command.
func (l *Driver) List(ctx context.Context) ([]jail.Info, error) {
	entries, err := os.ReadDir(l.jailsDir())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list jails: %w", err)
	}
	var out []jail.Info
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".pid")
		if !ok || !validName(name) {
			continue
		}
		st, alive := l.load(name)
		if !alive {
			continue
		}
		out = append(out, jail.Info{Name: name, JID: st.Pid, Path: st.Root, Hostname: st.Hostname})
	}
	return out, nil
}

// lookupUser resolves user ("name", "uid", "name:group" or "uid:gid") in the
// jail's own /etc/passwd and /etc/group under root. A numeric user needs no
// passwd entry; its group is then 0, as with Docker.
func lookupUser(root, user string) (uid, gid int, err error) {
	if user == "" {
		return 0, 0, nil
	}
	u, g, hasGroup := strings.Cut(user, ":")
	n, numErr := strconv.Atoi(u)
	numeric := numErr == nil && n >= 0
	found := false
	scanErr := scanColonFile(root, "/etc/passwd", func(f []string) bool {
		if len(f) < 4 || (f[0] != u && !(numeric && f[2] == u)) {
			return false
		}
		id, err1 := strconv.Atoi(f[2])
		grp, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil {
			return false
		}
		uid, gid, found = id, grp, true
		return true
	})
	switch {
	case found:
	case numeric:
		uid, gid = n, 0
	case scanErr != nil:
		return 0, 0, fmt.Errorf("read the container's /etc/passwd: %w", scanErr)
	default:
		return 0, 0, fmt.Errorf("no such user in the container's /etc/passwd")
	}
	if hasGroup {
		if n, err := strconv.Atoi(g); err == nil && n >= 0 {
			return uid, n, nil
		}
		gid = -1
		err := scanColonFile(root, "/etc/group", func(f []string) bool {
			if len(f) >= 3 && f[0] == g {
				if n, err := strconv.Atoi(f[2]); err == nil {
					gid = n
					return true
				}
			}
			return false
		})
		if err != nil || gid < 0 {
			return 0, 0, fmt.Errorf("no such group %q in the container's /etc/group", g)
		}
	}
	return uid, gid, nil
}

// scanColonFile calls fn with the fields of each line of a passwd-style file
// inside root (no symlink followed, a regular file only) until fn returns true.
func scanColonFile(root, path string, fn func([]string) bool) error {
	// The container runs while this reads its file: no symlink on the path
	// (a swapped component would lead to the host), a regular file only
	// (a FIFO would block the caller).
	f, err := jail.OpenFileInRoot(root, path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		if fn(strings.Split(line, ":")) {
			return nil
		}
	}
	return sc.Err()
}
