package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/image"
	"github.com/zocker-reconcile/zocker-reconcile/internal/testenv"
)

// secondPoolHost makes a host whose root is on a pool of its own (a sparse
// file, destroyed at cleanup). A pulled clone stream must find its origin in
// the pulling root, and zfs-fuse looks origins up by GUID in the whole pool,
// where the pushing root's copy would be found too: so puller and pusher
// cannot share a pool here.
func secondPoolHost(t *testing.T, like *host) *host {
	t.Helper()
	// Registered before the host's teardown, so it runs after it: the
	// containers are pruned before the pool goes.
	pool := testenv.ExtraPool(t, "ztpull")
	base := t.TempDir()
	h := &host{t: t, bin: like.bin, root: pool + "/x", tarball: like.tarball}
	h.state = filepath.Join(base, "state")
	h.man = mkdir(t, base, "manifests")
	h.empty = mkdir(t, base, "empty")
	t.Cleanup(h.teardown)
	h.init()
	return h
}

// must runs a command that has to succeed and returns its standard output.
func (h *host) must(args ...string) string {
	h.t.Helper()
	res := h.run(args...)
	if res.code != 0 {
		h.t.Fatalf("%v: exit %d\nstdout: %s\nstderr: %s", args, res.code, res.stdout, res.stderr)
	}
	return res.stdout
}

// pullImageYAML declares Image name pulled from tag of repository.
func pullImageYAML(name, repository, tag string) string {
	return fmt.Sprintf(`apiVersion: zocker/v1
kind: Image
metadata:
  name: %s
spec:
  pull:
    repository: %s
    tag: %s
`, name, repository, tag)
}

// TestPullImageDeclaredInManifests pushes an image from root A to a file://
// repository and declares it with pull: on root B (another pool): apply
// pulls it and runs the container; moving the repository tag makes the
// next apply pull the new image and replace the container; an unreachable
// repository keeps the container and serve reports the Image not Ready
// (RepositoryUnreachable).
func TestPullImageDeclaredInManifests(t *testing.T) {
	t.Parallel()
	a := newHost(t)
	repoURL := "file://" + filepath.Join(t.TempDir(), "repo")
	a.must("import", "-t", "base", a.tarball)
	a.must("push", "base", "--repository", repoURL)
	idA1, why := a.imageID("base")
	if idA1 == "" {
		t.Fatal(why)
	}

	b := secondPoolHost(t, a)
	// Creates B's root, so that plan can read it.
	b.must("init")
	b.write("base.yaml", pullImageYAML("base", repoURL, "base"))
	argv := []string{"/bin/sleep", "100071"}
	b.write("p1.yaml", strings.Replace(containerYAML("p1", argv...), "image: bb", "image: base", 1))

	plan := b.run("plan")
	t.Logf("plan:\n%s%s", plan.stdout, plan.stderr)
	if !strings.Contains(plan.stdout, "pull image base") {
		t.Errorf("plan does not say it pulls image base: exit %d\n%s%s", plan.code, plan.stdout, plan.stderr)
	}
	out := b.must("apply")
	t.Logf("apply:\n%s", out)
	first := b.waitRunning("p1", argv, 10*time.Second)
	if id, why := b.imageID("base"); id != idA1 {
		t.Errorf("B's base is %q (%s), want A's %s", id, why, idA1)
	}

	// A new image on A (a child of base with one more file) moves the
	// repository's tag base.
	ctxDir := mkdir(t, t.TempDir(), "ctx")
	writeFile(t, filepath.Join(ctxDir, "marker"), "second\n")
	writeFile(t, filepath.Join(ctxDir, "Zockerfile"), "FROM base\nCOPY marker /marker\n")
	a.must("build", "-t", "base2", ctxDir)
	a.must("tag", "base2", "base")
	a.must("push", "base", "--repository", repoURL)
	idA2, why := a.imageID("base")
	if idA2 == "" || idA2 == idA1 {
		t.Fatalf("A's base after the build: %q (%s), was %s", idA2, why, idA1)
	}

	plan = b.run("plan")
	t.Logf("plan after the tag moved:\n%s%s", plan.stdout, plan.stderr)
	if !strings.Contains(plan.stdout, "pull image base") || !strings.Contains(plan.stdout, image.Short(idA2)) {
		t.Errorf("plan after the tag moved does not pull base to %s: exit %d\n%s%s", image.Short(idA2), plan.code, plan.stdout, plan.stderr)
	}
	out = b.must("apply", "--pull-interval", "1s")
	t.Logf("apply after the tag moved:\n%s", out)
	if id, why := b.imageID("base"); id != idA2 {
		t.Errorf("B's base is %q (%s) after the tag moved, want %s", id, why, idA2)
	}
	second := b.waitRunning("p1", argv, 10*time.Second)
	if second.PID == first.PID {
		t.Errorf("the container was not replaced after the pull: pid %d", first.PID)
	}
	if alive(first.PID) {
		t.Errorf("the replaced container's pid %d is still alive", first.PID)
	}

	// An unreachable repository: serve keeps the image and the container
	// and reports the Image not Ready.
	srv := b.start("--pull-interval", "2s")
	srv.waitReady(t, converge)
	b.write("base.yaml", pullImageYAML("base", "file:///nonexistent-"+testenv.RandomHex(4), "base"))
	t.Logf("unreachable: %s", b.waitNotReady("Image", "base", "RepositoryUnreachable", "nonexistent"))
	srv.sighupPass(t)
	if kept := b.waitRunning("p1", argv, 5*time.Second); kept.PID != second.PID {
		t.Errorf("unreachable repository: container pid %d became %d", second.PID, kept.PID)
	}
	if id, why := b.imageID("base"); id != idA2 {
		t.Errorf("unreachable repository: B's base is %q (%s), want %s still", id, why, idA2)
	}
}
