package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/service"
)

// TestCrashLoopIsNotReady (F1): a container whose command is missing and
// one that exits 3 are Ready=False with the reason in /status, `status`
// exits 1 and prints the reason, and zocker_object_ready is 0 within one
// backoff step of the crash (not at the next resync).
func TestCrashLoopIsNotReady(t *testing.T) {
	t.Parallel()
	h := newHost(t)
	h.write("images.yaml", h.imageYAML())
	h.write("ok.yaml", containerYAML("fine", "/bin/sleep", "100101"))
	h.write("badcmd.yaml", containerYAML("badcmd", "/nope"))
	h.write("crash.yaml", containerYAML("crashloop", "/bin/sh", "-c", "exit 3"))
	srv := h.start()
	h.waitRunning("fine", []string{"/bin/sleep", "100101"}, converge)

	want := map[string]string{"badcmd": service.ReasonCommandNotFound, "crashloop": service.ReasonCrashLoop}
	poll(t, converge, "both containers Ready=False with their reason in /status", func() (bool, string) {
		st, err := srv.status()
		if err != nil {
			return false, err.Error()
		}
		for name, reason := range want {
			o, ok := objectStatus(st, "Container", name)
			if !ok {
				return false, "no Container/" + name
			}
			r, _ := o.Condition(service.ConditionReady)
			if r.Status || r.Reason != reason {
				return false, fmt.Sprintf("%s: %+v", name, r)
			}
			t.Logf("%s: %s: %s", name, r.Reason, r.Message)
		}
		return true, ""
	})
	st, _ := srv.status()
	if o, _ := objectStatus(st, "Container", "crashloop"); !strings.Contains(condMsg(o), "exited 3") || !strings.Contains(condMsg(o), "restart") {
		t.Errorf("crashloop's message %q does not name the exit code and the restarts", condMsg(o))
	}
	if o, _ := objectStatus(st, "Container", "fine"); !o.Ready() {
		t.Errorf("the healthy container is not Ready: %+v", o)
	}
	res := h.run("status", "--listen", srv.addr)
	if res.code != 1 || !strings.Contains(res.stdout, "CrashLoop") || !strings.Contains(res.stdout, "CommandNotFound") || strings.Contains(res.stdout, "All objects are Ready") {
		t.Errorf("status: exit %d, want 1 with both reasons\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
	}
	// The same from the host alone (no service).
	res = h.run("status", "--local")
	if res.code != 1 || !strings.Contains(res.stdout, "CrashLoop") {
		t.Errorf("status --local: exit %d\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
	}

	// One backoff step: a container that runs (Ready 1) and then exits 3
	// must read 0 within a few seconds of the exit: the supervisor's first
	// backoff is 1 s and the service reads the supervisors every second.
	// The resync (10 s here) would be too late, and no pass is triggered by
	// an exit.
	h.write("late.yaml", containerYAML("late", "/bin/sh", "-c", "sleep 5; exit 3"))
	ready := func(want float64) func() (bool, string) {
		return func() (bool, string) {
			fams, err := srv.metrics()
			if err != nil {
				return false, err.Error()
			}
			v, why := value(fams, "zocker_object_ready", map[string]string{"kind": "Container", "name": "late"})
			return v == want, fmt.Sprintf("%v %s", v, why)
		}
	}
	poll(t, converge, "zocker_object_ready{late} 1 while it runs", ready(1))
	poll(t, converge, "zocker_object_ready{late} 0 once it crashed", ready(0))
	var sup struct {
		LastExitAt time.Time `json:"lastExitAt"`
	}
	b, err := os.ReadFile(filepath.Join(h.state, "containers", "late", "status.json"))
	if err == nil {
		err = json.Unmarshal(b, &sup)
	}
	if err != nil || sup.LastExitAt.IsZero() {
		t.Fatalf("late's supervisor status: %v: %s", err, b)
	}
	took := time.Since(sup.LastExitAt)
	t.Logf("zocker_object_ready{late} read 0 at most %s after the exit", took.Round(10*time.Millisecond))
	if took > 8*time.Second {
		t.Errorf("object_ready took %s after the crash; want about one backoff step, well under the 10 s resync", took)
	}
}

func condMsg(o service.ObjectStatus) string {
	c, _ := o.Condition(service.ConditionReady)
	return c.Message
}

// TestLastErrorKept (F2): an image with a wrong sha256 and one whose RUN
// fails keep their error in /status across three passes.
func TestLastErrorKept(t *testing.T) {
	t.Parallel()
	h := newHost(t)
	h.write("images.yaml", h.imageYAML())
	h.write("badsha.yaml", fmt.Sprintf(`apiVersion: zocker/v1
kind: Image
metadata:
  name: badsha
spec:
  tarball:
    path: %s
    sha256: %s
`, h.tarball, strings.Repeat("0", 64)))
	ctxDir := mkdir(t, h.man, "failimg")
	writeFile(t, filepath.Join(ctxDir, "Zockerfile"), "FROM bb\nRUN exit 4\n")
	h.write("failimg.yaml", `apiVersion: zocker/v1
kind: Image
metadata:
  name: failimg
spec:
  build:
    context: ./failimg
`)
	srv := h.start()
	want := map[string]string{"badsha": "sha256 mismatch", "failimg": "Zockerfile:2"}
	check := func() (bool, string) {
		st, err := srv.status()
		if err != nil {
			return false, err.Error()
		}
		for name, msg := range want {
			o, ok := objectStatus(st, "Image", name)
			if !ok {
				return false, "no Image/" + name
			}
			r, _ := o.Condition(service.ConditionReady)
			if r.Status || !strings.Contains(r.Message, msg) {
				return false, fmt.Sprintf("%s: %+v", name, o.Conditions)
			}
		}
		return true, ""
	}
	poll(t, converge, "both images failed with their error", check)
	for pass := 1; pass <= 3; pass++ {
		// The book is updated when the pass is planned, before it logs so.
		srv.sighupPass(t)
		if ok, why := check(); !ok {
			t.Fatalf("after pass %d the error is gone: %s", pass, why)
		}
	}
	st, _ := srv.status()
	for name := range want {
		o, _ := objectStatus(st, "Image", name)
		t.Logf("%s: %+v", name, o.Conditions)
		if s, _ := o.Condition(service.ConditionStalled); !s.Status {
			t.Errorf("%s is the user's mistake but not Stalled: %+v", name, o.Conditions)
		}
	}
}

// TestActionDeadline (issue 11, M4): a build running past --action-timeout
// is cancelled (its RUN process killed), the Image says why, and /healthz
// stays up because the action did stop.
func TestActionDeadline(t *testing.T) {
	t.Parallel()
	h := newHost(t)
	h.write("images.yaml", h.imageYAML())
	ctxDir := mkdir(t, h.man, "slow")
	writeFile(t, filepath.Join(ctxDir, "Zockerfile"), "FROM bb\nRUN /bin/sleep 100901\n")
	h.write("slow.yaml", `apiVersion: zocker/v1
kind: Image
metadata:
  name: slow
spec:
  build:
    context: ./slow
`)
	srv := h.start("--action-timeout", "2m,build=3s")
	poll(t, converge, "Image/slow failing past its deadline", func() (bool, string) {
		st, err := srv.status()
		if err != nil {
			return false, err.Error()
		}
		o, ok := objectStatus(st, "Image", "slow")
		if !ok {
			return false, "no Image/slow"
		}
		r, _ := o.Condition(service.ConditionReady)
		return !r.Status && strings.Contains(r.Message, "past its 3s deadline"), fmt.Sprintf("%+v", o.Conditions)
	})
	poll(t, converge, "the RUN step killed", func() (bool, string) {
		p := commandProcs([]string{"/bin/sleep", "100901"}, 0)
		return len(p) == 0, fmt.Sprintf("still running: %v", p)
	})
	if code, b, err := srv.get("/healthz"); err != nil || code != 200 {
		t.Errorf("/healthz after a cancelled action: %d %s %v", code, b, err)
	}
}
