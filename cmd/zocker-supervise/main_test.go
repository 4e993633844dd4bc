package main

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// TestLean keeps the per-container binary small: hundreds of copies run at
// once, so it must not link the CLI framework, metrics, YAML, ZFS,
// repository or reconciler code (the whole module may only contribute the
// jail driver, the runner and the supervisor).
func TestLean(t *testing.T) {
	for _, goos := range []string{"linux", "freebsd"} {
		cmd := exec.Command("go", "list", "-deps", ".")
		cmd.Env = append(cmd.Environ(), "GOOS="+goos)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps (GOOS=%s): %v\n%s", goos, err, out)
		}
		allowed := map[string]bool{
			"github.com/zocker-reconcile/zocker-reconcile/cmd/zocker-supervise": true,
			"github.com/zocker-reconcile/zocker-reconcile/engine/supervisor":    true,
			"github.com/zocker-reconcile/zocker-reconcile/engine/jail":          true,
			"github.com/zocker-reconcile/zocker-reconcile/engine/jail/linuxns":  true,
			"github.com/zocker-reconcile/zocker-reconcile/internal/atomicfile":  true, // stdlib only
			"github.com/zocker-reconcile/zocker-reconcile/manifests/jailparam":  true, // stdlib only: the allow-list of jail parameters
			"github.com/zocker-reconcile/zocker-reconcile/engine/runner":        true,
			"golang.org/x/sys/unix": true,
		}
		for _, pkg := range strings.Fields(string(out)) {
			first, _, _ := strings.Cut(pkg, "/")
			if !strings.Contains(first, ".") || allowed[pkg] {
				continue // the standard library, or an allowed package
			}
			t.Errorf("GOOS=%s: zocker-supervise depends on %s", goos, pkg)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "usage: zocker-supervise"},
		{[]string{"only-one"}, "usage: zocker-supervise"},
		{[]string{"--log-level", "loud", "/state", "web"}, `--log-level "loud"`},
		{[]string{"--log-format", "xml", "/state", "web"}, `--log-format "xml"`},
		{[]string{"--nope", "/state", "web"}, "flag provided but not defined"},
	} {
		var stderr bytes.Buffer
		if code := run(tc.args, &stderr); code != 2 {
			t.Errorf("run(%q) = %d, want 2", tc.args, code)
		}
		if !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("run(%q) printed %q, want %q in it", tc.args, stderr.String(), tc.want)
		}
	}
}
