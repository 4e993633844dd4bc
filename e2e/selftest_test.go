package e2e

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

var selftestIDRE = regexp.MustCompile(`selftest ([0-9a-f]{8}): root`)

// selftestLeftovers lists what a selftest run id left on this host: its
// dataset, supervisors, mounts, cgroups, state directory and lock.
func (h *host) selftestLeftovers(t *testing.T, id string) []string {
	t.Helper()
	var left []string
	ds := h.root + "/selftest-" + id
	if d := datasets(t, ds); len(d) > 0 {
		left = append(left, "datasets "+strings.Join(d, " "))
	}
	stateDir := filepath.Join(h.state, "selftest-"+id)
	for _, pid := range supervisors(stateDir, "") {
		left = append(left, "supervisor pid "+strconv.Itoa(pid))
	}
	if f, err := os.Open("/proc/self/mountinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "/selftest-"+id) {
				left = append(left, "mount "+sc.Text())
			}
		}
		f.Close()
	}
	filepath.WalkDir("/sys/fs/cgroup", func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if strings.HasPrefix(d.Name(), "st"+id+"-") {
			left = append(left, "cgroup "+p)
			return filepath.SkipDir
		}
		return nil
	})
	for _, p := range []string{stateDir, filepath.Join(h.state, "selftest-"+id+".lock")} {
		if _, err := os.Stat(p); err == nil {
			left = append(left, "file "+p)
		}
	}
	return left
}

// TestSelftest: selftest passes end to end on the Linux driver, its report
// holds every step and the generated configuration, and nothing is left.
func TestSelftest(t *testing.T) {
	h := newHost(t)
	report := filepath.Join(t.TempDir(), "report.txt")
	start := time.Now()
	res := h.run("selftest", "--report", report)
	took := time.Since(start)
	if res.code != 0 {
		t.Fatalf("selftest: exit %d\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
	}
	t.Logf("selftest took %s", took.Round(time.Millisecond))
	m := selftestIDRE.FindStringSubmatch(res.stderr)
	if m == nil {
		t.Fatalf("no run id in stderr:\n%s", res.stderr)
	}
	id := m[1]
	b, err := os.ReadFile(report)
	if err != nil || string(b) != res.stdout {
		t.Errorf("report file differs from stdout (%v)", err)
	}
	for _, want := range []string{"result: PASS", "apply: image, volume, a container per network mode",
		"health check", "exec", "volumes: hostPath and managed", "limits", "restart after SIGKILL", "stop", "prune",
		"destroy: root dataset, state directory", "nothing left",
		"--- 3. running: jails/st" + id + "-inherit.json", "--- 2. apply: image, volume, a container per network mode: actions"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Contains(res.stdout, " fail ") {
		t.Errorf("a step failed:\n%s", res.stdout)
	}
	if left := h.selftestLeftovers(t, id); len(left) > 0 {
		t.Errorf("left behind: %s", strings.Join(left, "\n"))
	}
}

// TestSelftestKilledHalfway: a selftest killed with SIGKILL once its
// containers run leaves them behind; the next selftest removes them. A
// --keep run's containers are removed by the next serve start.
func TestSelftestKilledHalfway(t *testing.T) {
	h := newHost(t)
	errLog := filepath.Join(t.TempDir(), "stderr")
	f, err := os.Create(errLog)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(h.bin, append(h.globals(), "selftest")...)
	cmd.Stderr = f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var id string
	poll(t, 60*time.Second, "the first selftest's containers running", func() (bool, string) {
		b, _ := os.ReadFile(errLog)
		m := selftestIDRE.FindStringSubmatch(string(b))
		if m == nil {
			return false, "no run id yet"
		}
		id = m[1]
		if n := len(supervisors(filepath.Join(h.state, "selftest-"+id), "")); n < 3 {
			return false, "supervisors: " + strconv.Itoa(n)
		}
		return true, ""
	})
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if left := h.selftestLeftovers(t, id); len(left) == 0 {
		t.Fatal("the killed selftest left nothing: the test proves nothing")
	}
	res := h.run("selftest")
	if res.code != 0 || !strings.Contains(res.stderr, "removed the leftovers of interrupted selftests "+id) {
		t.Fatalf("second selftest: exit %d\nstderr:\n%s", res.code, res.stderr)
	}
	if left := h.selftestLeftovers(t, id); len(left) > 0 {
		t.Errorf("after the next selftest, the killed one left: %s", strings.Join(left, "\n"))
	}

	// --keep, then serve cleans up at its start.
	res = h.run("selftest", "--keep")
	m := selftestIDRE.FindStringSubmatch(res.stderr)
	if res.code != 0 || m == nil {
		t.Fatalf("selftest --keep: exit %d\nstderr:\n%s", res.code, res.stderr)
	}
	kept := m[1]
	if n := len(supervisors(filepath.Join(h.state, "selftest-"+kept), "")); n != 3 {
		t.Fatalf("--keep: %d supervisors running, want 3", n)
	}
	s := h.start()
	poll(t, 60*time.Second, "serve removing the kept selftest", func() (bool, string) {
		left := h.selftestLeftovers(t, kept)
		return len(left) == 0, strings.Join(left, "; ")
	})
	if err := s.stop(syscall.SIGTERM); err != nil {
		t.Error(err)
	}
}
