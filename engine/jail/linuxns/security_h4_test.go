//go:build linux

package linuxns

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/engine/jail"
)

// evilLibrary builds the review's LD_PRELOAD library: its constructor
// appends "pid exe root" to logPath in every process that loads it.
func evilLibrary(t *testing.T, logPath string) string {
	t.Helper()
	cc, err := exec.LookPath("cc")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("a C compiler is needed: %v", err)
		}
		t.Skipf("no C compiler: %v", err)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "evil.c")
	code := `#include <stdio.h>
#include <unistd.h>
#include <limits.h>
__attribute__((constructor)) static void evil(void) {
	char exe[PATH_MAX] = "", root[PATH_MAX] = "";
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1); if (n > 0) exe[n] = 0;
	n = readlink("/proc/self/root", root, sizeof root - 1); if (n > 0) root[n] = 0;
	FILE *f = fopen("` + logPath + `", "a");
	if (f) { fprintf(f, "preloaded into pid %d exe=%s root=%s uid=%d\n", getpid(), exe, root, getuid()); fclose(f); }
}
`
	if err := os.WriteFile(src, []byte(code), 0o644); err != nil {
		t.Fatal(err)
	}
	lib := filepath.Join(dir, "evil.so")
	if out, err := exec.Command(cc, "-shared", "-fPIC", "-o", lib, src).CombinedOutput(); err != nil {
		t.Fatalf("cc: %v\n%s", err, out)
	}
	return lib
}

// TestSecurityH4ContainerEnvNeverOnHost reproduces review H4: an image's
// ENV LD_PRELOAD=<a library> made every host-side helper (the exec shim,
// nsenter, the cgroup join helper) load attacker code as root on the host.
// Now the container's environment reaches only the command's own execve
// inside the jail: neither a command started through Command (exec, health
// checks) nor one started through Start (a supervisor's main command)
// loads the library in a host process, and no process outside the jail's
// pid namespace carries the container's environment.
func TestSecurityH4ContainerEnvNeverOnHost(t *testing.T) {
	d := newTestDriver(t)
	logPath := filepath.Join(t.TempDir(), "preload.log")
	lib := evilLibrary(t, logPath)

	// Control: the library works on a dynamically linked host program.
	ctl := exec.Command("/bin/true")
	ctl.Env = []string{"LD_PRELOAD=" + lib}
	if err := ctl.Run(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(logPath); !bytes.Contains(b, []byte("exe=/usr/bin/true")) {
		t.Fatalf("the LD_PRELOAD library does not load on the host (control): %q", b)
	}
	os.Remove(logPath)

	create(t, d, jail.Spec{Name: "h4", Root: testRoot(t), Network: jail.Network{Mode: jail.NetNone}})
	st, _ := d.load("h4")
	marker := "ZOCKER_H4_MARKER=" + strconv.Itoa(os.Getpid())
	env := []string{"LD_PRELOAD=" + lib, "LD_LIBRARY_PATH=" + filepath.Dir(lib), "GCONV_PATH=" + filepath.Dir(lib), marker}

	// Through Command (the exec shim): a short command, then a long one
	// whose process tree is inspected while it runs.
	if out, code := run(t, d, "h4", jail.Process{Argv: []string{"/bin/true"}, Env: env}); code != 0 {
		t.Fatalf("true in the jail: exit %d: %s", code, out)
	}
	cmd, err := d.Command("h4", jail.Process{Argv: []string{"sleep", "30"}, Env: env})
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()

	// Through Start (the supervisor's path).
	p, err := d.Start("h4", jail.Process{Argv: []string{"sleep", "30"}, Env: env}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Signal(9); _, _ = p.Wait() }()

	// Both sleeps run: two processes inside carry the marker.
	jailNS, _ := os.Readlink("/proc/" + strconv.Itoa(st.Pid) + "/ns/pid")
	deadline := time.Now().Add(10 * time.Second)
	for {
		inside, outside := withEnv(marker, jailNS)
		if len(outside) > 0 {
			t.Fatalf("host processes carry the container's environment: %v", outside)
		}
		if len(inside) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("want 2 commands with the container's environment in the jail, found %v", inside)
		}
		time.Sleep(20 * time.Millisecond) // polling step under the deadline
	}
	if p.Pid() <= 0 {
		t.Errorf("Start returned no host pid")
	} else if b, _ := os.ReadFile("/proc/" + strconv.Itoa(p.Pid()) + "/environ"); !bytes.Contains(b, []byte(marker)) {
		t.Errorf("Start's pid %d is not the command (environ %q)", p.Pid(), b)
	}
	if err := p.Signal(15); err != nil {
		t.Fatal(err)
	}
	if ws, err := p.Wait(); err != nil || !ws.Signaled() || ws.Signal() != 15 {
		t.Errorf("after SIGTERM: %v, %v; want killed by SIGTERM", ws, err)
	}
	if b, err := os.ReadFile(logPath); err == nil {
		t.Errorf("LD_PRELOAD from the container's environment ran on the host:\n%s", b)
	}
}

// withEnv lists the processes whose environment holds kv, split by whether
// they live in the pid namespace jailNS.
func withEnv(kv, jailNS string) (inside, outside []string) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !bytes.Contains(append([]byte{0}, b...), []byte("\x00"+kv+"\x00")) {
			continue
		}
		exe, _ := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		ns, _ := os.Readlink(filepath.Join("/proc", e.Name(), "ns/pid"))
		desc := e.Name() + " " + exe
		if ns == jailNS {
			inside = append(inside, desc)
		} else {
			outside = append(outside, strings.TrimSpace(desc))
		}
	}
	return inside, outside
}
