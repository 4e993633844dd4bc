package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/zocker-reconcile/zocker-reconcile/engine/sign"
	"github.com/zocker-reconcile/zocker-reconcile/internal/testenv"
	"github.com/zocker-reconcile/zocker-reconcile/service"
)

// signers makes keys A (ed25519) and B (ecdsa) and an allowed_signers file
// listing A as ops@example.
func signers(t *testing.T) (privA, privB, allowedA string) {
	t.Helper()
	dir := mkdir(t, t.TempDir(), "keys")
	privA, pubA := testenv.SSHKey(t, dir, "a", "ed25519")
	privB, _ = testenv.SSHKey(t, dir, "b", "ecdsa")
	allowedA = filepath.Join(dir, "allowed_signers")
	if err := os.WriteFile(allowedA, []byte("ops@example "+pubA+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return privA, privB, allowedA
}

func fingerprint(t *testing.T, priv string) string {
	t.Helper()
	k, err := sign.LoadKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	return k.Fingerprint()
}

// TestServeSignedPull: push --sign-key writes what ssh-keygen -Y verify
// accepts; serve --allowed-signers pulls the signed image (plan names the
// signer); when the tag moves to an image signed by a key not allowed,
// nothing is received, the Image is not Ready with the reason, and the
// container keeps its pid. save --sign-key and load --allowed-signers carry
// and check the same signatures.
func TestServeSignedPull(t *testing.T) {
	t.Parallel()
	privA, privB, allowedA := signers(t)
	a := newHost(t)
	repoDir := filepath.Join(t.TempDir(), "repo")
	repoURL := "file://" + repoDir
	a.must("import", "-t", "base", a.tarball)
	out := a.must("push", "base", "--repository", repoURL, "--sign-key", privA)
	if !strings.Contains(out, "signed by "+fingerprint(t, privA)) {
		t.Errorf("push output does not name the signer:\n%s", out)
	}
	idA1, why := a.imageID("base")
	if idA1 == "" {
		t.Fatal(why)
	}
	// The issue's own interop check.
	meta, err := os.ReadFile(filepath.Join(repoDir, "images", idA1, "meta.json"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testenv.Tool(t, "ssh-keygen", "openssh-client"), "-Y", "verify", "-f", allowedA, "-I", "ops@example", "-n", "zocker-image",
		"-s", filepath.Join(repoDir, "images", idA1, "meta.json.sig"))
	cmd.Stdin = bytes.NewReader(meta)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -Y verify refused what push --sign-key wrote: %v: %s", err, out)
	}

	b := secondPoolHost(t, a)
	b.must("init")
	b.write("base.yaml", pullImageYAML("base", repoURL, "base"))
	argv := []string{"/bin/sleep", "100141"}
	b.write("p1.yaml", strings.Replace(containerYAML("p1", argv...), "image: bb", "image: base", 1))
	plan := b.run("plan", "--allowed-signers", allowedA)
	if !strings.Contains(plan.stdout, "pull image base") || !strings.Contains(plan.stdout, "signed by ops@example (ED25519 "+fingerprint(t, privA)+")") {
		t.Errorf("plan does not show the signer: exit %d\n%s%s", plan.code, plan.stdout, plan.stderr)
	}
	srv := b.start("--allowed-signers", allowedA, "--pull-interval", "2s")
	first := b.waitRunning("p1", argv, converge)
	if id, why := b.imageID("base"); id != idA1 {
		t.Fatalf("B's base is %q (%s), want %s", id, why, idA1)
	}
	before := datasets(t, b.root)

	// The tag moves to a new image signed by B, who is not allowed.
	ctxDir := mkdir(t, t.TempDir(), "ctx")
	writeFile(t, filepath.Join(ctxDir, "marker"), "second\n")
	writeFile(t, filepath.Join(ctxDir, "Zockerfile"), "FROM base\nCOPY marker /marker\n")
	a.must("build", "-t", "base2", ctxDir)
	a.must("tag", "base2", "base")
	a.must("push", "base", "--repository", repoURL, "--sign-key", privB)
	fpB := fingerprint(t, privB)
	msg := b.waitNotReady("Image", "base", sign.ReasonNotAllowed, "signed by "+fpB+" which is not allowed")
	t.Logf("refused: %s", msg)
	srv.sighupPass(t)
	if kept := b.waitRunning("p1", argv, converge); kept.PID != first.PID {
		t.Errorf("refused signature: container pid %d became %d", first.PID, kept.PID)
	}
	if id, why := b.imageID("base"); id != idA1 {
		t.Errorf("refused signature: B's base is %q (%s), want %s still", id, why, idA1)
	}
	if after := datasets(t, b.root); !slices.Equal(before, after) {
		t.Errorf("refused signature: datasets changed:\nbefore %v\nafter  %v", before, after)
	}
	for _, l := range srv.lines() {
		if strings.Contains(l, "pulls are unverified") {
			t.Errorf("a policy is in force but serve says pulls are unverified: %s", l)
		}
	}
	// The pull command under the same policy refuses too, receiving nothing.
	res := b.run("pull", "base", "--repository", repoURL, "--allowed-signers", allowedA)
	if res.code == 0 || !strings.Contains(res.stderr, "signed by "+fpB+" which is not allowed") {
		t.Errorf("pull --allowed-signers of B's tag: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	if after := datasets(t, b.root); !slices.Equal(before, after) {
		t.Errorf("refused pull: datasets changed:\nbefore %v\nafter  %v", before, after)
	}

	// save archives carry the signatures: load --allowed-signers refuses
	// an unsigned archive, receiving nothing, and loads a signed one.
	a.must("tag", "base", "copy")
	tars := t.TempDir()
	a.must("save", "-o", filepath.Join(tars, "unsigned.tar"), "copy")
	a.must("save", "-o", filepath.Join(tars, "signed.tar"), "--sign-key", privA, "copy")
	res = b.run("load", "-i", filepath.Join(tars, "unsigned.tar"), "--allowed-signers", allowedA)
	if res.code == 0 || !strings.Contains(res.stderr, "tag copy is unsigned") {
		t.Errorf("load of an unsigned archive under a policy: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	if after := datasets(t, b.root); !slices.Equal(before, after) {
		t.Errorf("refused load: datasets changed:\nbefore %v\nafter  %v", before, after)
	}
	if out := b.must("load", "-i", filepath.Join(tars, "signed.tar"), "--allowed-signers", allowedA); strings.TrimSpace(out) != "copy" {
		t.Errorf("load of the signed archive printed %q", out)
	}
	idA2, _ := a.imageID("base")
	if id, why := b.imageID("copy"); id != idA2 {
		t.Errorf("loaded copy is %q (%s), want %s", id, why, idA2)
	}
}

// gitRepo is a repository of manifests whose commits are published as
// git-sync does: a worktree per commit, named by its hash, and a symlink
// renamed over the previous one.
type gitRepo struct {
	t    *testing.T
	src  string
	sync string
	env  []string
}

func newGitRepo(t *testing.T, base string) *gitRepo {
	g := &gitRepo{t: t, src: mkdir(t, base, "src"), sync: mkdir(t, base, "sync"),
		env: append(os.Environ(), "HOME="+base, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")}
	mkdir(t, g.sync, "worktrees")
	g.git(g.src, "init", "-q", "-b", "main")
	return g
}

func (g *gitRepo) git(dir string, args ...string) string {
	g.t.Helper()
	cmd := exec.Command(testenv.Tool(g.t, "git", "git"), append([]string{"-C", dir, "-c", "user.name=ops", "-c", "user.email=ops@example"}, args...)...)
	cmd.Env = g.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		g.t.Fatalf("git %v: %v: %s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// commit writes files, commits them (signed with key when not ""), makes
// the commit's worktree and swaps the link to it; it returns the hash.
func (g *gitRepo) commit(key string, files map[string]string) string {
	g.t.Helper()
	for name, content := range files {
		writeFile(g.t, filepath.Join(g.src, name), content)
	}
	g.git(g.src, "add", "-A")
	args := []string{"commit", "-q", "-m", "revision"}
	if key != "" {
		args = append([]string{"-c", "gpg.format=ssh", "-c", "user.signingkey=" + key}, append(args, "-S")...)
	}
	g.git(g.src, args...)
	sha := g.git(g.src, "rev-parse", "HEAD")
	wt := filepath.Join(g.sync, "worktrees", sha)
	g.git(g.src, "worktree", "add", "-q", "--detach", wt, sha)
	os.Chmod(wt, 0o755)
	tmp := filepath.Join(g.sync, "current.tmp")
	if err := os.Symlink(filepath.Join("worktrees", sha), tmp); err != nil {
		g.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(g.sync, "current")); err != nil {
		g.t.Fatal(err)
	}
	return sha
}

// TestServeVerifyCommits: with --verify-commits, a revision signed by an
// allowed key is applied; an unsigned one and one signed by another key
// change nothing (same datasets, same pid) and set RevisionUnverified and
// zocker_manifest_revision_verified 0; a following signed one is applied.
func TestServeVerifyCommits(t *testing.T) {
	t.Parallel()
	privA, privB, allowedA := signers(t)
	h := newHost(t)
	repo := newGitRepo(t, filepath.Dir(h.man))
	argv := func(n int) []string { return []string{"/bin/sleep", fmt.Sprint(100150 + n)} }
	rev1 := repo.commit(privA, map[string]string{"images.yaml": h.imageYAML(), "web.yaml": containerYAML("web", argv(1)...)})
	h.man = filepath.Join(repo.sync, "current")
	srv := h.start("--verify-commits", allowedA)
	first := h.waitRunning("web", argv(1), converge)
	verified := func(want float64) {
		t.Helper()
		poll(t, converge, fmt.Sprintf("zocker_manifest_revision_verified %v", want), func() (bool, string) {
			fams, err := srv.metrics()
			if err != nil {
				return false, err.Error()
			}
			v, why := value(fams, "zocker_manifest_revision_verified", nil)
			return v == want, fmt.Sprintf("%v %s", v, why)
		})
	}
	verified(1)
	before := datasets(t, h.root)

	for _, c := range []struct {
		name, key, reason string
		n                 int
	}{{"unsigned", "", sign.ReasonUnsigned, 2}, {"signed by B", privB, sign.ReasonNotAllowed, 3}} {
		rev := repo.commit(c.key, map[string]string{"web.yaml": containerYAML("web", argv(c.n)...)})
		poll(t, converge, c.name+": RevisionUnverified "+rev, func() (bool, string) {
			st, why := h.statusJSON()
			if why != "" {
				return false, why
			}
			ru := st.RevisionUnverified
			if ru == nil || ru.Commit != rev || ru.Reason != c.reason {
				return false, fmt.Sprintf("%+v", ru)
			}
			if st.Revision != rev1 {
				return false, "revision in force " + st.Revision + ", want " + rev1
			}
			t.Logf("%s: %s", c.name, ru.Message)
			return true, ""
		})
		verified(0)
		if res := h.run("status", "--listen", h.srv.addr); res.code != 1 || !strings.Contains(res.stdout, "Revision "+rev+" NOT applied ("+c.reason+")") {
			t.Errorf("%s: status exit %d:\n%s%s", c.name, res.code, res.stdout, res.stderr)
		}
		srv.sighupPass(t)
		if kept := h.waitRunning("web", argv(1), converge); kept.PID != first.PID {
			t.Errorf("%s: web pid %d became %d", c.name, first.PID, kept.PID)
		}
		if after := datasets(t, h.root); !slices.Equal(before, after) {
			t.Errorf("%s: datasets changed:\nbefore %v\nafter  %v", c.name, before, after)
		}
	}

	rev4 := repo.commit(privA, map[string]string{"web.yaml": containerYAML("web", argv(4)...)})
	h.waitRunning("web", argv(4), converge)
	verified(1)
	poll(t, converge, "revision "+rev4+" in force, nothing unverified", func() (bool, string) {
		st, why := h.statusJSON()
		if why != "" {
			return false, why
		}
		return st.Revision == rev4 && st.RevisionUnverified == nil, fmt.Sprintf("revision %s unverified %+v", st.Revision, st.RevisionUnverified)
	})
}

// waitNotReady waits until kind/name is not Ready with reason and a message
// containing sub, and returns the message.
func (h *host) waitNotReady(kind, name, reason, sub string) string {
	h.t.Helper()
	var msg string
	poll(h.t, converge, kind+"/"+name+" not Ready: "+reason, func() (bool, string) {
		st, why := h.statusJSON()
		if why != "" {
			return false, why
		}
		o, ok := objectStatus(st, kind, name)
		if !ok {
			return false, fmt.Sprintf("no %s/%s in %+v", kind, name, st.Objects)
		}
		ready, _ := o.Condition(service.ConditionReady)
		if ready.Status || ready.Reason != reason || !strings.Contains(ready.Message, sub) {
			return false, fmt.Sprintf("Ready %+v", ready)
		}
		msg = ready.Message
		return true, ""
	})
	return msg
}
