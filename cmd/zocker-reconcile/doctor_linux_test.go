package main

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zocker-reconcile/zocker-reconcile/internal/testenv"
)

// runDoctor runs doctor in-process. Its stdout only: doctor logs nothing
// at the default level, and -o json must parse.
func runDoctor(t *testing.T, args ...string) (string, int) {
	t.Helper()
	return runCLI(t, append([]string{"doctor"}, args...)...)
}

// TestDoctorOnSubstrate: on the test substrate (zfs-fuse running, the
// adapter on PATH) doctor prints every check and exits 0; a world-writable
// manifest directory makes it exit 1 naming the fix.
func TestDoctorOnSubstrate(t *testing.T) {
	root := testenv.Dataset(t)
	parent := t.TempDir()
	os.Chmod(parent, 0o755)
	dir := filepath.Join(parent, "zocker.d")
	os.Mkdir(dir, 0o755)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := l.Addr().String()
	l.Close()
	args := []string{"--root", root, "--manifests", dir, "--listen", listen}

	out, code := runDoctor(t, args...)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	for _, check := range []string{"ok   zfs-fuse:", "ok   zfs adapter:", "ok   namespaces:", "cgroups:",
		"ok   root dataset " + root + ":", "ok   manifests " + dir + ":", "ok   image sources:", "ok   listen address " + listen + ": free"} {
		if !strings.Contains(out, check) {
			t.Errorf("no line %q in:\n%s", check, out)
		}
	}
	t.Logf("doctor:\n%s", out)

	os.Chmod(dir, 0o777)
	out, code = runDoctor(t, append(args, "-o", "json")...)
	var doc struct {
		Failed bool `json:"failed"`
		Checks []struct{ Check, Status, Detail, Fix string }
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	if code != 1 || !doc.Failed {
		t.Fatalf("world-writable manifests: exit %d\n%s", code, out)
	}
	found := false
	for _, c := range doc.Checks {
		if c.Status == "fail" && strings.HasPrefix(c.Check, "manifests ") && strings.Contains(c.Fix, "chmod go-w") {
			found = true
		}
	}
	if !found {
		t.Errorf("no failed manifests check with the fix:\n%s", out)
	}
}
