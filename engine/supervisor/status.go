package supervisor

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/internal/atomicfile"
	"golang.org/x/sys/unix"
)

// ErrNotFound is returned for a container that has no state directory or file.
var ErrNotFound = errors.New("container not found")

// State is what a supervisor is doing.
type State string

// Supervisor states.
const (
	// StateStarting: the supervisor runs and is creating the jail.
	StateStarting State = "starting"
	// StateRunning: the command runs.
	StateRunning State = "running"
	// StateExited: the command exited and the restart policy says not to
	// restart it; the supervisor stays, owning the jail, until stopped.
	StateExited State = "exited"
	// StateBackoff: the command exited and will be restarted at NextStartAt.
	StateBackoff State = "backoff"
	// StateStopped: stopped on request; the jail is gone.
	StateStopped State = "stopped"
	// StateFailed: the supervisor could not run the container (e.g. the
	// jail could not be created); Message says why. Nothing is left behind.
	StateFailed State = "failed"
)

// Up reports whether the container is up: its supervisor is alive and keeps
// the container going (the command runs, is starting, backs off before a
// restart, or exited under a policy that does not restart it). This is what
// "running" means to the reconciler and to `ps`: restarting is the
// supervisor's job, so an up container is never started again.
func (s Status) Up() bool { return s.Alive && s.State != StateStopped && s.State != StateFailed }

// Running reports whether the container's command runs at this moment (the
// up gauge, resource usage sampling).
func (s Status) Running() bool { return s.Alive && s.State == StateRunning }

// Health states.
const (
	HealthNone      = "none"
	HealthStarting  = "starting"
	HealthHealthy   = "healthy"
	HealthUnhealthy = "unhealthy"
)

// Status is a container's runtime record, written atomically by its
// supervisor to STATE/containers/NAME/status.json.
type Status struct {
	Name string `json:"name"`
	// SupervisorPID is the supervisor process; PID the command (0 when none runs).
	SupervisorPID int   `json:"supervisorPid"`
	PID           int   `json:"pid,omitempty"`
	State         State `json:"state"`
	// Restarts counts the restarts of the command since the supervisor started.
	Restarts int `json:"restarts"`
	// StartedAt is when the command last started.
	StartedAt time.Time `json:"startedAt,omitempty"`
	// LastExitCode is the last exit's code: 128+N for a death by signal N,
	// 127 for a command that could not be started. Valid when LastExitAt is set.
	LastExitCode int       `json:"lastExitCode"`
	LastSignal   string    `json:"lastSignal,omitempty"`
	LastExitAt   time.Time `json:"lastExitAt,omitempty"`
	// NextStartAt is when a command in backoff restarts.
	NextStartAt time.Time `json:"nextStartAt,omitempty"`
	Health      Health    `json:"health"`
	// Message is for people: a start failure, or what the driver could not
	// do ("limits not enforced: ...").
	Message string `json:"message,omitempty"`
	// LogDroppedLines counts the output lines this supervisor could not
	// write to the container's log (a full disk): they are dropped, the
	// container runs on.
	LogDroppedLines int64             `json:"logDroppedLines,omitempty"`
	Annotations     map[string]string `json:"annotations,omitempty"`
	UpdatedAt       time.Time         `json:"updatedAt"`
	// Alive is set by List and Get (never stored): the supervisor holds its
	// lock, so it runs, whatever the pid in the file says.
	Alive bool `json:"alive"`
}

// Health is the result of the health checks.
type Health struct {
	// Status is none (no check), starting, healthy or unhealthy.
	Status string `json:"status"`
	// FailingStreak counts consecutive failed checks.
	FailingStreak int       `json:"failingStreak,omitempty"`
	LastCheckAt   time.Time `json:"lastCheckAt,omitempty"`
	LastExitCode  int       `json:"lastExitCode,omitempty"`
	// LastOutput is the last check's output, truncated.
	LastOutput string `json:"lastOutput,omitempty"`
}

func statusPath(stateDir, name string) string {
	return filepath.Join(Dir(stateDir, name), "status.json")
}

func lockPath(stateDir, name string) string {
	return filepath.Join(Dir(stateDir, name), "lock")
}

func writeStatus(stateDir string, s *Status) error {
	s.UpdatedAt = time.Now().UTC()
	s.Alive = false
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(statusPath(stateDir, s.Name), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write status of container %s: %w", s.Name, err)
	}
	return nil
}

func readStatus(stateDir, name string) (Status, error) {
	var s Status
	b, err := os.ReadFile(statusPath(stateDir, name))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return s, fmt.Errorf("read status of container %s: %w", name, ErrNotFound)
		}
		return s, fmt.Errorf("read status of container %s: %w", name, err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("parse status of container %s: %w", name, err)
	}
	s.Name = name
	s.Alive = false
	return s, nil
}

// Get returns container name's status, with Alive tested on its lock.
func Get(stateDir, name string) (Status, error) {
	s, err := readStatus(stateDir, name)
	if err != nil {
		return s, err
	}
	s.Alive, err = locked(stateDir, name)
	if err != nil {
		return s, err
	}
	return s, nil
}

// List returns the status of every container under stateDir, sorted by name,
// each marked Alive when its supervisor holds its lock. This is how the
// service adopts running supervisors at start-up and notices dead ones.
// Directories without a status file (a Start in progress) are skipped.
func List(stateDir string) ([]Status, error) {
	entries, err := os.ReadDir(filepath.Join(stateDir, "containers"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("list containers in %s: %w", stateDir, err)
	}
	var out []Status
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		s, err := Get(stateDir, e.Name())
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// locked reports whether a supervisor holds container name's lock. A lock
// survives pid reuse, unlike kill(pid, 0): the kernel drops it with the
// process. flock works the same on Linux and FreeBSD.
func locked(stateDir, name string) (bool, error) {
	// Raw descriptors: the service tests every container's lock every
	// second, and an *os.File (its finalizer, its poller registration) per
	// test is most of that cost.
	fd, err := unix.Open(lockPath(stateDir, name), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, fmt.Errorf("open lock of container %s: %w", name, err)
	}
	defer unix.Close(fd)
	err = unix.Flock(fd, unix.LOCK_SH|unix.LOCK_NB)
	if err == nil {
		// Closing the descriptor releases the lock at once.
		return false, nil
	}
	if errors.Is(err, unix.EWOULDBLOCK) || errors.Is(err, unix.EAGAIN) {
		return true, nil
	}
	return false, fmt.Errorf("test lock of container %s: %w", name, err)
}

// acquireLock takes container name's exclusive lock, retrying briefly because
// a concurrent List may hold the shared lock for an instant while testing it.
func acquireLock(stateDir, name string) (*os.File, error) {
	f, err := os.OpenFile(lockPath(stateDir, name), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock of container %s: %w", name, err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EAGAIN) {
			f.Close()
			return nil, fmt.Errorf("lock container %s: %w", name, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("lock container %s: %w", name, ErrRunning)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ErrRunning is returned when a supervisor already runs for a container.
var ErrRunning = errors.New("a supervisor already runs for this container")
