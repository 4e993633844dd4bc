package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// TestPlanApplyAndNoopCost runs plan and apply without serve: plan exits 2
// with changes pending and 0 once apply converged; and a no-op plan runs the
// same small number of external commands for 3 and for 12 containers
// (ARCHITECTURE section 4: a pass costs O(1) commands).
func TestPlanApplyAndNoopCost(t *testing.T) {
	t.Parallel()
	h := newHost(t)
	h.write("images.yaml", h.imageYAML())
	argv := func(i int) []string { return []string{"/bin/sleep", fmt.Sprint(100100 + i)} }
	declare := func(from, to int) {
		for i := from; i < to; i++ {
			h.write(fmt.Sprintf("p%d.yaml", i), containerYAML(fmt.Sprintf("p%d", i), argv(i)...))
		}
	}
	plan := func(wantCode int, wantOut string) result {
		t.Helper()
		res := h.run("plan")
		if res.code != wantCode || !strings.Contains(res.stdout, wantOut) {
			t.Fatalf("plan: exit %d, want %d with %q\nstdout: %s\nstderr: %s", res.code, wantCode, wantOut, res.stdout, res.stderr)
		}
		return res
	}
	apply := func() {
		t.Helper()
		if res := h.run("apply"); res.code != 0 {
			t.Fatalf("apply: exit %d\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
		}
	}
	// noopCommands counts the commands a no-op plan runs: every argv the
	// runner executes is logged at debug as msg=exec, and every go-zfs
	// command as msg=go-zfs.
	noopCommands := func() int {
		t.Helper()
		res := h.run("plan", "--log-level", "debug")
		if res.code != 0 {
			t.Fatalf("plan after apply: exit %d, want 0 (in sync)\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
		}
		n, checks := 0, 0
		var cmds []string
		for _, l := range strings.Split(res.stderr, "\n") {
			if !strings.Contains(l, "msg=exec ") && !strings.Contains(l, "msg=go-zfs ") {
				continue
			}
			// The command's start-up check that the root exists and its
			// state directory is this one (issue 19): one command per
			// invocation, not part of the pass.
			if strings.Contains(l, "zocker:state-dir") {
				checks++
				continue
			}
			n++
			cmds = append(cmds, l)
		}
		if checks != 1 {
			t.Errorf("plan ran %d root checks, want 1", checks)
		}
		t.Logf("no-op plan ran %d commands:\n%s", n, strings.Join(cmds, "\n"))
		return n
	}

	declare(0, 3)
	plan(2, "+ import image bb")
	apply()
	plan(0, "No changes")
	n3 := noopCommands()

	// A command edit: plan names the replacement, apply does it.
	h.write("p0.yaml", containerYAML("p0", "/bin/sleep", "100199"))
	plan(2, "~ replace container p0: spec.command changed")
	apply()
	plan(0, "No changes")
	h.waitRunning("p0", []string{"/bin/sleep", "100199"}, converge)

	declare(3, 12)
	plan(2, "+ create container p11")
	apply()
	n12 := noopCommands()
	if n3 != n12 || n12 > 2 || n12 == 0 {
		t.Errorf("a no-op plan runs %d commands with 3 containers and %d with 12: want the same number, at most 2", n3, n12)
	}
	for i := 1; i < 12; i++ {
		h.waitRunning(fmt.Sprintf("p%d", i), argv(i), converge)
	}
}

// TestInvalidFileFailsPlanAndApply: a directory with one invalid file is
// planned and converged for its valid objects, and plan and apply exit 1
// saying how many files were invalid, so that a CI job notices.
func TestInvalidFileFailsPlanAndApply(t *testing.T) {
	t.Parallel()
	h := newHost(t)
	h.write("images.yaml", h.imageYAML())
	h.write("good.yaml", containerYAML("good", "/bin/sleep", "100301"))
	h.write("broken.yaml", "apiVersion: zocker/v1\nkind: Container\nmetadata: {name: broken}\nspec:\n  image: bb\n  comand: [/bin/true]\n")

	res := h.run("plan")
	if res.code != 1 || !strings.Contains(res.stdout, "+ import image bb") || !strings.Contains(res.stdout, "container good") ||
		!strings.Contains(res.stderr, "broken.yaml") || !strings.Contains(res.stderr, "1 manifest file is invalid") {
		t.Fatalf("plan: exit %d, want 1 with the plan of the valid objects and the problem\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
	}
	res = h.run("apply")
	if res.code != 1 || !strings.Contains(res.stdout, "Converged the valid objects") ||
		!strings.Contains(res.stderr, "1 manifest file is invalid (problems above): the objects it declares were left as they are") {
		t.Fatalf("apply: exit %d, want 1 after converging good\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
	}
	h.waitRunning("good", []string{"/bin/sleep", "100301"}, converge)

	h.write("broken.yaml", containerYAML("broken", "/bin/sleep", "100302"))
	if res := h.run("apply"); res.code != 0 || !strings.Contains(res.stdout, "Converged on revision") {
		t.Fatalf("apply once fixed: exit %d\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
	}
}
