//go:build linux

package linuxns

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// The jail's init starts every command that runs in the jail (the
// container's main command, health checks, exec, build steps) as its own
// child: it already is in the jail's namespaces, root and cgroups, so no
// nsenter and no host-side helper carrying the command's environment is
// needed (review H4: the container's environment, LD_PRELOAD included,
// reaches only the command's own execve inside the jail).
//
// It listens on a SOCK_SEQPACKET unix socket, STATE/jails/NAME.sock, bound
// before it pivots into the jail's root (so processes in the jail cannot
// reach it) in a directory only root can enter. One connection runs one
// command:
//
//	client -> init  runRequest (JSON) with SCM_RIGHTS [stdin, stdout, stderr]
//	init -> client  runReply{Pid} or runReply{Error, Code}
//	client -> init  ctlMsg{Signal} ... (signals to relay)
//	init -> client  runReply{Exit} when the command has exited
//
// A client that goes away before the command exits takes the command with
// it (SIGKILL), so no command outlives whoever waits for it.

// maxRequest bounds a request (argv and environment).
const maxRequest = 1 << 20

// runRequest asks the init to start a command.
type runRequest struct {
	Argv []string `json:"argv"`
	Env  []string `json:"env"`
	UID  int      `json:"uid"`
	GID  int      `json:"gid"`
	Dir  string   `json:"dir"`
	// KillGroup: when the command exits, kill what is left of its process
	// group (the supervisor's main command: a restart must not find the old
	// command's children still running).
	KillGroup bool `json:"killGroup,omitempty"`
}

// runReply is the init's answer: first Pid (or Error with the exit Code a
// shell would give: 127 not found, 126 cannot execute), then Exit.
type runReply struct {
	Pid   int     `json:"pid,omitempty"`
	Error string  `json:"error,omitempty"`
	Code  int     `json:"code,omitempty"`
	Exit  *uint32 `json:"exit,omitempty"` // the wait status
}

// ctlMsg is what a client sends while its command runs.
type ctlMsg struct {
	Signal int `json:"signal"`
}

func controlName(name string) string { return name + ".sock" }

// viaDir returns a short path to file in the directory open as dir: unix
// socket paths are limited to 108 bytes, state directories are not.
func viaDir(dir *os.File, file string) string {
	return "/proc/self/fd/" + strconv.Itoa(int(dir.Fd())) + "/" + file
}

// listenControl binds the init's control socket (before the pivot).
func listenControl(dirPath, file string) (*net.UnixListener, error) {
	dir, err := os.Open(dirPath)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	defer dir.Close()
	p := viaDir(dir, file)
	_ = os.Remove(p) // left by a dead init of the same name
	l, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: p, Net: "unixpacket"})
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	// The name is the driver's to remove (Remove, cleanup): a file name
	// through /proc/self/fd means nothing once we have pivoted.
	l.SetUnlinkOnClose(false)
	return l, nil
}

// dialControl connects to the control socket of jail name.
func (l *Driver) dialControl(name string) (*net.UnixConn, error) {
	return dialSocket(filepath.Join(l.jailsDir(), controlName(name)))
}

// dialSocket connects to the control socket at path.
func dialSocket(path string) (*net.UnixConn, error) {
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	c, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: viaDir(dir, filepath.Base(path)), Net: "unixpacket"})
	if err != nil {
		return nil, fmt.Errorf("connect to the init (a jail made by an older version has none: restart the container): %w", err)
	}
	return c, nil
}

// sendRequest sends req with the three standard files.
func sendRequest(c *net.UnixConn, req runRequest, stdio [3]*os.File) error {
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if len(b) > maxRequest {
		return fmt.Errorf("command and environment are %d bytes, more than %d", len(b), maxRequest)
	}
	fds := make([]int, 3)
	for i, f := range stdio {
		fds[i] = int(f.Fd())
	}
	_, _, err = c.WriteMsgUnix(b, unix.UnixRights(fds...), nil)
	return err
}

func readReply(c *net.UnixConn) (runReply, error) {
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		return runReply{}, err
	}
	if n == 0 {
		return runReply{}, io.EOF
	}
	var r runReply
	if err := json.Unmarshal(buf[:n], &r); err != nil {
		return runReply{}, fmt.Errorf("reply from the init: %w", err)
	}
	return r, nil
}

// start sends req and waits for the init's first reply.
func startVia(c *net.UnixConn, req runRequest, stdio [3]*os.File) (int, error) {
	if err := sendRequest(c, req, stdio); err != nil {
		return 0, fmt.Errorf("send the command to the init: %w", err)
	}
	r, err := readReply(c)
	if err != nil {
		return 0, fmt.Errorf("the init did not answer: %w", err)
	}
	if r.Error != "" {
		return 0, &startError{msg: r.Error, code: r.Code}
	}
	return r.Pid, nil
}

// startError is a command the init could not start; code is what a shell
// would exit with (127: not found, 126: not executable).
type startError struct {
	msg  string
	code int
}

func (e *startError) Error() string { return e.msg }

// waitVia reads replies until the exit. A connection that ends first means
// the init is gone, and with it every process of the jail (SIGKILL).
func waitVia(c *net.UnixConn) (syscall.WaitStatus, error) {
	for {
		r, err := readReply(c)
		if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
			return syscall.WaitStatus(syscall.SIGKILL), nil
		}
		if err != nil {
			return 0, err
		}
		if r.Exit != nil {
			return syscall.WaitStatus(*r.Exit), nil
		}
	}
}

func signalVia(c *net.UnixConn, sig syscall.Signal) error {
	b, _ := json.Marshal(ctlMsg{Signal: int(sig)})
	_, err := c.Write(b)
	return err
}

// controlServer is the init's side.
type controlServer struct {
	// procs are cgroup.procs files of cgroups the init itself stays out of
	// (a v1 pids cgroup): each command is moved in right after its start.
	procs []*os.File

	mu   sync.Mutex // held while forking and while reaping: no exit is missed
	jobs map[int]*job
}

type job struct {
	killGroup bool
	exit      chan uint32
}

func newControlServer(procs []*os.File) *controlServer {
	return &controlServer{procs: procs, jobs: map[int]*job{}}
}

// reap collects every exited child (the jail's orphans too) and hands the
// exit of a command to its connection.
func (s *controlServer) reap() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
		if ws.Stopped() || ws.Continued() {
			continue
		}
		j := s.jobs[pid]
		if j == nil {
			continue
		}
		delete(s.jobs, pid)
		if j.killGroup {
			// The group's id stays reserved while any member lives, so this
			// reaches exactly what the command left behind.
			_ = unix.Kill(-pid, unix.SIGKILL)
		}
		j.exit <- uint32(ws)
	}
}

// kill signals pid while it is still our unreaped child (never a recycled pid).
func (s *controlServer) kill(pid int, sig syscall.Signal, group bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.jobs[pid]; !ok {
		return
	}
	if group {
		_ = unix.Kill(-pid, sig)
	}
	_ = unix.Kill(pid, sig)
}

func (s *controlServer) serve(l *net.UnixListener) {
	for {
		c, err := l.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		go s.handle(c)
	}
}

// trusted tells whether the peer is root or our own user.
func trusted(c *net.UnixConn) bool {
	raw, err := c.SyscallConn()
	if err != nil {
		return false
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil || cerr != nil {
		return false
	}
	return cred.Uid == 0 || int(cred.Uid) == os.Geteuid()
}

func (s *controlServer) handle(c *net.UnixConn) {
	defer c.Close()
	if !trusted(c) {
		return
	}
	// The request's size first (MSG_PEEK|MSG_TRUNC gives a packet's full
	// length): a buffer of maxRequest for every health check would keep a
	// megabyte resident in each init.
	size, err := peekSize(c)
	if err != nil {
		return
	}
	buf := make([]byte, min(size, maxRequest)+1)
	oob := make([]byte, unix.CmsgSpace(3*4))
	n, oobn, flags, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return
	}
	fds := receivedFDs(oob[:oobn])
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	reply := func(r runReply) { b, _ := json.Marshal(r); _, _ = c.Write(b) }
	var req runRequest
	switch {
	case flags&unix.MSG_TRUNC != 0 || n > maxRequest:
		reply(runReply{Error: "request too large", Code: 126})
		return
	case len(fds) != 3:
		reply(runReply{Error: "request without its three standard files", Code: 126})
		return
	}
	if err := json.Unmarshal(buf[:n], &req); err != nil || len(req.Argv) == 0 {
		reply(runReply{Error: fmt.Sprintf("bad request: %v", err), Code: 126})
		return
	}
	buf = nil
	pid, j, err := s.start(req, fds)
	if err != nil {
		var se *startError
		code := 126
		if errors.As(err, &se) {
			code = se.code
		}
		reply(runReply{Error: err.Error(), Code: code})
		return
	}
	for _, fd := range fds {
		unix.Close(fd)
	}
	fds = nil
	reply(runReply{Pid: pid})
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		msg := make([]byte, 256)
		for {
			n, err := c.Read(msg)
			if err != nil || n == 0 {
				return
			}
			var m ctlMsg
			if json.Unmarshal(msg[:n], &m) == nil && m.Signal > 0 && m.Signal < 65 {
				s.kill(pid, syscall.Signal(m.Signal), false)
			}
		}
	}()
	select {
	case ws := <-j.exit:
		reply(runReply{Exit: &ws})
	case <-gone:
		// The client went away: the command goes too.
		s.kill(pid, syscall.SIGKILL, j.killGroup)
		<-j.exit
	}
}

// peekSize returns the length of the next packet on c without reading it.
func peekSize(c *net.UnixConn) (int, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var rerr error
	err = raw.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, rerr = unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_TRUNC)
		return rerr != unix.EAGAIN
	})
	if err != nil {
		return 0, err
	}
	return n, rerr
}

func receivedFDs(oob []byte) []int {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var fds []int
	for _, m := range msgs {
		if r, err := unix.ParseUnixRights(&m); err == nil {
			fds = append(fds, r...)
		}
	}
	return fds
}

// start forks and execs the command as the init's child, in its own process
// group, as the requested user, with exactly the requested environment.
func (s *controlServer) start(req runRequest, fds []int) (int, *job, error) {
	env := req.Env
	if !hasKey(env, "PATH") {
		env = append(append([]string{}, env...), defaultPath)
	}
	path, err := lookPath(req.Argv[0], pathOf(env))
	if err != nil {
		return 0, nil, err
	}
	dir := req.Dir
	if dir == "" {
		dir = "/"
	}
	attr := &syscall.ProcAttr{
		Dir:   dir,
		Env:   env,
		Files: []uintptr{uintptr(fds[0]), uintptr(fds[1]), uintptr(fds[2])},
		Sys: &syscall.SysProcAttr{
			Setpgid:    true,
			Credential: &syscall.Credential{Uid: uint32(req.UID), Gid: uint32(req.GID), Groups: []uint32{}},
		},
	}
	j := &job{killGroup: req.KillGroup, exit: make(chan uint32, 1)}
	s.mu.Lock()
	var pid int
	if len(s.procs) == 0 {
		pid, err = syscall.ForkExec(path, req.Argv, attr)
	} else {
		pid, err = s.forkIntoCgroups(path, req.Argv, attr)
	}
	if err == nil {
		s.jobs[pid] = j
	}
	s.mu.Unlock()
	if err != nil {
		code := 126
		if errors.Is(err, syscall.ENOENT) {
			code = 127
		}
		return 0, nil, &startError{msg: fmt.Sprintf("start %s: %v", req.Argv[0], err), code: code}
	}
	return pid, j, nil
}

// forkIntoCgroups starts the command stopped at its first instruction
// (traced: the kernel stops a traced child with SIGTRAP right after
// execve), moves it into the cgroups the init is not in (a v1 pids cgroup,
// where a process must be counted before it can fork), and lets it go. A
// command moved after it started could fork past maxProcesses first. Called
// with s.mu held, so the reaper cannot take the stop for an exit; ptrace
// requests must come from the thread that forked, hence the locked thread.
func (s *controlServer) forkIntoCgroups(path string, argv []string, attr *syscall.ProcAttr) (int, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	sys := *attr.Sys
	sys.Ptrace = true
	a := *attr
	a.Sys = &sys
	pid, err := syscall.ForkExec(path, argv, &a)
	if err != nil {
		return 0, err
	}
	var ws unix.WaitStatus
	for {
		_, err = unix.Wait4(pid, &ws, unix.WALL, nil)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil || !ws.Stopped() {
		// It died before running: no child to hand back.
		_ = unix.Kill(pid, unix.SIGKILL)
		return 0, fmt.Errorf("start %s: the command did not stop after execve (%v)", argv[0], err)
	}
	var moveErr error
	for _, f := range s.procs {
		// Written from inside the jail's pid namespace, the pid is ours.
		if _, err := f.WriteString(strconv.Itoa(pid)); err != nil && moveErr == nil {
			moveErr = fmt.Errorf("join cgroup %s: %w", f.Name(), err)
		}
	}
	if moveErr != nil {
		_ = unix.Kill(pid, unix.SIGKILL)
		_ = unix.PtraceDetach(pid)
		var ws unix.WaitStatus
		_, _ = unix.Wait4(pid, &ws, unix.WALL, nil)
		return 0, moveErr
	}
	if err := unix.PtraceDetach(pid); err != nil {
		_ = unix.Kill(pid, unix.SIGKILL)
		return pid, fmt.Errorf("start %s: detach: %w", argv[0], err)
	}
	return pid, nil
}

func pathOf(env []string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], "PATH="); ok {
			return v
		}
	}
	return ""
}

// lookPath finds file in path the way execvp does (in the jail's root,
// where the init lives).
func lookPath(file, path string) (string, error) {
	if strings.Contains(file, "/") {
		return file, nil
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, file)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", &startError{msg: fmt.Sprintf("%s: command not found", file), code: 127}
}

// hostPid finds the host pid of the init's child whose pid in the jail is
// nsPid (the last NSpid field of /proc/PID/status). Children are listed per
// thread of the init (the one that forked them).
func hostPid(initPid, nsPid int) int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", initPid))
	want := strconv.Itoa(nsPid)
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, c := range strings.Fields(string(b)) {
			st, err := os.ReadFile("/proc/" + c + "/status")
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(st), "\n") {
				if rest, ok := strings.CutPrefix(line, "NSpid:"); ok {
					f := strings.Fields(rest)
					if len(f) > 0 && f[len(f)-1] == want {
						pid, _ := strconv.Atoi(c)
						return pid
					}
				}
			}
		}
	}
	return 0
}
