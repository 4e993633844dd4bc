package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/engine/jail"
)

// The test binary doubles as the supervisor and as a "service" that starts
// one and is then killed: TestMain dispatches on its first argument.
//
//	TEST __supervise STATE NAME   Run with the host driver (the self of Start)
//	TEST __start STATE NAME CFG   Start with the config in file CFG, print the pid, sleep
//
// Per-OS test files add helpers (a real driver's re-executed parts) to helpers.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "__supervise":
			os.Exit(superviseMain(os.Args[2], os.Args[3], newHostDriver(os.Args[2])))
		case "__start":
			os.Exit(starterMain(os.Args[2], os.Args[3], os.Args[4]))
		}
		if h, ok := helpers[os.Args[1]]; ok {
			os.Exit(h(os.Args[2:]))
		}
	}
	os.Exit(m.Run())
}

// helpers are extra TestMain modes, keyed by the first argument.
var helpers = map[string]func(args []string) int{}

func superviseMain(stateDir, name string, driver jail.Driver) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if err := Run(ctx, stateDir, name, driver, log); err != nil {
		log.Error("supervise", "err", err)
		return 1
	}
	return 0
}

func starterMain(stateDir, name, cfgFile string) int {
	b, err := os.ReadFile(cfgFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var cfg Config
	if err := json.Unmarshal(b, &cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	pid, err := Start(context.Background(), stateDir, name, selfArgv(), cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(pid)
	time.Sleep(time.Hour) // until the test kills us
	return 0
}

func selfArgv() []string {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	return []string{exe, "__supervise"}
}

// hostDriver is a jail driver without jails: a "jail" is a marker file under
// STATE/hostjails, and commands run directly on the host. It lets the tests
// exercise restart policy, backoff, logs, health checks and stop without
// namespaces or root. It has no jail to empty on Remove: test commands
// must not leave children behind (a shell's last command is exec'ed).
type hostDriver struct{ dir string }

func newHostDriver(stateDir string) hostDriver {
	return hostDriver{dir: filepath.Join(stateDir, "hostjails")}
}

func (d hostDriver) Create(_ context.Context, s jail.Spec) error {
	if s.Root != "" {
		if _, err := os.Stat(s.Root); err != nil {
			return fmt.Errorf("jail root: %w", err)
		}
	}
	if err := os.MkdirAll(d.dir, 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(d.dir, s.Name), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("jail %s exists: %w", s.Name, err)
	}
	return f.Close()
}

func (d hostDriver) Command(name string, p jail.Process) (*exec.Cmd, error) {
	if _, err := os.Stat(filepath.Join(d.dir, name)); err != nil {
		return nil, fmt.Errorf("jail %s: %w", name, jail.ErrNotFound)
	}
	cmd := exec.Command(p.Argv[0], p.Argv[1:]...)
	cmd.Env = p.Env
	cmd.Dir = p.Workdir
	return cmd, nil
}

func (d hostDriver) Remove(_ context.Context, name string) error {
	err := os.Remove(filepath.Join(d.dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

func (d hostDriver) List(context.Context) ([]jail.Info, error) {
	entries, err := os.ReadDir(d.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	var out []jail.Info
	for _, e := range entries {
		out = append(out, jail.Info{Name: e.Name()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

func (d hostDriver) exists(name string) bool {
	_, err := os.Stat(filepath.Join(d.dir, name))
	return err == nil
}

// testConfig is a container running argv with timings short enough for tests.
func testConfig(argv ...string) Config {
	return Config{
		Name:          "c1",
		Jail:          jail.Spec{Name: "c1"},
		Process:       jail.Process{Argv: argv, Env: []string{"PATH=/usr/bin:/bin", "GREETING=hello"}, Workdir: "/"},
		RestartPolicy: RestartAlways,
		StopTimeout:   Duration(time.Second),
		Backoff: Backoff{
			Initial: Duration(150 * time.Millisecond),
			Max:     Duration(600 * time.Millisecond),
			Reset:   Duration(time.Minute),
		},
	}
}

// startTest starts a supervisor for cfg in a fresh state directory and stops
// it at cleanup (killing it if Stop fails, so no test leaves processes).
func startTest(t *testing.T, cfg Config) (stateDir string, pid int) {
	t.Helper()
	stateDir = t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pid, err := Start(ctx, stateDir, cfg.Name, selfArgv(), cfg)
	if err != nil {
		t.Fatalf("Start: %v\n%s", err, readFile(supervisorLogPath(stateDir, cfg.Name)))
	}
	t.Cleanup(func() { cleanupSupervisor(t, stateDir, cfg.Name, pid) })
	return stateDir, pid
}

func cleanupSupervisor(t *testing.T, stateDir, name string, pid int) {
	st, _ := readStatus(stateDir, name)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := Stop(ctx, stateDir, name, newHostDriver(stateDir)); err != nil {
		t.Errorf("cleanup: Stop: %v", err)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if st.PID > 0 {
		_ = syscall.Kill(st.PID, syscall.SIGKILL)
	}
	if t.Failed() {
		t.Logf("supervisor.log:\n%s", readFile(supervisorLogPath(stateDir, name)))
	}
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// waitStatus polls the status until ok accepts it, failing after timeout.
func waitStatus(t *testing.T, stateDir, name string, timeout time.Duration, what string, ok func(Status) bool) Status {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var st Status
	var err error
	for time.Now().Before(deadline) {
		st, err = Get(stateDir, name)
		if err == nil && ok(st) {
			return st
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s; last status %+v (err %v)", timeout, what, st, err)
	return st
}

func processExists(pid int) bool {
	if pid <= 0 {
		return false
	}
	// A zombie still "exists" for kill(0): look at its state too.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err == nil {
		fields := strings.Fields(string(b))
		if len(fields) > 2 && fields[2] == "Z" {
			return false
		}
	}
	return syscall.Kill(pid, 0) == nil
}

// waitGone waits up to 2s for pid to be gone (a supervisor releases its lock
// just before it exits).
func waitGone(pid int) bool {
	deadline := time.Now().Add(2 * time.Second)
	for processExists(pid) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}
