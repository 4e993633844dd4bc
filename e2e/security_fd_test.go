package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestSecurityCLIInheritedDescriptors: a descriptor left open by whoever
// started the CLI (an administrator's shell, a CI runner) must not reach a
// container that `run` starts in the foreground (the CLI's own jail) or in
// the background (through a supervisor). Before CloseInherited, the
// container's shell held the pipe the test passes as the CLI's fd 10 (a
// shell's leftover; my own shell left fds 10 and 251 open).
func TestSecurityCLIInheritedDescriptors(t *testing.T) {
	t.Parallel()
	h := adhocHost(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(w.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	leak := fmt.Sprintf("pipe:[%d]", st.Ino)
	for _, mode := range [][]string{{"--rm"}, {"-d"}} {
		name := "fd" + strings.TrimLeft(mode[0], "-")
		args := append(append(h.globals(), "run", "-n", name), mode...)
		// The shell lists its own descriptors; in the background it keeps
		// them open a while for the test to look from the host as well.
		args = append(args, "base", "ls -l /proc/$$/fd; sleep 30")
		if mode[0] == "--rm" {
			args[len(args)-1] = "ls -l /proc/$$/fd"
		}
		cmd := exec.Command(h.bin, args...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		// fd 10 of the CLI, inheritable (fd 3 and 4 would be replaced by
		// the pipes the CLI hands its own children).
		cmd.ExtraFiles = []*os.File{nil, nil, nil, nil, nil, nil, nil, w}
		if err := cmd.Run(); err != nil {
			t.Fatalf("run %v: %v\n%s", mode, err, errb.String())
		}
		if mode[0] == "--rm" {
			if !strings.Contains(out.String(), "->") {
				t.Fatalf("run --rm: no descriptor listing: %q", out.String())
			}
			if strings.Contains(out.String(), leak) {
				t.Errorf("run --rm: the container's shell holds the CLI's inherited %s:\n%s", leak, out.String())
			}
			continue
		}
		var lines []string
		poll(t, 30*time.Second, name+"'s descriptor listing in its log", func() (bool, string) {
			res := h.run("logs", name)
			lines = strings.Split(res.stdout, "\n")
			return strings.Contains(res.stdout, "->"), res.stdout + res.stderr
		})
		for _, l := range lines {
			if strings.Contains(l, leak) {
				t.Errorf("run -d: the container's shell holds the CLI's inherited %s: %s", leak, l)
			}
		}
		for _, pid := range supervisors(h.state, name) {
			fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
			for _, fd := range fds {
				if target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); target == leak {
					t.Errorf("run -d: supervisor %d holds the CLI's inherited %s", pid, leak)
				}
			}
		}
		h.must("rm", "-f", name)
	}
}
