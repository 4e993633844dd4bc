package sign

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"
)

// Namespaces of the signatures zocker makes and checks: an SSHSIG signature
// is bound to its namespace, so a signed git commit can never pass for a
// signed image record and the reverse.
const (
	NamespaceImage = "zocker-image"
	NamespaceGit   = "git"
)

// maxPolicyFile bounds the allowed_signers and revoked keys files.
const maxPolicyFile = 1 << 20

// Policy is a verification policy: the allowed signers and the revoked
// keys, as read from their files at one moment.
type Policy struct {
	// AllowedSigners is the file the entries come from (for messages).
	AllowedSigners string
	Entries        []Entry
	// Revoked are the SHA256 fingerprints of revoked keys.
	Revoked map[string]bool
}

// Files names a policy's files; Load reads them. The zero value is "no
// policy".
type Files struct {
	AllowedSigners string
	RevokedKeys    string
}

// Enabled reports whether a policy is in force.
func (f Files) Enabled() bool { return f.AllowedSigners != "" }

// Load reads and parses the files. A policy file anyone but root (or the
// service's user) could write would let them add a signer, so, like the
// manifests, it must not be writable by group or others.
func (f Files) Load() (*Policy, error) {
	if f.AllowedSigners == "" {
		return nil, errors.New("no allowed signers file given")
	}
	data, err := readPolicyFile(f.AllowedSigners)
	if err != nil {
		return nil, fmt.Errorf("read allowed signers: %w", err)
	}
	entries, err := ParseAllowedSigners(f.AllowedSigners, data)
	if err != nil {
		return nil, fmt.Errorf("allowed signers %w", err)
	}
	p := &Policy{AllowedSigners: f.AllowedSigners, Entries: entries, Revoked: map[string]bool{}}
	if f.RevokedKeys != "" {
		data, err := readPolicyFile(f.RevokedKeys)
		if err != nil {
			return nil, fmt.Errorf("read revoked keys: %w", err)
		}
		if p.Revoked, err = ParseRevoked(f.RevokedKeys, data); err != nil {
			return nil, fmt.Errorf("revoked keys %w", err)
		}
	}
	return p, nil
}

func readPolicyFile(name string) ([]byte, error) {
	// O_NONBLOCK: a FIFO put in its place is refused below, not waited on.
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", name)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return nil, fmt.Errorf("%s is writable by group or others, who could then add a signer (fix: chmod go-w %s)", name, name)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 && int(st.Uid) != os.Geteuid() {
		return nil, fmt.Errorf("%s is owned by uid %d, neither root nor this service's user (fix: chown root %s)", name, st.Uid, name)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxPolicyFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxPolicyFile {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, maxPolicyFile)
	}
	return data, nil
}

// ParseRevoked parses a revoked keys file: public keys one per line, as
// ssh-keygen -Y verify -r accepts them (# comments and blank lines
// skipped). OpenSSH's binary KRL format is refused with a message.
func ParseRevoked(name string, data []byte) (map[string]bool, error) {
	if bytes.HasPrefix(data, []byte("SSHKRL\n")) {
		return nil, fmt.Errorf("%s: binary KRL files are not supported: list the revoked public keys, one per line", name)
	}
	out := map[string]bool{}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		key, err := parseKey(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, i+1, err)
		}
		out[ssh.FingerprintSHA256(key)] = true
	}
	return out, nil
}

// Signer is who made a signature the policy accepts.
type Signer struct {
	// Principals are the principals of the allowed_signers line that matched.
	Principals string
	Key        ssh.PublicKey
}

// Fingerprint is the key's SHA256 fingerprint, as ssh-keygen -l prints it.
func (s Signer) Fingerprint() string {
	if s.Key == nil {
		return ""
	}
	return ssh.FingerprintSHA256(s.Key)
}

// String renders the signer for people: "ops@example (ED25519 SHA256:...)".
func (s Signer) String() string {
	if s.Key == nil {
		return ""
	}
	return fmt.Sprintf("%s (%s %s)", s.Principals, keyKind(s.Key), s.Fingerprint())
}

func keyKind(k ssh.PublicKey) string {
	switch k.Type() {
	case ssh.KeyAlgoED25519:
		return "ED25519"
	case ssh.KeyAlgoRSA:
		return "RSA"
	case ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521:
		return "ECDSA"
	}
	return k.Type()
}

// Reasons of a refused signature: the Status condition reasons.
const (
	ReasonUnsigned     = "Unsigned"
	ReasonInvalid      = "SignatureInvalid"
	ReasonNotAllowed   = "SignerNotAllowed"
	ReasonExpired      = "SignatureExpired"
	ReasonNotYetValid  = "SignerNotYetValid"
	ReasonRevoked      = "SignerRevoked"
	ReasonPolicyBroken = "PolicyInvalid"
)

// Error is a refused signature: Reason is one of the Reason constants, the
// message says what and who.
type Error struct {
	Reason string
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// ReasonOf returns the Reason of a refused signature in err's chain, or "".
func ReasonOf(err error) string {
	var se *Error
	if errors.As(err, &se) {
		return se.Reason
	}
	return ""
}

// Unsigned is the error for something that carries no signature.
func Unsigned(what string) error {
	return &Error{Reason: ReasonUnsigned, Msg: what + " is unsigned"}
}

// VerifyOptions narrow a verification.
type VerifyOptions struct {
	// Principal, when set, must match the principals of the entry (as
	// ssh-keygen -Y verify -I does); "" accepts any principal of an entry
	// listing the key (ssh-keygen -Y find-principals).
	Principal string
	// Time is when the key must be valid (zero: now).
	Time time.Time
}

// Verify checks an armored SSHSIG signature of message in namespace and
// returns the signer the policy allows. what names the signed object in
// messages ("image 1a2b…", "tag web").
func (p *Policy) Verify(what, namespace string, message, armored []byte, opts VerifyOptions) (Signer, error) {
	if len(armored) == 0 {
		return Signer{}, Unsigned(what)
	}
	sig, err := sshsig.Unarmor(armored)
	if err != nil {
		return Signer{}, &Error{Reason: ReasonInvalid, Msg: fmt.Sprintf("%s: signature unreadable: %v", what, err)}
	}
	if _, ok := sig.PublicKey.(*ssh.Certificate); ok {
		return Signer{}, &Error{Reason: ReasonNotAllowed, Msg: fmt.Sprintf("%s: signed with a certificate, which zocker does not accept (cert-authority is not supported)", what)}
	}
	fp := ssh.FingerprintSHA256(sig.PublicKey)
	if sig.Namespace != namespace {
		return Signer{}, &Error{Reason: ReasonInvalid, Msg: fmt.Sprintf("%s: signature by %s is for namespace %q, not %q", what, fp, sig.Namespace, namespace)}
	}
	if err := sig.HashAlgorithm.Available(); err != nil {
		return Signer{}, &Error{Reason: ReasonInvalid, Msg: fmt.Sprintf("%s: signature by %s: %v", what, fp, err)}
	}
	if err := sshsig.Verify(bytes.NewReader(message), sig, sig.PublicKey, sig.HashAlgorithm, namespace); err != nil {
		return Signer{}, &Error{Reason: ReasonInvalid, Msg: fmt.Sprintf("%s: signature by %s does not match the content (changed after signing, or a corrupt signature): %v", what, fp, err)}
	}
	if p.Revoked[fp] {
		return Signer{}, &Error{Reason: ReasonRevoked, Msg: fmt.Sprintf("%s: signed by %s which is revoked", what, fp)}
	}
	at := opts.Time
	if at.IsZero() {
		at = time.Now()
	}
	refused := &Error{Reason: ReasonNotAllowed, Msg: fmt.Sprintf("%s: signed by %s which is not allowed by %s", what, fp, p.AllowedSigners)}
	keyBytes := sig.PublicKey.Marshal()
	for _, e := range p.Entries {
		if !bytes.Equal(e.Key.Marshal(), keyBytes) {
			continue
		}
		if opts.Principal != "" && !matchPatternList(opts.Principal, e.Principals) {
			continue
		}
		where := fmt.Sprintf("%s:%d", e.File, e.Line)
		switch {
		case e.Namespaces != "" && !matchPatternList(namespace, e.Namespaces):
			refused = &Error{Reason: ReasonNotAllowed, Msg: fmt.Sprintf("%s: signed by %s which is not allowed for namespace %q (%s allows %s)", what, fp, namespace, where, e.Namespaces)}
		case !e.ValidAfter.IsZero() && at.Before(e.ValidAfter):
			refused = &Error{Reason: ReasonNotYetValid, Msg: fmt.Sprintf("%s: signed by %s which is not valid before %s (%s)", what, fp, e.ValidAfter.UTC().Format(time.RFC3339), where)}
		case !e.ValidBefore.IsZero() && at.After(e.ValidBefore):
			refused = &Error{Reason: ReasonExpired, Msg: fmt.Sprintf("%s: signature expired: signer %s was valid before %s (%s)", what, fp, e.ValidBefore.UTC().Format(time.RFC3339), where)}
		default:
			return Signer{Principals: e.Principals, Key: sig.PublicKey}, nil
		}
	}
	return Signer{}, refused
}
