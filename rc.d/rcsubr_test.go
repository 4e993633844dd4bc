// Package rcd tests rc.d/zocker_reconcile under a stand-in for FreeBSD's
// rc.subr (testdata/rc.subr) with a stand-in daemon(8) and service
// (testdata/fakebsd): start, status, reload, stop, the rcvar check, one*
// commands and required_files, as `service zocker_reconcile ...` runs them.
package rcd

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

type rcEnv struct {
	t      *testing.T
	dir    string
	script string
	conf   string
	record string
}

func newRCEnv(t *testing.T) *rcEnv {
	t.Helper()
	if _, err := os.Stat("/proc/self/cmdline"); err != nil {
		t.Skip("the rc.subr stand-in reads /proc")
	}
	dir := t.TempDir()
	for _, d := range []string{"bin", "run", "log", "zocker.d"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	fake := filepath.Join(dir, "bin", "daemon")
	if out, err := exec.Command("go", "build", "-o", fake, "./testdata/fakebsd").CombinedOutput(); err != nil {
		t.Fatalf("build fakebsd: %v\n%s", err, out)
	}
	if err := os.Symlink(fake, filepath.Join(dir, "bin", "zocker-reconcile")); err != nil {
		t.Fatal(err)
	}
	subr, err := os.ReadFile("testdata/rc.subr")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "rc.subr"), string(subr), 0o644)
	script, err := os.ReadFile("zocker_reconcile")
	if err != nil {
		t.Fatal(err)
	}
	// The script's absolute paths, moved under dir; nothing else changes.
	s := strings.NewReplacer(
		". /etc/rc.subr", ". "+filepath.Join(dir, "rc.subr"),
		"/usr/sbin/daemon", filepath.Join(dir, "bin", "daemon"),
		"/usr/local/sbin/zocker-reconcile", filepath.Join(dir, "bin", "zocker-reconcile"),
		"/var/run/", filepath.Join(dir, "run")+"/",
		"/var/log/", filepath.Join(dir, "log")+"/",
		"/usr/local/etc/zocker.d", filepath.Join(dir, "zocker.d"),
	).Replace(string(script))
	if s == string(script) || !strings.Contains(s, filepath.Join(dir, "rc.subr")) {
		t.Fatal("the script's paths were not rewritten")
	}
	e := &rcEnv{t: t, dir: dir, script: filepath.Join(dir, "zocker_reconcile"), conf: filepath.Join(dir, "rc.conf"),
		record: filepath.Join(dir, "serve")}
	writeFile(t, e.script, s, 0o755)
	e.rcconf("zocker_reconcile_enable=YES\nzocker_reconcile_flags=\"--log-format json\"\n")
	t.Cleanup(func() {
		// Whatever a failed test left running.
		for _, p := range []string{"zocker_reconcile.child.pid", "zocker_reconcile.pid"} {
			if b, err := os.ReadFile(filepath.Join(dir, "run", p)); err == nil {
				if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
	})
	return e
}

func writeFile(t *testing.T, p, s string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), mode); err != nil {
		t.Fatal(err)
	}
}

func (e *rcEnv) rcconf(s string) { writeFile(e.t, e.conf, s, 0o644) }

// service runs `service zocker_reconcile ARG`: sh SCRIPT ARG.
func (e *rcEnv) service(arg string) (string, int) {
	e.t.Helper()
	cmd := exec.Command("sh", e.script, arg)
	cmd.Env = append(os.Environ(), "RC_CONF="+e.conf, "RC_KLDS=zfs", "FAKEBSD_RECORD="+e.record)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatal(err)
	}
	return string(out), code
}

func (e *rcEnv) pid(file string) int {
	b, err := os.ReadFile(filepath.Join(e.dir, "run", file))
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRCScriptLifecycle(t *testing.T) {
	e := newRCEnv(t)
	out, code := e.service("start")
	if code != 0 || !strings.Contains(out, "Starting zocker_reconcile.") {
		t.Fatalf("start: exit %d\n%s", code, out)
	}
	waitFor(t, "the service's argv", func() bool { _, err := os.Stat(e.record + ".argv"); return err == nil })
	argv, _ := os.ReadFile(e.record + ".argv")
	want := strings.Join([]string{"serve", "--manifests", filepath.Join(e.dir, "zocker.d"), "--root", "zroot/zocker",
		"--listen", "127.0.0.1:9847", "--state-dir", filepath.Join(e.dir, "run", "zocker"), "--log-format", "json"}, "\n") + "\n"
	if string(argv) != want {
		t.Errorf("serve argv:\n%s\nwant:\n%s", argv, want)
	}
	log, _ := os.ReadFile(filepath.Join(e.dir, "log", "zocker-reconcile.log"))
	if !strings.Contains(string(log), " -R 10 -P "+filepath.Join(e.dir, "run", "zocker_reconcile.pid")) {
		t.Errorf("daemon options (want -R 10): %s", log)
	}
	waitFor(t, "the daemon's pidfile", func() bool { return e.pid("zocker_reconcile.pid") > 0 && e.pid("zocker_reconcile.child.pid") > 0 })
	daemonPid, childPid := e.pid("zocker_reconcile.pid"), e.pid("zocker_reconcile.child.pid")

	out, code = e.service("status")
	if code != 0 || out != "zocker_reconcile is running as pid "+strconv.Itoa(daemonPid)+".\n" {
		t.Errorf("status: exit %d: %q", code, out)
	}
	out, code = e.service("start")
	if code != 1 || !strings.Contains(out, "zocker_reconcile already running? (pid="+strconv.Itoa(daemonPid)+").") {
		t.Errorf("second start: exit %d: %q", code, out)
	}
	out, code = e.service("reload")
	if code != 0 || !strings.Contains(out, "Reloading zocker_reconcile") {
		t.Errorf("reload: exit %d: %q", code, out)
	}
	waitFor(t, "SIGHUP at the service (not at daemon)", func() bool { _, err := os.Stat(e.record + ".hup"); return err == nil })
	if syscall.Kill(daemonPid, 0) != nil {
		t.Fatal("reload killed daemon")
	}

	out, code = e.service("stop")
	if code != 0 || !strings.Contains(out, "Stopping zocker_reconcile.") {
		t.Errorf("stop: exit %d: %q", code, out)
	}
	// stop returns only once daemon and zocker-reconcile itself are gone.
	for _, p := range []int{daemonPid, childPid} {
		if syscall.Kill(p, 0) == nil {
			var st syscall.WaitStatus
			syscall.Wait4(p, &st, syscall.WNOHANG, nil)
			if syscall.Kill(p, 0) == nil {
				t.Errorf("pid %d still runs after stop", p)
			}
		}
	}
	out, code = e.service("status")
	if code != 1 || out != "zocker_reconcile is not running.\n" {
		t.Errorf("status after stop: exit %d: %q", code, out)
	}
	out, code = e.service("stop")
	if code != 1 || !strings.Contains(out, "zocker_reconcile not running? (check "+filepath.Join(e.dir, "run", "zocker_reconcile.pid")+").") {
		t.Errorf("stop when stopped: exit %d: %q", code, out)
	}
}

func TestRCScriptRcvarAndRequirements(t *testing.T) {
	e := newRCEnv(t)
	e.rcconf("zocker_reconcile_enable=NO\n")
	out, code := e.service("start")
	if code != 0 || !strings.Contains(out, "Cannot 'start' zocker_reconcile. Set zocker_reconcile_enable to YES in /etc/rc.conf or use 'onestart' instead of 'start'.") {
		t.Errorf("disabled start: exit %d: %q", code, out)
	}
	if _, err := os.Stat(e.record + ".argv"); err == nil {
		t.Error("a disabled service was started")
	}
	if out, code = e.service("rcvar"); !strings.Contains(out, `zocker_reconcile_enable="NO"`) {
		t.Errorf("rcvar: exit %d: %q", code, out)
	}
	if _, code = e.service("enabled"); code != 1 {
		t.Errorf("enabled: exit %d, want 1", code)
	}
	out, code = e.service("onestart")
	if code != 0 {
		t.Fatalf("onestart: exit %d: %q", code, out)
	}
	waitFor(t, "onestart's daemon", func() bool { return e.pid("zocker_reconcile.child.pid") > 0 })
	if out, code = e.service("onestop"); code != 0 {
		t.Errorf("onestop: exit %d: %q", code, out)
	}

	// required_files: the binary is gone.
	e.rcconf("zocker_reconcile_enable=YES\n")
	os.Remove(filepath.Join(e.dir, "bin", "zocker-reconcile"))
	out, code = e.service("start")
	if code != 1 || !strings.Contains(out, filepath.Join(e.dir, "bin", "zocker-reconcile")+" is not readable.") {
		t.Errorf("start without the binary: exit %d: %q", code, out)
	}
	// svcj_all_enable=YES: the script opts out (rc.subr would otherwise
	// start it in a service jail, where it cannot make jails).
	os.Symlink(filepath.Join(e.dir, "bin", "daemon"), filepath.Join(e.dir, "bin", "zocker-reconcile"))
	e.rcconf("zocker_reconcile_enable=YES\nsvcj_all_enable=YES\n")
	if out, code = e.service("start"); code != 0 || strings.Contains(out, "service jails") {
		t.Errorf("start with svcj_all_enable=YES: exit %d: %q", code, out)
	}
	waitFor(t, "the daemon", func() bool { return e.pid("zocker_reconcile.child.pid") > 0 })
	e.service("stop")
}

func TestRCScriptShellcheck(t *testing.T) {
	sc, err := exec.LookPath("shellcheck")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("shellcheck not found (Debian package shellcheck): CI=true requires it")
		}
		t.Skip("shellcheck not found")
	}
	for _, f := range []string{"zocker_reconcile", "testdata/rc.subr"} {
		if out, err := exec.Command(sc, "-s", "sh", f).CombinedOutput(); err != nil {
			t.Errorf("shellcheck -s sh %s: %v\n%s", f, err, out)
		}
	}
}
