//go:build linux

package engine

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zocker-reconcile/zocker-reconcile/engine/zfs"
	"github.com/zocker-reconcile/zocker-reconcile/internal/testenv"
	"github.com/zocker-reconcile/zocker-reconcile/manifests"
	"github.com/zocker-reconcile/zocker-reconcile/reconcile"
)

// asNobody runs argv as the unprivileged user nobody (a real exec through
// runuser) and returns its combined output and error. Not setpriv: it keeps
// its capabilities (PR_SET_KEEPCAPS) until its own execve, so the path walk
// of the program it starts bypasses directory permissions (seen here:
// `setpriv --reuid=65534 -- /0700-dir/bin/true` succeeds where runuser, su
// and a shell run by setpriv get "Permission denied").
func asNobody(t *testing.T, argv ...string) (string, error) {
	t.Helper()
	runuser, err := exec.LookPath("runuser")
	if err != nil {
		t.Fatalf("runuser (util-linux) is required: %v", err)
	}
	out, err := exec.Command(runuser, append([]string{"-u", "nobody", "--"}, argv...)...).CombinedOutput()
	return string(out), err
}

// TestSecurityH5M3LocalUsers: a running container whose root made a setuid
// copy of its shell, and the image it was cloned from. As the unprivileged
// user nobody, no file of either can be read or executed (67d2aef left the
// mountpoints 0755: cat and the setuid binary worked). `zfs get all -r ROOT`,
// which any local user may run, shows no env value of the container (67d2aef
// stored them in zocker:spec).
func TestSecurityH5M3LocalUsers(t *testing.T) {
	e := newTestEngine(t)
	ctx := context.Background()
	key, err := e.Store.(*zfs.Store).EnvKey(ctx, true)
	if err != nil || len(key) != 32 {
		t.Fatalf("env key: %v (%d bytes)", err, len(key))
	}
	reconcile.SetEnvKey(key)
	t.Cleanup(func() { reconcile.SetEnvKey(nil) })
	secret := "hunter2-SECRET-" + testenv.RandomHex(4)
	img := &manifests.Image{Metadata: manifests.ObjectMeta{Name: "busybox"},
		Spec: manifests.ImageSpec{Tarball: &manifests.TarballSource{Path: testenv.BusyboxTarball(t)}}}
	db := &manifests.Container{Metadata: manifests.ObjectMeta{Name: "db"}, Spec: manifests.ContainerSpec{
		Image: "busybox", Command: manifests.Command{Argv: []string{"/bin/sleep", "1000"}},
		Env:     map[string]string{"POSTGRES_PASSWORD": secret},
		Network: manifests.Network{Mode: manifests.NetNone}}}
	converge(t, e, img, db)
	waitRunning(t, e, "db")
	if got := execIn(t, e, "db", "/bin/sh", "-c", "mkdir /suid && cp /bin/busybox /suid/id && chmod 4755 /suid/id && echo ok"); strings.TrimSpace(got) != "ok" {
		t.Fatalf("setuid copy inside: %q", got)
	}
	st, err := e.Store.Observe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Containers) != 1 || len(st.Images) != 1 {
		t.Fatalf("state: %+v", st)
	}
	cmp, imp := st.Containers[0].Mountpoint, st.Images[0].Mountpoint
	for _, argv := range [][]string{
		{"/bin/cat", filepath.Join(imp, "bin", "busybox")},
		{filepath.Join(imp, "bin", "busybox"), "true"},
		{"/bin/cat", filepath.Join(cmp, "etc", "passwd")},
		{filepath.Join(cmp, "suid", "id"), "-u"},
		{"/bin/ls", filepath.Dir(cmp)},
	} {
		out, err := asNobody(t, argv...)
		if err == nil {
			t.Errorf("as nobody, %v worked: %s", argv, out)
		} else if !strings.Contains(out, "ermission denied") {
			t.Errorf("as nobody, %v: %v: %s (want permission denied)", argv, err, out)
		}
	}
	// The test is not vacuous: root reaches the same files.
	if out, err := exec.Command(filepath.Join(cmp, "suid", "id"), "-u").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "0" {
		t.Fatalf("as root: %v: %s", err, out)
	}

	out, err := exec.Command("zfs", "get", "-H", "-r", "-o", "name,property,value", "all", e.Store.(*zfs.Store).Root()).CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), secret) || strings.Contains(string(out), "hunter2") {
		t.Fatalf("zfs get all -r shows the env value")
	}
	if !strings.Contains(string(out), "POSTGRES_PASSWORD") {
		t.Fatalf("zocker:spec does not name the variable (test looks at the wrong thing?)")
	}
	// The container does get its value.
	if got := execIn(t, e, "db", "/bin/sh", "-c", "for p in /proc/[0-9]*; do tr '\\0' '\\n' < $p/environ; done | grep POSTGRES"); !strings.Contains(got, secret) {
		t.Errorf("the container's env: %q", got)
	}
}
