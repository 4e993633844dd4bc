// Package e2e drives the real zocker-reconcile binary end to end: serve
// watching a manifest directory on a zfs-fuse dataset with the Linux jail
// driver, and the plan, apply, ps and status commands around it.
//
// The tests need root, ZOCKER_TEST_POOL and the zfs-fuse adapter first on
// PATH (scripts/test.sh sets all three up). By hand:
//
//	PATH=/tmp/zfsfuse-bin:$PATH ZOCKER_REAL_ZFS=/usr/sbin/zfs ZOCKER_TEST_POOL=zdev CI=true go test ./e2e/
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/zocker-reconcile/zocker-reconcile/internal/testenv"
	"github.com/zocker-reconcile/zocker-reconcile/service"
)

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

// TestMain removes the binary built for the run. The binary is built once,
// on first use, so that a run that skips every test builds nothing; it must
// stay on disk for the whole run because the supervisors and jail inits that
// serve starts re-execute it.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// binary returns the path of the zocker-reconcile binary built from this
// tree, with zocker-supervise beside it.
func binary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "zocker-e2e-bin-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "zocker-reconcile")
		// The lean supervisor goes beside it, where the service finds it.
		// As the Makefile builds them: the supervisor static (CGO_ENABLED=0).
		for _, pkg := range []string{"./cmd/zocker-reconcile", "./cmd/zocker-supervise"} {
			cmd := exec.Command("go", "build", "-o", binDir+"/", pkg)
			cmd.Dir = ".."
			if pkg == "./cmd/zocker-supervise" {
				cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			}
			if out, err := cmd.CombinedOutput(); err != nil {
				binErr = fmt.Errorf("go build %s: %v: %s", pkg, err, out)
				return
			}
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// host is one test's world: a root dataset, a state directory, a manifest
// directory, and at most one serve process at a time.
type host struct {
	t       *testing.T
	bin     string
	root    string
	state   string
	man     string // the --manifests directory
	empty   string // an empty directory, for the final prune
	tarball string
	srv     *server
	logs    []string // serve logs of this test, dumped on failure
	stdouts []string // serve's standard outputs, which must stay empty
}

// newHost prepares a test's world. Its cleanup (registered after the
// dataset's, so it runs before the dataset is destroyed) stops serve and
// prunes every container, so that no supervisor or jail outlives the test.
func newHost(t *testing.T) *host {
	t.Helper()
	if runtime.GOOS != "linux" {
		// The checks read /proc; on FreeBSD the suite needs ps(1) instead.
		t.Skip("the end-to-end suite drives the Linux jail driver")
	}
	root := testenv.Dataset(t)
	h := &host{t: t, root: root, tarball: testenv.BusyboxTarball(t), bin: binary(t)}
	if out, err := exec.Command("zfs", "list", "-p", "-H", "-o", "name", strings.SplitN(root, "/", 2)[0]).CombinedOutput(); err != nil {
		t.Fatalf("zfs list -p fails (%v: %s): put the zfs-fuse adapter first on PATH (scripts/substrate.sh, or PATH=/tmp/zfsfuse-bin:$PATH ZOCKER_REAL_ZFS=/usr/sbin/zfs)", err, bytes.TrimSpace(out))
	}
	base := t.TempDir()
	h.state = filepath.Join(base, "state")
	h.man = mkdir(t, base, "manifests")
	h.empty = mkdir(t, base, "empty")
	t.Cleanup(h.teardown)
	h.init()
	return h
}

// init creates the host's root: nothing creates a root by surprise (issue
// 19), so every test's starts as a service's would, from zocker-reconcile init.
func (h *host) init() {
	h.t.Helper()
	if res := h.run("init"); res.code != 0 {
		h.t.Fatalf("init: exit %d: %s%s", res.code, res.stdout, res.stderr)
	}
}

func mkdir(t *testing.T, parts ...string) string {
	t.Helper()
	dir := filepath.Join(parts...)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The loader refuses directories writable by group or others.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func (h *host) teardown() {
	t := h.t
	if h.srv != nil && h.srv.running() {
		if err := h.srv.stop(syscall.SIGTERM); err != nil {
			t.Errorf("cleanup: stop serve: %v", err)
		}
	}
	res := h.run("apply", h.empty, "--allow-empty", "--max-prune", "-1")
	if res.code != 0 {
		t.Errorf("cleanup: apply of an empty directory: exit %d\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
	}
	// Every supervisor of this state directory must be gone: a leftover
	// would hold the dataset busy and outlive the test.
	for _, pid := range supervisors(h.state, "") {
		t.Errorf("cleanup: supervisor %d still runs after the prune; killing it", pid)
		syscall.Kill(pid, syscall.SIGKILL)
	}
	// Issue 7: nothing on serve's stdout that is not a log line (and the
	// logs go to stderr).
	for _, o := range h.stdouts {
		if b, err := os.ReadFile(o); err != nil || len(b) > 0 {
			t.Errorf("serve wrote to stdout (%v): %.500s", err, b)
		}
	}
	if t.Failed() {
		for _, l := range h.logs {
			if b, err := os.ReadFile(l); err == nil {
				// Without the debug lines of every command and event, which
				// would bury the actions.
				var lines []string
				for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
					if !strings.Contains(line, "msg=exec ") && !strings.Contains(line, "msg=go-zfs ") && !strings.Contains(line, `msg="manifest event"`) {
						lines = append(lines, line)
					}
				}
				lines = lines[max(0, len(lines)-120):]
				t.Logf("last lines of %s:\n%s", l, strings.Join(lines, "\n"))
			}
		}
	}
}

// globals are the flags every command of this host gets.
func (h *host) globals() []string {
	return []string{"--root", h.root, "--state-dir", h.state, "--manifests", h.man}
}

type result struct {
	stdout, stderr string
	code           int
}

// run runs one command of the binary to completion (at most two minutes).
func (h *host) run(args ...string) result {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.bin, append(h.globals(), args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			h.t.Fatalf("run %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

// write writes a manifest file (mode 0644: the loader refuses files others can write).
func (h *host) write(name, content string) {
	h.t.Helper()
	writeFile(h.t, filepath.Join(h.man, name), content)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
}

func (h *host) remove(name string) {
	h.t.Helper()
	if err := os.Remove(filepath.Join(h.man, name)); err != nil {
		h.t.Fatal(err)
	}
}

// imageYAML declares the busybox image "bb" from the test tarball.
func (h *host) imageYAML() string {
	return fmt.Sprintf(`apiVersion: zocker/v1
kind: Image
metadata:
  name: bb
spec:
  tarball:
    path: %s
`, h.tarball)
}

// containerYAML declares a container of image bb without a network.
func containerYAML(name string, argv ...string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = strconv.Quote(a)
	}
	return fmt.Sprintf(`apiVersion: zocker/v1
kind: Container
metadata:
  name: %s
spec:
  image: bb
  command: [%s]
  network:
    mode: none
`, name, strings.Join(q, ", "))
}

// psRow is the part of `ps -o json` the tests read.
type psRow struct {
	Name    string   `json:"name"`
	State   string   `json:"state"`
	Command []string `json:"command"`
	Managed bool     `json:"managed"`
	PID     int      `json:"pid"`
}

// ps returns `ps -a -o json` by name.
func (h *host) ps() (map[string]psRow, error) {
	res := h.run("ps", "-a", "-o", "json")
	if res.code != 0 {
		return nil, fmt.Errorf("ps -a -o json: exit %d: %s", res.code, res.stderr)
	}
	var rows []psRow
	if err := json.Unmarshal([]byte(res.stdout), &rows); err != nil {
		return nil, fmt.Errorf("ps -a -o json: %v: %s", err, res.stdout)
	}
	m := map[string]psRow{}
	for _, r := range rows {
		if _, dup := m[r.Name]; dup {
			return nil, fmt.Errorf("ps lists %s twice: %s", r.Name, res.stdout)
		}
		m[r.Name] = r
	}
	return m, nil
}

// poll calls check until it reports done, failing the test with check's
// last explanation when the deadline passes.
func poll(t *testing.T, timeout time.Duration, what string, check func() (bool, string)) {
	t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		ok, why := check()
		if ok {
			t.Logf("%s: after %s", what, time.Since(start).Round(10*time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s: %s", timeout, what, why)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// waitRunning waits until ps shows the container running argv, with its
// command's process alive as a child of the pid ps reports, and returns its row.
func (h *host) waitRunning(name string, argv []string, timeout time.Duration) psRow {
	h.t.Helper()
	var row psRow
	poll(h.t, timeout, fmt.Sprintf("container %s running %q", name, argv), func() (bool, string) {
		rows, err := h.ps()
		if err != nil {
			return false, err.Error()
		}
		r, ok := rows[name]
		switch {
		case !ok:
			return false, "not listed by ps -a"
		case r.State != "running":
			return false, "state " + r.State
		case !slices.Equal(r.Command, argv):
			return false, fmt.Sprintf("command %q", r.Command)
		case r.PID <= 0:
			return false, "no pid"
		}
		if procs := commandProcs(argv, r.PID); len(procs) == 0 {
			return false, fmt.Sprintf("no process %q under pid %d", argv, r.PID)
		}
		row = r
		return true, ""
	})
	return row
}

// waitGone waits until ps -a no longer lists the container.
func (h *host) waitGone(name string, timeout time.Duration) {
	h.t.Helper()
	poll(h.t, timeout, "container "+name+" gone from ps -a", func() (bool, string) {
		rows, err := h.ps()
		if err != nil {
			return false, err.Error()
		}
		if r, ok := rows[name]; ok {
			return false, fmt.Sprintf("still listed: %+v", r)
		}
		return true, ""
	})
}

// commandProcs returns the pids whose command line is exactly argv and, when
// parent > 0, that are parent or its children.
func commandProcs(argv []string, parent int) []int {
	want := strings.Join(argv, "\x00") + "\x00"
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || string(b) != want {
			continue
		}
		// The pid ps reports is the command itself (the Linux driver's
		// init starts it and reports its pid) or, for a command run
		// through a wrapper, its parent.
		if parent > 0 && pid != parent && ppid(pid) != parent {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

// ppid reads a process's parent from /proc/PID/stat (0 when it is gone).
func ppid(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name in parentheses may hold spaces: parse after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return 0
	}
	p, _ := strconv.Atoi(f[1])
	return p
}

// alive reports whether pid is a live (not zombie) process.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && f[0] != "Z"
}

// supervisors returns the live supervisor processes of stateDir (of one
// container when name is not empty).
func supervisors(stateDir, name string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		// A supervisor is `zocker-supervise --remove-with BIN STATE NAME`
		// (the lean binary) or `BIN __supervise STATE NAME` (the hidden
		// command); the jail inits run zocker-supervise with other words.
		args := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
		lean := len(args) == 5 && filepath.Base(args[0]) == "zocker-supervise" && args[1] == "--remove-with"
		hidden := len(args) == 4 && args[1] == "__supervise"
		if !lean && !hidden {
			continue
		}
		if args[len(args)-2] != stateDir || (name != "" && args[len(args)-1] != name) || !alive(pid) {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

// datasets lists the filesystems under ds (ds included), or nil when ds does not exist.
func datasets(t *testing.T, ds string) []string {
	t.Helper()
	out, err := exec.Command("zfs", "list", "-r", "-H", "-o", "name", ds).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "does not exist") {
			return nil
		}
		t.Fatalf("zfs list -r %s: %v: %s", ds, err, out)
	}
	return strings.Fields(string(out))
}

// server is one serve process, its stderr going to a file so that the
// supervisors it starts cannot hold a pipe of ours open.
type server struct {
	h    *host
	cmd  *exec.Cmd
	addr string
	log  string
	done chan struct{}
	err  error
}

// freeAddr returns a loopback address with a port free right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// start starts serve at debug level with a 10 s resync. The address stays
// the same across restarts of the same host.
func (h *host) start(extra ...string) *server {
	h.t.Helper()
	addr := ""
	if h.srv != nil {
		if h.srv.running() {
			h.t.Fatal("serve already runs")
		}
		addr = h.srv.addr
	} else {
		addr = freeAddr(h.t)
	}
	// Not in the manifest directory's parent, which serve watches: its own
	// log lines would be events there.
	logPath := filepath.Join(mkdir(h.t, filepath.Dir(h.state), "logs"), fmt.Sprintf("serve-%d.log", len(h.logs)))
	f, err := os.Create(logPath)
	if err != nil {
		h.t.Fatal(err)
	}
	defer f.Close()
	out, err := os.Create(strings.TrimSuffix(logPath, ".log") + ".stdout")
	if err != nil {
		h.t.Fatal(err)
	}
	defer out.Close()
	args := append(h.globals(), "serve", "--listen", addr, "--resync", "10s", "--log-level", "debug")
	cmd := exec.Command(h.bin, append(args, extra...)...)
	cmd.Stdout, cmd.Stderr = out, f
	if err := cmd.Start(); err != nil {
		h.t.Fatalf("start serve: %v", err)
	}
	s := &server{h: h, cmd: cmd, addr: addr, log: logPath, done: make(chan struct{})}
	go func() { s.err = cmd.Wait(); close(s.done) }()
	h.srv = s
	h.logs = append(h.logs, logPath)
	h.stdouts = append(h.stdouts, out.Name())
	return s
}

func (s *server) running() bool {
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// stop sends sig and waits for the exit (killing after 30 s); the error is
// the process's exit error, nil for exit 0.
func (s *server) stop(sig syscall.Signal) error {
	if !s.running() {
		return fmt.Errorf("serve had already exited: %v", s.err)
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		return err
	}
	select {
	case <-s.done:
		return s.err
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
		return fmt.Errorf("serve did not exit within 30s of %v", sig)
	}
}

// lines returns serve's log lines so far.
func (s *server) lines() []string {
	b, err := os.ReadFile(s.log)
	if err != nil {
		return nil
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

// mark returns the number of log lines so far, for waitLog.
func (s *server) mark() int { return len(s.lines()) }

// waitLog waits for a log line after mark holding every one of subs and
// returns it.
func (s *server) waitLog(t *testing.T, mark int, timeout time.Duration, subs ...string) string {
	t.Helper()
	var found string
	poll(t, timeout, fmt.Sprintf("serve to log a line with %q", subs), func() (bool, string) {
		ls := s.lines()
		for _, l := range ls[min(mark, len(ls)):] {
			ok := true
			for _, sub := range subs {
				ok = ok && strings.Contains(l, sub)
			}
			if ok {
				found = l
				return true, ""
			}
		}
		if !s.running() {
			return false, fmt.Sprintf("serve exited: %v", s.err)
		}
		return false, fmt.Sprintf("%d lines so far", len(ls))
	})
	return found
}

// get does GET path on serve.
func (s *server) get(path string) (int, []byte, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + s.addr + path)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// status does GET /status.
func (s *server) status() (service.Status, error) {
	var st service.Status
	code, b, err := s.get("/status")
	if err != nil {
		return st, err
	}
	if code != http.StatusOK {
		return st, fmt.Errorf("GET /status: %d: %s", code, b)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("GET /status is not a status document: %v: %s", err, b)
	}
	return st, nil
}

// waitReady waits for /readyz 200.
func (s *server) waitReady(t *testing.T, timeout time.Duration) {
	t.Helper()
	poll(t, timeout, "/readyz 200", func() (bool, string) {
		code, b, err := s.get("/readyz")
		if err != nil {
			return false, err.Error()
		}
		return code == http.StatusOK, fmt.Sprintf("%d %s", code, b)
	})
}

// sighupPass sends SIGHUP and waits for the pass it triggers to be planned,
// returning the "pass planned" log line.
func (s *server) sighupPass(t *testing.T) string {
	t.Helper()
	mark := s.mark()
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	return s.waitLog(t, mark, 30*time.Second, `msg="pass planned"`, "trigger=sighup")
}

// metrics scrapes /metrics and parses it with the Prometheus text parser.
func (s *server) metrics() (map[string]*dto.MetricFamily, error) {
	code, b, err := s.get("/metrics")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %d", code)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(bytes.NewReader(b))
}

// series returns the values of family name whose labels include want.
func series(fams map[string]*dto.MetricFamily, name string, want map[string]string) []float64 {
	f, ok := fams[name]
	if !ok {
		return nil
	}
	var vals []float64
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range want {
			match = match && labels[k] == v
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			vals = append(vals, m.Counter.GetValue())
		case m.Gauge != nil:
			vals = append(vals, m.Gauge.GetValue())
		case m.Untyped != nil:
			vals = append(vals, m.Untyped.GetValue())
		default:
			vals = append(vals, 1) // a histogram or summary: the series exists
		}
	}
	return vals
}

// value returns the single value of a series, or -1 with a reason.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, string) {
	v := series(fams, name, want)
	if len(v) != 1 {
		return -1, fmt.Sprintf("%s%v: %d series", name, want, len(v))
	}
	return v[0], ""
}

// fileProblem returns the load result of the file whose path ends in
// /name, from a status document.
func fileProblem(st service.Status, name string) (service.FileStatus, bool) {
	for _, f := range st.Files {
		if strings.HasSuffix(f.Path, "/"+name) {
			return f, true
		}
	}
	return service.FileStatus{}, false
}
