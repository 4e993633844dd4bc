package sign

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// A tag signature file (tags/<tag>.sig in a repository) is a small text
// payload followed by the armored SSHSIG signature of exactly the payload's
// bytes:
//
//	zocker-tag v1
//	tag: web
//	image: <64 hex digits>
//	time: 2026-12-03T07:30:00Z
//	-----BEGIN SSH SIGNATURE-----
//	...
//	-----END SSH SIGNATURE-----
//
// Binding the tag name stops a signed tag from being replayed under another
// name; the time says when it was signed. To check one with OpenSSH: split
// the file before the BEGIN line, then ssh-keygen -Y verify -n zocker-image
// with the first part as the message and the rest as the signature.

const (
	tagMagic   = "zocker-tag v1"
	armorBegin = "-----BEGIN SSH SIGNATURE-----"
)

// maxTagFile bounds a tag signature file.
const maxTagFile = 16 << 10

// MaxSignatureFile bounds any signature file a repository holds.
const MaxSignatureFile = maxTagFile

// TagPayload is the signed statement "tag points at id, as of at".
type TagPayload struct {
	Tag  string
	ID   string
	Time time.Time
}

// Marshal renders the payload.
func (t TagPayload) Marshal() []byte {
	return fmt.Appendf(nil, "%s\ntag: %s\nimage: %s\ntime: %s\n", tagMagic, t.Tag, t.ID, t.Time.UTC().Format(time.RFC3339))
}

var (
	tagLineRe = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	idLineRe  = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// ParseTagPayload reads a payload written by Marshal, refusing anything else
// (the exact form, so that one statement has one encoding).
func ParseTagPayload(b []byte) (TagPayload, error) {
	lines := strings.Split(string(b), "\n")
	if len(lines) != 5 || lines[4] != "" || lines[0] != tagMagic {
		return TagPayload{}, fmt.Errorf("not a zocker tag statement")
	}
	var t TagPayload
	var ok1, ok2, ok3 bool
	var ts string
	t.Tag, ok1 = strings.CutPrefix(lines[1], "tag: ")
	t.ID, ok2 = strings.CutPrefix(lines[2], "image: ")
	ts, ok3 = strings.CutPrefix(lines[3], "time: ")
	if !ok1 || !ok2 || !ok3 || !tagLineRe.MatchString(t.Tag) || !idLineRe.MatchString(t.ID) {
		return TagPayload{}, fmt.Errorf("malformed zocker tag statement")
	}
	var err error
	if t.Time, err = time.Parse(time.RFC3339, ts); err != nil {
		return TagPayload{}, fmt.Errorf("zocker tag statement: time: %w", err)
	}
	return t, nil
}

// SignTag returns the content of a tag signature file.
func (k *Key) SignTag(t TagPayload) ([]byte, error) {
	payload := t.Marshal()
	sig, err := k.Sign(NamespaceImage, payload)
	if err != nil {
		return nil, err
	}
	return append(payload, sig...), nil
}

// SplitTagFile splits a tag signature file into the payload and the armored
// signature.
func SplitTagFile(b []byte) (payload, armored []byte, err error) {
	i := bytes.Index(b, []byte(armorBegin))
	if i < 0 {
		return nil, nil, fmt.Errorf("no SSH signature in the tag signature file")
	}
	return b[:i], b[i:], nil
}

// VerifyTag checks a tag signature file for tag and returns the image ID it
// binds the tag to and its signer.
func (p *Policy) VerifyTag(tag string, file []byte) (TagPayload, Signer, error) {
	what := "tag " + tag
	if len(file) == 0 {
		return TagPayload{}, Signer{}, Unsigned(what)
	}
	payload, armored, err := SplitTagFile(file)
	if err != nil {
		return TagPayload{}, Signer{}, &Error{Reason: ReasonInvalid, Msg: what + ": " + err.Error()}
	}
	signer, err := p.Verify(what, NamespaceImage, payload, armored, VerifyOptions{})
	if err != nil {
		return TagPayload{}, Signer{}, err
	}
	t, err := ParseTagPayload(payload)
	if err != nil {
		return TagPayload{}, Signer{}, &Error{Reason: ReasonInvalid, Msg: what + ": " + err.Error()}
	}
	if t.Tag != tag {
		return TagPayload{}, Signer{}, &Error{Reason: ReasonInvalid, Msg: fmt.Sprintf("%s: the signature is for tag %s (a signed tag copied under another name)", what, t.Tag)}
	}
	return t, signer, nil
}
