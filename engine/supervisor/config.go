// Package supervisor runs one container: a small process per container (the
// zocker-reconcile binary re-executed with a hidden subcommand, in its own
// session) that creates the container's jail, runs its command, applies the
// restart policy with exponential backoff, writes the command's output to a
// size-capped rotated log, runs the health check, and records all of it in a
// status file. Because it is a separate process holding a lock on its state
// directory, restarting, upgrading or killing the service never stops a
// container: the service adopts running supervisors through List.
//
// Layout under the state directory, per container:
//
//	STATE/containers/NAME/config.json     what to run (written by Start)
//	STATE/containers/NAME/status.json     what runs (written by the supervisor, atomically)
//	STATE/containers/NAME/lock            flocked by the supervisor for its lifetime
//	STATE/containers/NAME/log, log.1..N   the command's output, timestamped
//	STATE/containers/NAME/supervisor.log  the supervisor's own log
//
// It is over the house's 1,500 lines: restart policy, logs with rotation and
// follow, health checks and the status file are one process's duties.
package supervisor

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/engine/jail"
)

// Restart policies (the manifests' words).
const (
	RestartAlways    = "Always"
	RestartOnFailure = "OnFailure"
	RestartNever     = "Never"
)

// Defaults applied by Config.withDefaults.
const (
	DefaultStopTimeout    = 10 * time.Second
	DefaultLogMaxBytes    = 10 << 20
	DefaultLogKeep        = 3
	DefaultBackoffInitial = time.Second
	DefaultBackoffMax     = 5 * time.Minute
	DefaultBackoffReset   = 10 * time.Minute
	DefaultHealthInterval = 30 * time.Second
	DefaultHealthTimeout  = 5 * time.Second
	DefaultHealthRetries  = 3
)

// Config is everything a supervisor needs to run one container. The service
// writes it (through Start) to STATE/containers/NAME/config.json.
type Config struct {
	// Name is the container (and jail) name.
	Name string `json:"name"`
	// Jail is the jail the supervisor creates at start and removes at stop:
	// a container is one supervisor owning its jail.
	Jail jail.Spec `json:"jail"`
	// Process is the command, argv already resolved (entrypoint + command,
	// or /bin/sh -c STRING for a shell string), with env, user and workdir.
	Process jail.Process `json:"process"`
	// RestartPolicy is Always (default), OnFailure or Never.
	RestartPolicy string `json:"restartPolicy,omitempty"`
	// StopSignal is sent to the command on stop (default SIGTERM); a name
	// such as "SIGINT" or "INT", or a number.
	StopSignal string `json:"stopSignal,omitempty"`
	// StopTimeout is how long to wait after StopSignal before SIGKILL.
	StopTimeout Duration `json:"stopTimeout,omitempty"`
	// Healthcheck, if set, runs a command in the jail on an interval.
	Healthcheck *Healthcheck `json:"healthcheck,omitempty"`
	// Log caps the command's log.
	Log LogConfig `json:"log,omitempty"`
	// Backoff times restarts; zero fields take the defaults (tests shorten them).
	Backoff Backoff `json:"backoff,omitempty"`
	// Annotations are opaque to the supervisor and copied into the status
	// (the service records the image ID, spec hash and the like there).
	Annotations map[string]string `json:"annotations,omitempty"`
	// ExitWhenDone makes the supervisor remove the jail and exit, recording
	// the state exited, once the command has ended and the restart policy
	// says not to run it again. The ad-hoc containers of `run -d` and
	// `start` use it: nothing else would ever stop them, and Zocker's "down"
	// container holds no process. Declared containers keep their supervisor
	// (the reconciler reads a live one as "running as declared").
	ExitWhenDone bool `json:"exitWhenDone,omitempty"`
}

// Healthcheck is a command run inside the jail while the container's command runs.
type Healthcheck struct {
	// Argv is the resolved check command (/bin/sh -c STRING for a string).
	Argv     []string `json:"argv"`
	Interval Duration `json:"interval,omitempty"`
	Timeout  Duration `json:"timeout,omitempty"`
	// Retries is how many consecutive failures make the container unhealthy.
	Retries int `json:"retries,omitempty"`
}

// LogConfig caps the log: when the current file would grow past MaxBytes it
// is rotated to log.1 (log.1 to log.2, ...), keeping Keep rotated files.
type LogConfig struct {
	MaxBytes int64 `json:"maxBytes,omitempty"`
	Keep     int   `json:"keep,omitempty"`
}

// Backoff is the restart delay: Initial, doubling up to Max; a command that
// ran for Reset or longer restarts after Initial again.
type Backoff struct {
	Initial Duration `json:"initial,omitempty"`
	Max     Duration `json:"max,omitempty"`
	Reset   Duration `json:"reset,omitempty"`
}

// Duration is a time.Duration written as text ("10s") in JSON, so the state
// files stay readable by an administrator.
type Duration time.Duration

// MarshalJSON writes d as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a Go duration string, or a number of nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n int64
		if err2 := json.Unmarshal(b, &n); err2 != nil {
			return fmt.Errorf("duration: want a string such as \"10s\": %w", err)
		}
		*d = Duration(n)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Validate reports what makes c unusable, before anything is started.
func (c *Config) Validate() error {
	if c.Name == "" || strings.ContainsAny(c.Name, "/\x00") || c.Name == "." || c.Name == ".." {
		return fmt.Errorf("container name %q is not a valid name", c.Name)
	}
	if len(c.Process.Argv) == 0 {
		return fmt.Errorf("container %s: empty command", c.Name)
	}
	switch c.RestartPolicy {
	case "", RestartAlways, RestartOnFailure, RestartNever:
	default:
		return fmt.Errorf("container %s: restart policy %q: want Always, OnFailure or Never", c.Name, c.RestartPolicy)
	}
	if _, err := ParseSignal(c.StopSignal); err != nil {
		return fmt.Errorf("container %s: %w", c.Name, err)
	}
	if c.Healthcheck != nil && len(c.Healthcheck.Argv) == 0 {
		return fmt.Errorf("container %s: empty health check command", c.Name)
	}
	return nil
}

// withDefaults returns c with every zero setting replaced by its default.
func (c Config) withDefaults() Config {
	if c.RestartPolicy == "" {
		c.RestartPolicy = RestartAlways
	}
	if c.StopSignal == "" {
		c.StopSignal = "SIGTERM"
	}
	if c.StopTimeout <= 0 {
		c.StopTimeout = Duration(DefaultStopTimeout)
	}
	if c.Log.MaxBytes <= 0 {
		c.Log.MaxBytes = DefaultLogMaxBytes
	}
	if c.Log.Keep <= 0 {
		c.Log.Keep = DefaultLogKeep
	}
	if c.Backoff.Initial <= 0 {
		c.Backoff.Initial = Duration(DefaultBackoffInitial)
	}
	if c.Backoff.Max <= 0 {
		c.Backoff.Max = Duration(DefaultBackoffMax)
	}
	if c.Backoff.Reset <= 0 {
		c.Backoff.Reset = Duration(DefaultBackoffReset)
	}
	if c.Healthcheck != nil {
		h := *c.Healthcheck
		if h.Interval <= 0 {
			h.Interval = Duration(DefaultHealthInterval)
		}
		if h.Timeout <= 0 {
			h.Timeout = Duration(DefaultHealthTimeout)
		}
		if h.Retries <= 0 {
			h.Retries = DefaultHealthRetries
		}
		c.Healthcheck = &h
	}
	return c
}

var signals = map[string]syscall.Signal{
	"HUP": syscall.SIGHUP, "INT": syscall.SIGINT, "QUIT": syscall.SIGQUIT,
	"KILL": syscall.SIGKILL, "USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2,
	"TERM": syscall.SIGTERM, "WINCH": syscall.SIGWINCH, "STOP": syscall.SIGSTOP,
	"CONT": syscall.SIGCONT, "ALRM": syscall.SIGALRM,
}

// ParseSignal turns "SIGTERM", "TERM" or "15" into a signal; "" is SIGTERM.
func ParseSignal(s string) (syscall.Signal, error) {
	if s == "" {
		return syscall.SIGTERM, nil
	}
	if sig, ok := signals[strings.TrimPrefix(strings.ToUpper(s), "SIG")]; ok {
		return sig, nil
	}
	var n int
	if _, err := fmt.Sscanf(s, "%d", &n); err == nil && fmt.Sprint(n) == s && n > 0 && n < 128 {
		return syscall.Signal(n), nil
	}
	return 0, fmt.Errorf("stop signal %q: unknown signal", s)
}

// Dir returns the directory of container name's runtime files.
func Dir(stateDir, name string) string { return filepath.Join(stateDir, "containers", name) }

// LogPath returns the path of container name's current log file.
func LogPath(stateDir, name string) string { return filepath.Join(Dir(stateDir, name), "log") }

func configPath(stateDir, name string) string {
	return filepath.Join(Dir(stateDir, name), "config.json")
}

// ReadConfig reads container name's config.json.
func ReadConfig(stateDir, name string) (Config, error) {
	var c Config
	b, err := os.ReadFile(configPath(stateDir, name))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return c, fmt.Errorf("read config of container %s: %w", name, ErrNotFound)
		}
		return c, fmt.Errorf("read config of container %s: %w", name, err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("parse config of container %s: %w", name, err)
	}
	return c, nil
}
