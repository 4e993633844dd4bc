package e2e

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/service"
)

// webUpdateYAML declares container web: busybox httpd on addr (host network)
// run with the extra httpd flags, a health check fetching healthPath, and an
// update policy.
func webUpdateYAML(addr string, flags []string, healthPath, update string) string {
	argv := append([]string{"/usr/sbin/httpd", "-f"}, flags...)
	argv = append(argv, "-p", addr, "-h", "/")
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = strconv.Quote(a)
	}
	return fmt.Sprintf(`apiVersion: zocker/v1
kind: Container
metadata:
  name: web
spec:
  image: bb
  command: [%s]
  network:
    mode: inherit
  healthcheck:
    command: ["/usr/bin/wget", "-q", "-O", "/dev/null", "http://%s%s"]
    interval: 1s
    timeout: 1s
    retries: 2
  update: %s
`, strings.Join(q, ", "), addr, healthPath, update)
}

func httpdArgv(addr string, flags ...string) []string {
	return append(append([]string{"/usr/sbin/httpd", "-f"}, flags...), "-p", addr, "-h", "/")
}

// previousClones lists the datasets under ROOT/previous.
func (h *host) previousClones() []string {
	var out []string
	for _, ds := range datasets(h.t, h.root) {
		if strings.HasPrefix(ds, h.root+"/previous/") {
			out = append(out, ds)
		}
	}
	return out
}

// condition returns the status and reason of one condition of kind/name.
func (s *server) condition(kind, name string, typ service.ConditionType) (bool, string, string) {
	st, err := s.status()
	if err != nil {
		return false, "", err.Error()
	}
	o, ok := objectStatus(st, kind, name)
	if !ok {
		return false, "", kind + "/" + name + " not in /status"
	}
	c, _ := o.Condition(typ)
	return c.Status, c.Reason, c.Message
}

func answers(addr string) (bool, string) {
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get("http://" + addr + "/etc/passwd")
	if err != nil {
		return false, err.Error()
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK, resp.Status
}

// TestServeUpdateRollsBackUnhealthy: v1 (healthy httpd) is updated to v2
// whose health check fails: v1 comes back and answers on its port, web is
// Stalled/RolledBack, plan exits 0, zocker_rollbacks_total{name="web"} is 1
// and no v2 clone remains; a good v3 then replaces it and the previous clone
// is pruned once v3 is healthy (keepPrevious 0).
func TestServeUpdateRollsBackUnhealthy(t *testing.T) {
	h := newHost(t)
	addr := freeAddr(t)
	policy := "{healthTimeout: 30s, keepPrevious: 0}"
	h.write("image.yaml", h.imageYAML())
	h.write("web.yaml", webUpdateYAML(addr, nil, "/etc/passwd", policy))
	s := h.start()
	s.waitReady(t, 2*time.Minute)
	h.waitRunning("web", httpdArgv(addr), 2*time.Minute)
	poll(t, time.Minute, "v1 healthy and answering", func() (bool, string) {
		if ok, why := answers(addr); !ok {
			return false, why
		}
		ready, reason, msg := s.condition("Container", "web", service.ConditionReady)
		return ready, reason + ": " + msg
	})

	mark := s.mark()
	h.write("web.yaml", webUpdateYAML(addr, []string{"-v"}, "/no/such/file", policy))
	s.waitLog(t, mark, 2*time.Minute, "action=replace", "container=web", "result=success")
	// Within healthTimeout plus one resync (10 s here) and margin for a loaded machine.
	// healthTimeout plus one resync (10 s here), then stop (10 s stopTimeout),
	// destroy (zfs-fuse may say busy for tens of seconds), restore and start:
	// generous, for a machine whose cores are busy.
	s.waitLog(t, mark, 4*time.Minute, "action=rollback", "container=web", "result=success")
	h.waitRunning("web", httpdArgv(addr), time.Minute)
	poll(t, 30*time.Second, "v1 answering again", func() (bool, string) { return answers(addr) })
	poll(t, 30*time.Second, "web Stalled/RolledBack", func() (bool, string) {
		stalled, reason, msg := s.condition("Container", "web", service.ConditionStalled)
		return stalled && reason == service.ReasonRolledBack, fmt.Sprintf("%v %s: %s", stalled, reason, msg)
	})
	res := h.run("plan")
	if res.code != 0 || !strings.Contains(res.stdout, "! hold container web: rolled back container web: new version unhealthy") ||
		!strings.Contains(res.stdout, "spec.command changed") {
		t.Errorf("plan: exit %d, want 0 with the rollback:\n%s%s", res.code, res.stdout, res.stderr)
	}
	fams, err := s.metrics()
	if err != nil {
		t.Fatal(err)
	}
	if v, why := value(fams, "zocker_rollbacks_total", map[string]string{"name": "web"}); v != 1 {
		t.Errorf("zocker_rollbacks_total{name=web} = %v (%s), want 1", v, why)
	}
	if prev := h.previousClones(); len(prev) != 0 {
		t.Errorf("previous clones after the rollback: %q (v1 is current again, v2 destroyed)", prev)
	}
	// Rolled back means not retried: the next passes leave v1 alone.
	pid := h.waitRunning("web", httpdArgv(addr), time.Minute).PID
	s.sighupPass(t)
	if again := h.waitRunning("web", httpdArgv(addr), time.Minute).PID; again != pid {
		t.Errorf("the rolled-back version was tried again: pid %d -> %d", pid, again)
	}

	mark = s.mark()
	h.write("web.yaml", webUpdateYAML(addr, []string{"-vv"}, "/etc/passwd", policy))
	h.waitRunning("web", httpdArgv(addr, "-vv"), 2*time.Minute)
	s.waitLog(t, mark, 2*time.Minute, "action=confirm", "container=web", "result=success")
	poll(t, time.Minute, "v3 Ready and the previous clone pruned", func() (bool, string) {
		ready, reason, msg := s.condition("Container", "web", service.ConditionReady)
		prev := h.previousClones()
		return ready && len(prev) == 0, fmt.Sprintf("ready %v %s: %s; previous %q", ready, reason, msg, prev)
	})
	if ok, why := answers(addr); !ok {
		t.Errorf("v3 does not answer: %s", why)
	}
}

// TestServeUpdateRollsBackExitingCommand: a new version whose command exits
// at once, with no health check, is rolled back the same way; writes into
// the clone show in plan, and protectWrites blocks the replacement.
func TestServeUpdateRollsBackExitingCommand(t *testing.T) {
	h := newHost(t)
	policy := "\n  update: {healthTimeout: 20s}\n"
	// Env values are stored nowhere in ZFS (only digests): a rollback to a
	// version whose TOKEN differs from the declared one must still run it
	// with its own value.
	h.write("image.yaml", h.imageYAML())
	h.write("job.yaml", containerYAML("job", "/bin/sleep", "1000")+"  env: {TOKEN: one}"+policy)
	s := h.start()
	s.waitReady(t, 2*time.Minute)
	h.waitRunning("job", []string{"/bin/sleep", "1000"}, 2*time.Minute)

	mark := s.mark()
	h.write("job.yaml", containerYAML("job", "/bin/sh", "-c", "exit 1")+"  env: {TOKEN: two}"+policy)
	s.waitLog(t, mark, 4*time.Minute, "action=rollback", "container=job", "result=success", "exited with code 1")
	h.waitRunning("job", []string{"/bin/sleep", "1000"}, time.Minute)
	if res := h.run("exec", "job", "--", "/bin/sh", "-c", "echo $TOKEN"); strings.TrimSpace(res.stdout) != "one" {
		t.Errorf("restored version's TOKEN = %q (exit %d, %s), want one", res.stdout, res.code, res.stderr)
	}

	// 5 MiB written outside volumes shows in the plan of the next change.
	// serve is stopped meanwhile (the container keeps running), or it would
	// apply the edits below before plan reads them.
	if err := s.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("stop serve: %v", err)
	}
	pid := h.waitRunning("job", []string{"/bin/sleep", "1000"}, time.Minute).PID
	res := h.run("exec", "job", "--", "/bin/sh", "-c", "mkdir -p /var/tmp && dd if=/dev/urandom of=/var/tmp/blob bs=1M count=5 2>/dev/null && sync")
	if res.code != 0 {
		t.Fatalf("exec dd: exit %d: %s", res.code, res.stderr)
	}
	h.write("job.yaml", containerYAML("job", "/bin/sleep", "2000")+policy)
	poll(t, time.Minute, "plan shows the discarded writes", func() (bool, string) {
		res := h.run("plan")
		return res.code == 2 && strings.Contains(res.stdout, "~ replace container job: spec.command, spec.env changed; discards 5.") &&
			strings.Contains(res.stdout, "M written outside volumes"), res.stdout + res.stderr
	})
	h.write("job.yaml", containerYAML("job", "/bin/sleep", "2000")+"\n  update: {healthTimeout: 20s, protectWrites: true}\n")
	res = h.run("plan")
	if res.code != 2 || !strings.Contains(res.stdout, "! replace container job: spec.command, spec.env changed; discards 5.") ||
		!strings.Contains(res.stdout, "(protect-writes)") {
		t.Errorf("plan with protectWrites: exit %d:\n%s%s", res.code, res.stdout, res.stderr)
	}
	s = h.start()
	s.waitReady(t, 2*time.Minute)
	s.sighupPass(t)
	if again := h.waitRunning("job", []string{"/bin/sleep", "1000"}, time.Minute).PID; again != pid {
		t.Errorf("protectWrites did not hold the replacement: pid %d -> %d", pid, again)
	}
	stalled, reason, msg := s.condition("Container", "job", service.ConditionStalled)
	if !stalled || reason != service.ReasonWritesProtected {
		t.Errorf("job Stalled = %v %s: %s, want WritesProtected", stalled, reason, msg)
	}
}

// TestServeUpdateCrashSafety kills serve (SIGKILL) at each step of an update
// and restarts it: the next passes end with exactly one running instance of
// the new (good) version, one supervisor, and at most keepPrevious previous
// clones.
func TestServeUpdateCrashSafety(t *testing.T) {
	h := newHost(t)
	policy := "\n  update: {healthTimeout: 3s, keepPrevious: 1}\n"
	h.write("image.yaml", h.imageYAML())
	h.write("job.yaml", containerYAML("job", "/bin/sleep", "1000")+policy)
	s := h.start()
	s.waitReady(t, 2*time.Minute)
	h.waitRunning("job", []string{"/bin/sleep", "1000"}, 2*time.Minute)

	for i, step := range []string{"stopped", "kept", "created", "trial"} {
		argv := []string{"/bin/sleep", strconv.Itoa(1001 + i)}
		t.Logf("update to %q, killing serve at step %s", argv, step)
		if step != "trial" {
			if err := s.stop(syscall.SIGTERM); err != nil {
				t.Fatalf("stop serve: %v", err)
			}
			t.Setenv(pauseUpdateEnvForTest, step)
			s = h.start()
			t.Setenv(pauseUpdateEnvForTest, "")
		}
		mark := s.mark()
		h.write("job.yaml", containerYAML("job", argv...)+policy)
		if step == "trial" {
			s.waitLog(t, mark, 2*time.Minute, "action=replace", "container=job", "result=success")
		} else {
			s.waitLog(t, mark, 2*time.Minute, "paused at update step", "step="+step)
		}
		if err := s.stop(syscall.SIGKILL); err == nil {
			t.Fatal("serve exited cleanly on SIGKILL")
		}
		s = h.start()
		h.waitRunning("job", argv, 2*time.Minute)
		poll(t, 2*time.Minute, "one instance of the new version, trial confirmed", func() (bool, string) {
			sups := supervisors(h.state, "job")
			prev := h.previousClones()
			ready, reason, msg := s.condition("Container", "job", service.ConditionReady)
			return len(sups) == 1 && len(prev) == 1 && ready,
				fmt.Sprintf("supervisors %v, previous %q, ready %v %s: %s", sups, prev, ready, reason, msg)
		})
		if procs := commandProcs(argv, 0); len(procs) != 1 {
			t.Errorf("step %s: %d processes run %q, want 1", step, len(procs), argv)
		}
		checkPsPrevious(t, h, "job", len(h.previousClones()))
		for j := 0; j < i; j++ {
			if old := commandProcs([]string{"/bin/sleep", strconv.Itoa(1000 + j)}, 0); len(old) != 0 {
				t.Errorf("step %s: an old version still runs (pids %v)", step, old)
			}
		}
	}
}

// checkPsPrevious is run after each crash-safety step: previous
// clones never count as containers in ps, and ps --previous shows them.
func checkPsPrevious(t *testing.T, h *host, name string, want int) {
	t.Helper()
	rows, err := h.ps() // fails on a name listed twice
	if err != nil {
		t.Fatalf("ps -a: %v", err)
	}
	if r := rows[name]; r.State != "running" {
		t.Errorf("ps -a shows %s as %q", name, r.State)
	}
	res := h.run("ps", "-a", "--previous", "-o", "json")
	if n := strings.Count(res.stdout, `"state": "previous"`); res.code != 0 || n != want {
		t.Errorf("ps -a --previous: exit %d, %d previous clones, want %d:\n%s", res.code, n, want, res.stdout)
	}
}

// pauseUpdateEnvForTest is cmd/zocker-reconcile's test hook variable.
const pauseUpdateEnvForTest = "ZOCKER_TEST_PAUSE_UPDATE"
