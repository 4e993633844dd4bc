package service

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
	"github.com/zocker-reconcile/zocker-reconcile/engine/sign"
)

// CommitVerifier checks that the manifest directory's git HEAD commit
// carries a valid SSH signature (git's gpg.format=ssh: SSHSIG, namespace
// "git") by a key of an allowed_signers file (serve --verify-commits).
//
// git reads the commit (`git rev-parse` and `git cat-file commit`, through
// the runner), and engine/sign checks the signature, rather than `git
// verify-commit`: the policy is then the very one image pulls use (our
// allowed_signers parser, --revoked-keys, the same refusal reasons), the
// verdict does not depend on parsing git's and ssh-keygen's human output
// or on the installed git knowing gpg.ssh (2.34+), and ssh-keygen need not
// be on the host. The key must be valid now, not at the commit's own
// (signer-chosen) date: a backdated commit by an expired key is refused.
type CommitVerifier struct {
	// Files are the allowed signers (--verify-commits) and revoked keys.
	Files  sign.Files
	Runner runner.Runner
	// Git is the git binary (default /usr/local/bin/git on FreeBSD, git
	// from PATH elsewhere).
	Git string
}

// RevisionUnverified is a manifest revision that was refused.
type RevisionUnverified struct {
	// Commit is the refused HEAD commit ("" when it could not be read).
	Commit string `json:"commit,omitempty"`
	// Reason is a CamelCase code (Unsigned, SignerNotAllowed, ...).
	Reason  string    `json:"reason"`
	Message string    `json:"message"`
	Since   time.Time `json:"since"`
}

// ReasonVerificationFailed is the reason of a revision whose commit could
// not be read at all (not a git worktree, git failing).
const ReasonVerificationFailed = "VerificationFailed"

var hexCommit = regexp.MustCompile(`^([0-9a-f]{40}|[0-9a-f]{64})$`)

// Head returns the HEAD commit of the worktree holding dir.
func (v *CommitVerifier) Head(ctx context.Context, dir string) (string, error) {
	out, err := v.git(ctx, dir, "rev-parse", "--verify", "HEAD^{commit}")
	if err != nil {
		return "", fmt.Errorf("read the HEAD commit of %s: %w", dir, err)
	}
	commit := strings.TrimSpace(string(out))
	if !hexCommit.MatchString(commit) {
		return "", fmt.Errorf("read the HEAD commit of %s: unexpected %q", dir, commit)
	}
	return commit, nil
}

// Verify checks commit (the HEAD of dir's worktree) and returns its signer.
func (v *CommitVerifier) Verify(ctx context.Context, dir, commit string) (sign.Signer, error) {
	if err := checkWorktreePath(dir, commit); err != nil {
		return sign.Signer{}, err
	}
	raw, err := v.git(ctx, dir, "cat-file", "commit", commit)
	if err != nil {
		return sign.Signer{}, fmt.Errorf("read commit %s: %w", commit, err)
	}
	// What git hashed is what we check: the object's ID binds these bytes.
	if got := objectID(len(commit), raw); got != commit {
		return sign.Signer{}, fmt.Errorf("commit %s: its object hashes to %s", commit, got)
	}
	header := "gpgsig"
	if len(commit) == 64 {
		header = "gpgsig-sha256"
	}
	what := "commit " + commit[:12]
	payload, sig := splitCommitSignature(raw, header)
	if sig == nil {
		return sign.Signer{}, sign.Unsigned(what)
	}
	if !bytes.HasPrefix(sig, []byte("-----BEGIN SSH SIGNATURE-----")) {
		return sign.Signer{}, &sign.Error{Reason: sign.ReasonInvalid, Msg: what + ": signed with OpenPGP or X.509, not an SSH key (gpg.format=ssh)"}
	}
	policy, err := v.Files.Load()
	if err != nil {
		return sign.Signer{}, &sign.Error{Reason: sign.ReasonPolicyBroken, Msg: err.Error()}
	}
	return policy.Verify(what, sign.NamespaceGit, payload, sig, sign.VerifyOptions{})
}

func (v *CommitVerifier) git(ctx context.Context, dir string, args ...string) ([]byte, error) {
	bin := v.Git
	if bin == "" {
		bin = "git"
		if runtime.GOOS == "freebsd" {
			bin = "/usr/local/bin/git" // devel/git installs there
		}
	}
	// The worktree may belong to git-sync's user: safe.directory lets git
	// read it; no system or global configuration changes what it reads.
	argv := append([]string{bin, "-c", "safe.directory=*", "-C", dir}, args...)
	return v.Runner.Run(ctx, runner.Cmd{Argv: argv, Timeout: 30 * time.Second,
		Env: []string{"PATH=/usr/local/bin:/usr/bin:/bin", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "HOME=/nonexistent", "LC_ALL=C"}})
}

// objectID is git's object name of a commit: the SHA-1 (40 hex digits) or
// SHA-256 (64) of "commit <size>\0" and the content.
func objectID(hexLen int, raw []byte) string {
	hdr := fmt.Appendf(nil, "commit %d\x00", len(raw))
	if hexLen == 64 {
		sum := sha256.Sum256(append(hdr, raw...))
		return hex.EncodeToString(sum[:])
	}
	sum := sha1.Sum(append(hdr, raw...))
	return hex.EncodeToString(sum[:])
}

// splitCommitSignature removes the signature header (and its continuation
// lines, which start with a space) from a commit object's headers, as git
// does before checking: it returns the signed payload and the signature,
// nil when there is none.
func splitCommitSignature(raw []byte, header string) (payload, sig []byte) {
	end := bytes.Index(raw, []byte("\n\n"))
	if end < 0 {
		end = len(raw)
	}
	lines := strings.SplitAfter(string(raw[:end+1]), "\n")
	var out, s strings.Builder
	found, in := false, false
	for _, l := range lines {
		switch {
		case in && strings.HasPrefix(l, " "):
			s.WriteString(l[1:])
			continue
		case !found && strings.HasPrefix(l, header+" "):
			found, in = true, true
			s.WriteString(strings.TrimPrefix(l, header+" "))
			continue
		}
		in = false
		out.WriteString(l)
	}
	if !found {
		return raw, nil
	}
	out.Write(raw[min(end+1, len(raw)):])
	return []byte(out.String()), []byte(s.String())
}

// checkWorktreePath refuses a directory whose path names a git-sync
// worktree of another commit than its HEAD.
func checkWorktreePath(dir, commit string) error {
	for _, el := range strings.Split(filepath.ToSlash(dir), "/") {
		el = strings.TrimPrefix(el, "rev-")
		if hexCommit.MatchString(el) && el != commit {
			return errors.New("the worktree " + dir + " is named for commit " + el + " but its HEAD is " + commit)
		}
	}
	return nil
}
