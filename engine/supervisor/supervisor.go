package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/engine/jail"
)

// LimitsReporter is implemented by jail drivers that may be unable to
// enforce resource limits on this host (FreeBSD without kern.racct.enable,
// Linux without the cgroup controllers); the container then runs anyway and
// its status message says so.
type LimitsReporter interface {
	LimitsEnforced() (bool, string)
}

// removeTimeout bounds jail removal at stop.
const removeTimeout = 2 * time.Minute

// supervisor is the state of one Run.
type supervisor struct {
	stateDir string
	cfg      Config
	driver   jail.Driver
	log      *slog.Logger
	stopSig  syscall.Signal
	logw     *logWriter
	now      func() time.Time
	// restartPending: the next start is a restart (counted in the status).
	restartPending bool
	// warnings are what the driver could not do for the jail.
	warnings []string

	mu     sync.Mutex // guards status, written by the main loop and the health checker
	status Status
	// ready, when Start started this supervisor, is closed once a state
	// past "starting" is written (see readyEnv).
	ready *os.File
	// dropReported is when dropped log lines were last written to the
	// status; dropMsg the message it set then.
	dropReported time.Time
	dropMsg      string
}

// Run is the supervisor's main loop for container name: it takes the
// container's lock for its lifetime, creates the jail, runs the command and
// applies the restart policy until ctx ends (the hidden command cancels it on
// SIGTERM), then stops the command (stop signal, SIGKILL after the stop
// timeout), removes the jail, records the state stopped and returns nil.
// When the jail cannot be created it records the state failed and returns
// the error.
func Run(ctx context.Context, stateDir, name string, driver jail.Driver, log *slog.Logger) (err error) {
	log = log.With("container", name)
	ready := takeReady()
	CloseInherited()
	if ready != nil {
		defer ready.Close() // also when Run fails before any state
	}
	lock, err := acquireLock(stateDir, name)
	if err != nil {
		return err
	}
	// The kernel drops the lock when the process dies; closing it here only
	// matters for in-process callers.
	defer lock.Close()

	s := &supervisor{stateDir: stateDir, driver: driver, log: log, now: time.Now, ready: ready}
	prev, prevErr := readStatus(stateDir, name)
	s.status = Status{Name: name, SupervisorPID: os.Getpid(), State: StateStarting, Health: Health{Status: HealthNone}}
	// Our pid goes on record at once: Stop signals the pid in the status file.
	s.writeStatus()

	cfg, err := ReadConfig(stateDir, name)
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		s.fail(err)
		return err
	}
	s.cfg = cfg.withDefaults()
	s.status.Annotations = s.cfg.Annotations
	s.stopSig, _ = ParseSignal(s.cfg.StopSignal)

	s.logw, err = openLog(LogPath(stateDir, name), s.cfg.Log.MaxBytes, s.cfg.Log.Keep)
	if err != nil {
		s.fail(err)
		return err
	}
	defer s.logw.Close()
	s.logw.onDrop = s.logDropped

	if err := s.createJail(ctx, prevErr == nil && prev.State != StateStopped); err != nil {
		s.fail(err)
		return err
	}
	if msg := limitsWarning(driver, s.cfg.Jail.Limits); msg != "" {
		s.warnings = []string{msg}
		s.update(func(st *Status) { st.Message = msg })
	}
	log.Info("jail created", "action", "create")

	done := s.loop(ctx)

	rctx, cancel := context.WithTimeout(context.Background(), removeTimeout)
	defer cancel()
	if err := driver.Remove(rctx, name); err != nil {
		err = fmt.Errorf("remove jail of container %s: %w", name, err)
		log.Error("stop", "action", "remove", "err", err)
		// failed, not stopped: Stop retries the removal.
		s.update(func(st *Status) {
			st.State, st.PID, st.Message = StateFailed, 0, err.Error()
		})
		return err
	}
	if done {
		// The command's last exit stays on record (ps -a: exited (N)).
		s.update(func(st *Status) { st.State, st.PID = StateExited, 0 })
		log.Info("command done, jail removed", "action", "exit")
		return nil
	}
	s.update(func(st *Status) { st.State, st.PID = StateStopped, 0 })
	log.Info("stopped", "action", "stop")
	return nil
}

// jailErr says that creating the container's jail failed, once: the
// driver's error already names the jail, which is the container's name
// unless the driver renamed it.
func (s *supervisor) jailErr(err error) error {
	if s.cfg.Jail.Name == s.cfg.Name && strings.HasPrefix(err.Error(), "create jail "+s.cfg.Name+":") {
		return err
	}
	if s.cfg.Jail.Name == s.cfg.Name {
		return fmt.Errorf("create jail %s: %w", s.cfg.Name, err)
	}
	return fmt.Errorf("create jail of container %s: %w", s.cfg.Name, err)
}

// createJail creates the container's jail. A jail of that name left behind
// by a dead supervisor of this container (its status file says it was not
// stopped) is removed first: holding the lock, this supervisor owns the name.
func (s *supervisor) createJail(ctx context.Context, mayBeStale bool) error {
	cctx, cancel := context.WithTimeout(ctx, removeTimeout)
	defer cancel()
	err := s.driver.Create(cctx, s.cfg.Jail)
	if err == nil || !mayBeStale {
		if err != nil {
			return s.jailErr(err)
		}
		return nil
	}
	infos, lerr := s.driver.List(cctx)
	if lerr != nil || !hasJail(infos, s.cfg.Jail.Name) {
		return s.jailErr(err)
	}
	s.log.Warn("removing the jail left by a dead supervisor", "action", "remove")
	if rerr := s.driver.Remove(cctx, s.cfg.Jail.Name); rerr != nil {
		return fmt.Errorf("remove stale jail of container %s: %w", s.cfg.Name, rerr)
	}
	if err := s.driver.Create(cctx, s.cfg.Jail); err != nil {
		return s.jailErr(err)
	}
	return nil
}

func hasJail(infos []jail.Info, name string) bool {
	for _, i := range infos {
		if i.Name == name {
			return true
		}
	}
	return false
}

// limitsWarning returns "limits not enforced: why" when the container has
// limits the driver cannot enforce, else "".
func limitsWarning(driver jail.Driver, lim jail.Limits) string {
	if lim == (jail.Limits{}) {
		return ""
	}
	r, ok := driver.(LimitsReporter)
	if !ok {
		return ""
	}
	enforced, why := r.LimitsEnforced()
	if enforced {
		return ""
	}
	if strings.HasPrefix(why, "limits not enforced") {
		return why
	}
	return "limits not enforced: " + why
}

// loop runs the command and restarts it per the policy until ctx ends. It
// returns true when it ended on its own: the command is done for good and
// the config says ExitWhenDone.
func (s *supervisor) loop(ctx context.Context) bool {
	delay := s.cfg.Backoff.Initial.D()
	for {
		started := s.now()
		ex := s.runOnce(ctx)
		ran := s.now().Sub(started)
		// One status write per exit, so that no reader sees a half-updated
		// record (an exit without the decision that follows it).
		record := func(st *Status) {
			st.PID, st.LastExitCode, st.LastSignal, st.LastExitAt = 0, ex.code, ex.signal, ex.at
			if ex.startErr != nil {
				st.StartedAt = ex.at
				st.Health = Health{Status: HealthNone}
				st.Message = joinMessages(append([]string{ex.startErr.Error()}, s.warnings...))
			}
		}
		if ctx.Err() != nil {
			s.update(record)
			return false
		}
		if ex.startErr != nil {
			s.log.Warn("command did not start", "action", "start", "err", ex.startErr)
		} else {
			s.log.Info("command exited", "action", "exit", "code", ex.code, "signal", ex.signal, "ran", ran.Round(time.Millisecond))
		}
		if !s.shouldRestart(ex.code) {
			s.update(func(st *Status) { record(st); st.State = StateExited })
			if s.cfg.ExitWhenDone {
				return true
			}
			<-ctx.Done()
			return false
		}
		// A command that ran long enough is not crash looping: start over.
		if ran >= s.cfg.Backoff.Reset.D() {
			delay = s.cfg.Backoff.Initial.D()
		}
		s.update(func(st *Status) {
			record(st)
			st.State = StateBackoff
			st.NextStartAt = s.now().Add(delay).UTC()
		})
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		delay *= 2
		if max := s.cfg.Backoff.Max.D(); delay > max {
			delay = max
		}
		// The jail itself can vanish under a running supervisor (its init
		// killed by hand, or a jail -r from outside): make it again rather
		// than back off forever against a jail that is not there.
		if ex.startErr != nil && errors.Is(ex.startErr, jail.ErrNotFound) {
			if err := s.createJail(ctx, true); err != nil {
				s.log.Warn("re-create the missing jail", "action", "create", "err", err)
			} else {
				s.log.Warn("the jail was gone: re-created it", "action", "create")
			}
		}
		// Counted with the next start's status write.
		s.restartPending = true
	}
}

// exit is how one run of the command ended.
type exit struct {
	code     int // 128+N for signal N, 127 when it could not start
	signal   string
	at       time.Time
	startErr error
}

func (s *supervisor) shouldRestart(code int) bool {
	switch s.cfg.RestartPolicy {
	case RestartNever:
		return false
	case RestartOnFailure:
		return code != 0
	}
	return true
}

// runOnce starts the command, logs its output, runs health checks while it
// runs, and waits for it; when ctx ends first it stops the command. It
// returns how the command ended; the caller records it.
func (s *supervisor) runOnce(ctx context.Context) exit {
	var pipes [2][2]*os.File // stdout, stderr: read end, write end
	var err error
	for i := 0; i < 2 && err == nil; i++ {
		pipes[i][0], pipes[i][1], err = os.Pipe()
	}
	var p running
	if err == nil {
		// Our own pipes rather than io.Writers: waiting then ends when the
		// command exits, even if a child it left behind holds them.
		p, err = s.start(pipes[0][1], pipes[1][1])
	}
	for i := range pipes {
		if pipes[i][1] != nil {
			pipes[i][1].Close()
		}
		if err != nil && pipes[i][0] != nil {
			pipes[i][0].Close()
		}
	}
	now := s.now().UTC()
	if err != nil {
		err = fmt.Errorf("start command of container %s: %w", s.cfg.Name, err)
		if werr := s.logw.writeLine(formatLine(now, "zocker", []byte(err.Error()))); werr != nil {
			s.log.Error("write log", "err", werr)
		}
		s.mu.Lock()
		s.countRestart(&s.status)
		s.mu.Unlock()
		return exit{code: 127, at: now, startErr: err}
	}
	var pumps sync.WaitGroup
	for i, stream := range []string{"stdout", "stderr"} {
		pumps.Add(1)
		go func(r *os.File) {
			defer pumps.Done()
			defer r.Close()
			if err := pump(r, s.logw, stream, s.now); err != nil {
				s.log.Error("read output", "err", err)
			}
		}(pipes[i][0])
	}
	pumped := make(chan struct{})
	go func() { pumps.Wait(); close(pumped) }()
	health := HealthNone
	if s.cfg.Healthcheck != nil {
		health = HealthStarting
	}
	s.update(func(st *Status) {
		s.countRestart(st)
		st.State, st.PID, st.StartedAt = StateRunning, p.pid(), now
		st.Health = Health{Status: health}
		st.Message = joinMessages(s.warnings) // a past start error is over
	})
	s.log.Info("command started", "action", "start", "pid", p.pid())
	// No debug.FreeOSMemory here, though what starting took is garbage
	// now: it runs a collection, and a process that has collected once is
	// collected again every 2 minutes for good (the runtime's forced GC).
	// Each cycle touches GC metadata (span sets, mark bits) that stays
	// resident: with it, an idle supervisor measured 1.61 MB at once and
	// grew to 1.88 MB over 6 minutes; without it, one whose start-up stays
	// under the first heap goal never collects and holds 1.37 MB flat
	// (issue 15: 20 idle containers, Pss 125 s to 10 minutes after start).

	done := make(chan syscall.WaitStatus, 1)
	go func() { done <- p.wait() }()
	hctx, stopHealth := context.WithCancel(ctx)
	var hwg sync.WaitGroup
	if s.cfg.Healthcheck != nil {
		hwg.Add(1)
		go func() { defer hwg.Done(); s.healthLoop(hctx) }()
	}

	var ws syscall.WaitStatus
	select {
	case ws = <-done:
	case <-ctx.Done():
		ws = s.stop(p, done)
	}
	stopHealth()
	hwg.Wait()
	// The output of a command's children that still hold the pipe keeps
	// going to the log; do not wait for them beyond a moment.
	select {
	case <-pumped:
	case <-time.After(200 * time.Millisecond):
	}
	p.killGroup(s.log)
	code, sig := exitStatus(ws)
	return exit{code: code, signal: sig, at: s.now().UTC()}
}

// running is the command of one run: started by the driver's jail.Starter
// (the Linux jail's init runs it as its child) or as the driver's
// *exec.Cmd (FreeBSD: jexec).
type running interface {
	pid() int
	signal(syscall.Signal) error
	wait() syscall.WaitStatus
	// killGroup kills what is left of the command's process group.
	killGroup(log *slog.Logger)
}

// start starts the command with stdout and stderr.
func (s *supervisor) start(stdout, stderr *os.File) (running, error) {
	if st, ok := s.driver.(jail.Starter); ok {
		p, err := st.Start(s.cfg.Jail.Name, s.cfg.Process, nil, stdout, stderr)
		if err != nil {
			return nil, err
		}
		return starterProc{p}, nil
	}
	cmd, err := s.driver.Command(s.cfg.Jail.Name, s.cfg.Process)
	if err != nil {
		return nil, err
	}
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// Its own process group, so that what it leaves behind can be killed
	// as one: a restart must not find the old command still running beside
	// the new one.
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return cmdProc{cmd}, nil
}

type starterProc struct{ p jail.Proc }

func (p starterProc) pid() int                        { return p.p.Pid() }
func (p starterProc) signal(sig syscall.Signal) error { return p.p.Signal(sig) }

// killGroup: the jail's init killed the group when the command exited.
func (p starterProc) killGroup(*slog.Logger) {}

func (p starterProc) wait() syscall.WaitStatus {
	ws, err := p.p.Wait()
	if err != nil {
		// The connection to the init broke: the jail is going away.
		return syscall.WaitStatus(syscall.SIGKILL)
	}
	return ws
}

type cmdProc struct{ cmd *exec.Cmd }

func (p cmdProc) pid() int { return p.cmd.Process.Pid }

func (p cmdProc) signal(sig syscall.Signal) error { return p.cmd.Process.Signal(sig) }

func (p cmdProc) wait() syscall.WaitStatus {
	_ = p.cmd.Wait()
	if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); ok {
		return ws
	}
	return syscall.WaitStatus(127 << 8)
}

func (p cmdProc) killGroup(log *slog.Logger) {
	if err := syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		log.Warn("kill the command's process group", "pid", p.cmd.Process.Pid, "err", err)
	}
}

// countRestart counts a pending restart in st; called under s.mu.
func (s *supervisor) countRestart(st *Status) {
	if s.restartPending {
		st.Restarts++
		s.restartPending = false
	}
	st.NextStartAt = time.Time{}
}

// stop sends the stop signal, then SIGKILL after the stop timeout, and
// returns the command's wait status.
func (s *supervisor) stop(p running, done <-chan syscall.WaitStatus) syscall.WaitStatus {
	s.log.Info("stopping", "action", "stop", "signal", s.stopSig.String())
	if err := p.signal(s.stopSig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		s.log.Warn("stop signal", "action", "stop", "err", err)
	}
	timeout := s.cfg.StopTimeout.D()
	// `stop -t` may have changed it since the start.
	if cfg, err := ReadConfig(s.stateDir, s.cfg.Name); err == nil && cfg.StopTimeout > 0 {
		timeout = cfg.StopTimeout.D()
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case ws := <-done:
		return ws
	case <-t.C:
	}
	s.log.Warn("stop timeout passed, killing", "action", "stop", "timeout", timeout)
	if err := p.signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		s.log.Warn("kill", "action", "stop", "err", err)
	}
	return <-done
}

// exitStatus turns a wait status into an exit code, shell style: 128+N for
// a death by signal N.
func exitStatus(ws syscall.WaitStatus) (int, string) {
	if ws.Signaled() {
		return 128 + int(ws.Signal()), unixSignalName(ws.Signal())
	}
	return ws.ExitStatus(), ""
}

func unixSignalName(sig syscall.Signal) string {
	for name, s := range signals {
		if s == sig {
			return "SIG" + name
		}
	}
	return sig.String()
}

// logDropped records lines the log could not take (err set) or that the log
// works again (err nil). The status is rewritten at most once per
// reopenEvery while lines are being dropped: a flood of output to a full
// disk must not become a flood of status writes.
func (s *supervisor) logDropped(n int64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status.LogDroppedLines = n
	now := s.now()
	if err != nil {
		if !s.dropReported.IsZero() && now.Sub(s.dropReported) < reopenEvery {
			return
		}
		s.dropReported = now
		s.dropMsg = fmt.Sprintf("log: %d lines dropped: %v", n, err)
		s.status.Message = joinMessages(append(append([]string{}, s.warnings...), s.dropMsg))
		s.log.Warn("log lines dropped", "dropped", n, "err", err)
	} else {
		s.dropReported = time.Time{}
		if s.dropMsg != "" && strings.HasSuffix(s.status.Message, s.dropMsg) {
			s.status.Message = joinMessages(s.warnings)
		}
		s.dropMsg = ""
		s.log.Info("log writable again", "dropped", n)
	}
	s.writeStatusLocked()
}

// update changes the status under the lock and writes it.
func (s *supervisor) update(f func(*Status)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.status)
	s.writeStatusLocked()
}

func (s *supervisor) writeStatus() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writeStatusLocked()
}

func (s *supervisor) writeStatusLocked() {
	if err := writeStatus(s.stateDir, &s.status); err != nil {
		// The container runs on; only its record is stale.
		s.log.Error("status", "err", err)
	}
	if s.ready != nil && s.status.State != StateStarting {
		s.ready.Close()
		s.ready = nil
	}
}

func (s *supervisor) fail(err error) {
	s.log.Error("supervisor failed", "err", err)
	s.update(func(st *Status) { st.State, st.PID, st.Message = StateFailed, 0, err.Error() })
}

func joinMessages(msgs []string) string { return strings.Join(msgs, "; ") }
