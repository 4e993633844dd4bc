package service

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
	"github.com/zocker-reconcile/zocker-reconcile/engine/sign"
	"github.com/zocker-reconcile/zocker-reconcile/internal/testenv"
)

// TestCommitVerifierAgreesWithGit signs commits with
// `git -c gpg.format=ssh -c user.signingkey=KEY commit -S` and checks that
// CommitVerifier decides as `git verify-commit` does with the same
// allowed_signers file: A's commit accepted, B's and an unsigned one
// refused with their reasons; in a SHA-1 and a SHA-256 repository.
func TestCommitVerifierAgreesWithGit(t *testing.T) {
	gitBin := testenv.Tool(t, "git", "git")
	testenv.Tool(t, "ssh-keygen", "openssh-client")
	keys := t.TempDir()
	privA, pubA := testenv.SSHKey(t, keys, "a", "ed25519")
	privB, _ := testenv.SSHKey(t, keys, "b", "rsa")
	allowed := filepath.Join(keys, "allowed_signers")
	if err := os.WriteFile(allowed, []byte("ops@example "+pubA+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"sha1", "sha256"} {
		t.Run(format, func(t *testing.T) {
			dir := t.TempDir()
			env := append(os.Environ(), "HOME="+dir, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
			git := func(args ...string) (string, error) {
				cmd := exec.Command(gitBin, append([]string{"-C", dir, "-c", "user.name=ops", "-c", "user.email=ops@example",
					"-c", "gpg.ssh.allowedSignersFile=" + allowed}, args...)...)
				cmd.Env = env
				out, err := cmd.CombinedOutput()
				return strings.TrimSpace(string(out)), err
			}
			if out, err := git("init", "-q", "--object-format="+format); err != nil {
				t.Skipf("git init --object-format=%s: %v: %s", format, err, out)
			}
			v := &CommitVerifier{Files: sign.Files{AllowedSigners: allowed}, Runner: &runner.Exec{}, Git: gitBin}
			for i, c := range []struct {
				name, key, reason string
			}{{"signed by A", privA, ""}, {"signed by B", privB, sign.ReasonNotAllowed}, {"unsigned", "", sign.ReasonUnsigned}} {
				os.WriteFile(filepath.Join(dir, "f.yaml"), []byte(strings.Repeat("x", i+1)), 0o644)
				args := []string{"commit", "-q", "-m", c.name}
				if c.key != "" {
					args = append([]string{"-c", "gpg.format=ssh", "-c", "user.signingkey=" + c.key}, append(args, "-S")...)
				}
				if _, err := git("add", "-A"); err != nil {
					t.Fatal(err)
				}
				if out, err := git(args...); err != nil {
					t.Fatalf("git commit: %v: %s", err, out)
				}
				head, err := v.Head(context.Background(), dir)
				if err != nil {
					t.Fatal(err)
				}
				want, _ := git("rev-parse", "HEAD")
				if head != want {
					t.Fatalf("Head = %s, git says %s", head, want)
				}
				signer, err := v.Verify(context.Background(), dir, head)
				_, gitErr := git("verify-commit", head)
				if (err == nil) != (gitErr == nil) {
					t.Fatalf("%s: ours %v, git verify-commit %v", c.name, err, gitErr)
				}
				if sign.ReasonOf(err) != c.reason {
					t.Fatalf("%s: reason %q (%v), want %q", c.name, sign.ReasonOf(err), err, c.reason)
				}
				if err == nil && signer.Principals != "ops@example" {
					t.Errorf("signer %+v", signer)
				}
			}
		})
	}
}

// TestCommitVerifierWorktreeName: a git-sync worktree named for another
// commit than its HEAD is refused.
func TestCommitVerifierWorktreeName(t *testing.T) {
	a, b := strings.Repeat("a", 40), strings.Repeat("b", 40)
	if err := checkWorktreePath("/srv/sync/.worktrees/"+a+"/zocker.d", a); err != nil {
		t.Errorf("matching worktree: %v", err)
	}
	if err := checkWorktreePath("/srv/sync/rev-"+a, b); err == nil {
		t.Errorf("worktree of %s with HEAD %s accepted", a, b)
	}
}

// TestSplitCommitSignature: the signature header and its continuation
// lines come out, the rest (including the message) stays byte for byte.
func TestSplitCommitSignature(t *testing.T) {
	raw := "tree t\nparent p\nauthor a\ncommitter c\ngpgsig -----BEGIN SSH SIGNATURE-----\n U1NIU0lH\n -----END SSH SIGNATURE-----\nencoding x\n\nmessage\n\n body\n"
	payload, sig := splitCommitSignature([]byte(raw), "gpgsig")
	if want := "tree t\nparent p\nauthor a\ncommitter c\nencoding x\n\nmessage\n\n body\n"; string(payload) != want {
		t.Errorf("payload %q", payload)
	}
	if want := "-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n-----END SSH SIGNATURE-----\n"; string(sig) != want {
		t.Errorf("sig %q", sig)
	}
	if p, s := splitCommitSignature([]byte("tree t\n\nmsg\n"), "gpgsig"); s != nil || string(p) != "tree t\n\nmsg\n" {
		t.Errorf("unsigned: %q %q", p, s)
	}
}
