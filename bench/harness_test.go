//go:build linux

// Package bench holds the end-to-end benchmarks of ARCHITECTURE section 10
// that need the real `serve` process: manifest-to-running latency by phase,
// the idle cost of a converged service, and the external commands of a
// no-op pass. They run on the zfs-fuse pool named by ZOCKER_TEST_POOL with
// the Linux driver, as root; scripts/bench.sh runs them.
package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/engine/jail/linuxns"
	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
	"github.com/zocker-reconcile/zocker-reconcile/engine/supervisor"
	"github.com/zocker-reconcile/zocker-reconcile/internal/testenv"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// TestMain removes the binary that binary built.
func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// binary builds cmd/zocker-reconcile once per test process: the benchmarks
// measure the real service, not an in-process imitation of it.
func binary(b testing.TB) string {
	b.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "zocker-bench-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "zocker-reconcile")
		out, err := exec.Command("go", "build", "-o", binPath, "../cmd/zocker-reconcile").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		b.Fatal(buildErr)
	}
	return binPath
}

// service is one running `serve` with its own root dataset, manifest
// directory and state directory, logging JSON to a file.
type service struct {
	cmd       *exec.Cmd
	root      string
	manifests string
	stage     string // where manifests are written before the rename that publishes them
	state     string
	logPath   string
}

// startServe starts `serve` on a fresh dataset with the busybox image
// declared, at the given log level and resync period. At cleanup it stops
// the service, then every supervisor it started, then (testenv) destroys
// the dataset.
func startServe(b testing.TB, level string, resync time.Duration) *service {
	b.Helper()
	bin := binary(b)
	root := testenv.Dataset(b)
	tarball := testenv.BusyboxTarball(b)
	base := b.TempDir()
	s := &service{
		root: root,
		// The watcher also watches the manifest root's parent (for symlink
		// swaps): keep the log and the staging directory out of it.
		manifests: filepath.Join(base, "m", "manifests"),
		stage:     filepath.Join(base, "stage"),
		state:     filepath.Join(base, "state"),
		logPath:   filepath.Join(base, "serve.log"),
	}
	for _, d := range []string{s.manifests, s.stage, s.state} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			b.Fatal(err)
		}
	}
	s.write(b, "image", fmt.Sprintf("apiVersion: zocker/v1\nkind: Image\nmetadata: {name: busybox}\nspec:\n  tarball: {path: %s}\n", tarball))
	logf, err := os.Create(s.logPath)
	if err != nil {
		b.Fatal(err)
	}
	s.cmd = exec.Command(bin, "serve", "--init", "--root", root, "--manifests", s.manifests, "--state-dir", s.state,
		"--listen", "127.0.0.1:0", "--resync", resync.String(), "--max-prune", "-1")
	// The supervisors inherit the environment: their supervisor.log is JSON too.
	s.cmd.Env = append(os.Environ(), "ZOCKER_LOG_FORMAT=json", "ZOCKER_LOG_LEVEL="+level)
	s.cmd.Stderr = logf
	s.cmd.Stdout = logf
	if err := s.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	logf.Close()
	b.Cleanup(func() { s.stop(b) })
	// Containers are declared only once the image is imported: one declared
	// with its image waits until the next resync (observed; see BENCHMARKS.md).
	s.waitLog(b, time.Time{}, 5*time.Minute, func(r record) bool {
		return r.Msg == "action" && r.Action == "import" && r.Result == "success"
	})
	return s
}

// stop ends serve (containers keep running, by design), then stops every
// container through its supervisor so that the dataset can be destroyed.
func (s *service) stop(b testing.TB) {
	if s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = s.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = s.cmd.Process.Kill()
			<-done
		}
	}
	entries, _ := os.ReadDir(filepath.Join(s.state, "containers"))
	driver := linuxns.New(s.state, nil, &runner.Exec{}, nil)
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for _, e := range entries {
		wg.Add(1)
		sem <- struct{}{}
		go func(name string) {
			defer func() { <-sem; wg.Done() }()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if err := supervisor.Stop(ctx, s.state, name, driver); err != nil {
				b.Logf("cleanup: stop container %s: %v", name, err)
			}
		}(e.Name())
	}
	wg.Wait()
	s.destroyContainers(b)
	if b.Failed() {
		if out, err := os.ReadFile(s.logPath); err == nil {
			keep := filepath.Join(os.TempDir(), "zocker-bench-serve-"+testenv.RandomHex(4)+".log")
			_ = os.WriteFile(keep, out, 0o644)
			b.Logf("serve log kept in %s; tail:\n%s", keep, tail(out, 20))
		}
	}
}

// write publishes a manifest atomically: written beside the watched
// directory, then renamed into it (one fsnotify create event, as git-sync
// or an editor's save-by-rename gives). It returns the time of the rename.
func (s *service) write(b testing.TB, name, text string) time.Time {
	b.Helper()
	tmp := filepath.Join(s.stage, name+".yaml")
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		b.Fatal(err)
	}
	t := time.Now()
	if err := os.Rename(tmp, filepath.Join(s.manifests, name+".yaml")); err != nil {
		b.Fatal(err)
	}
	return t
}

// container is a busybox container sleeping forever with no network.
func container(name string) string {
	return fmt.Sprintf("apiVersion: zocker/v1\nkind: Container\nmetadata: {name: %s}\nspec:\n  image: busybox\n  command: [/bin/sleep, \"100000\"]\n  network: {mode: none}\n  restartPolicy: Never\n", name)
}

// waitRunning polls the supervisor's status file until the container's
// command runs and returns when it saw it.
func (s *service) waitRunning(b testing.TB, name string, timeout time.Duration) time.Time {
	b.Helper()
	path := filepath.Join(supervisor.Dir(s.state, name), "status.json")
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if data, err := os.ReadFile(path); err == nil {
			var st supervisor.Status
			if json.Unmarshal(data, &st) == nil {
				switch st.State {
				case supervisor.StateRunning:
					return time.Now()
				case supervisor.StateFailed, supervisor.StateExited:
					b.Fatalf("container %s: state %s: %s", name, st.State, st.Message)
				}
			}
		}
		if s.cmd.ProcessState != nil {
			b.Fatalf("serve exited: %v", s.cmd.ProcessState)
		}
		time.Sleep(2 * time.Millisecond)
	}
	b.Fatalf("container %s not running after %s", name, timeout)
	return time.Time{}
}

// record is one JSON log line of serve or of a supervisor.
type record struct {
	Time      time.Time `json:"time"`
	Msg       string    `json:"msg"`
	Action    string    `json:"action"`
	Container string    `json:"container"`
	Duration  int64     `json:"duration"` // slog's JSON handler writes durations in nanoseconds
	Trigger   string    `json:"trigger"`
	Items     *int      `json:"items"`
	Argv      []string  `json:"argv"`
	Cmd       string    `json:"cmd"`
	Event     string    `json:"event"`
	Result    string    `json:"result"`
}

// readLog parses every JSON line of a log file; other lines are skipped.
func readLog(b testing.TB, path string) []record {
	b.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	var recs []record
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var r record
		if json.Unmarshal(sc.Bytes(), &r) == nil && !r.Time.IsZero() {
			recs = append(recs, r)
		}
	}
	return recs
}

// isCommand reports whether a log line is an external command: the
// runner's "exec" or go-zfs's own.
func (r record) isCommand() bool { return r.Msg == "exec" || r.Msg == "go-zfs" }

// command is the command line of an "exec" or "go-zfs" record.
func (r record) command() string {
	if r.Msg == "go-zfs" {
		return r.Cmd
	}
	return strings.Join(r.Argv, " ")
}

// waitLog waits until a record after since matches ok, and returns it.
func (s *service) waitLog(b testing.TB, since time.Time, timeout time.Duration, ok func(record) bool) record {
	b.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, r := range readLog(b, s.logPath) {
			if !r.Time.Before(since) && ok(r) {
				return r
			}
		}
		if s.cmd.ProcessState != nil {
			b.Fatalf("serve exited: %v", s.cmd.ProcessState)
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.Fatalf("no matching log line after %s", timeout)
	return record{}
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[int(float64(len(s)-1)*p+0.5)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// destroyContainers destroys the container clones one by one before
// testenv destroys the tree: with a hundred clones just released, zfs-fuse
// keeps saying "dataset is busy" longer than testenv's single retry loop.
func (s *service) destroyContainers(b testing.TB) {
	out, err := exec.Command("zfs", "list", "-H", "-o", "name", "-r", s.root+"/containers").Output()
	if err != nil {
		return
	}
	for _, ds := range strings.Fields(string(out)) {
		if ds == s.root+"/containers" {
			continue
		}
		var msg []byte
		for i := 0; i < 60; i++ {
			if msg, err = exec.Command("zfs", "destroy", "-r", ds).CombinedOutput(); err == nil {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		if err != nil {
			b.Logf("cleanup: zfs destroy -r %s: %v: %s", ds, err, msg)
		}
	}
}
