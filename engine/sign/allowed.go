// Package sign is the trust chain: SSH signatures (SSHSIG, the format of
// `ssh-keygen -Y sign`) over image records, repository tags and git
// commits, and the verification policy in OpenSSH's allowed_signers format,
// so that administrators use the keys and files they already have and
// `ssh-keygen -Y verify` can check what zocker signed.
//
// The allowed_signers parser is ours (hiddeco/sshsig only does the
// cryptography); it follows sshsig.c of OpenSSH 9.x: principals, then
// optional options (namespaces="...", valid-after="...", valid-before="...";
// cert-authority is refused, see below), then the key. It is stricter than
// ssh-keygen in one way: a malformed line makes the whole file an error
// instead of being skipped, so that a typo never silently narrows or widens
// the policy.
package sign

import (
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// Entry is one line of an allowed_signers file.
type Entry struct {
	// Line is the 1-based line number in File.
	File string
	Line int
	// Principals is the comma-separated pattern list as written.
	Principals string
	// Key is the signer's public key.
	Key ssh.PublicKey
	// Namespaces is the namespaces="..." pattern list; "" allows every one.
	Namespaces string
	// ValidAfter and ValidBefore bound the time the key may be used at;
	// zero means unbounded.
	ValidAfter, ValidBefore time.Time
}

// ParseAllowedSigners parses an allowed_signers file's content. name is used
// in errors ("FILE:LINE: message").
func ParseAllowedSigners(name string, data []byte) ([]Entry, error) {
	var out []Entry
	for i, line := range strings.Split(string(data), "\n") {
		e, ok, err := parseLine(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, i+1, err)
		}
		if !ok {
			continue
		}
		e.File, e.Line = name, i+1
		out = append(out, e)
	}
	return out, nil
}

func parseLine(line string) (Entry, bool, error) {
	line = strings.TrimRight(line, "\r")
	cp := strings.TrimLeft(line, " \t")
	if cp == "" || cp[0] == '#' {
		return Entry{}, false, nil
	}
	principals, rest := cutWord(cp)
	if rest == "" {
		return Entry{}, false, fmt.Errorf("invalid line: want principals, options (optional) and a public key")
	}
	var e Entry
	e.Principals = principals
	key, err := parseKey(rest)
	if first, _ := cutWord(rest); err != nil && isKeyType(first) {
		return Entry{}, false, fmt.Errorf("invalid key: %w", err)
	}
	if err != nil {
		// Not a key: options first.
		opts, after, err := cutOptions(rest)
		if err != nil {
			return Entry{}, false, err
		}
		if after == "" {
			return Entry{}, false, fmt.Errorf("missing key after the options")
		}
		if key, err = parseKey(after); err != nil {
			return Entry{}, false, fmt.Errorf("invalid key: %w", err)
		}
		if err := e.parseOptions(opts); err != nil {
			return Entry{}, false, err
		}
	}
	e.Key = key
	return e, true, nil
}

// cutWord splits off the first blank-separated word.
func cutWord(s string) (string, string) {
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimLeft(s[i:], " \t")
}

// cutOptions splits off the options field: up to the first blank outside
// double quotes.
func cutOptions(s string) (string, string, error) {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && quoted && i+1 < len(s) && s[i+1] == '"':
			i++
		case s[i] == '"':
			quoted = !quoted
		case !quoted && (s[i] == ' ' || s[i] == '\t'):
			return s[:i], strings.TrimLeft(s[i:], " \t"), nil
		}
	}
	if quoted {
		return "", "", fmt.Errorf("invalid options: unterminated quote")
	}
	return s, "", nil
}

// isKeyType reports whether word names an SSH public key algorithm.
func isKeyType(word string) bool {
	switch word {
	case ssh.KeyAlgoRSA, ssh.KeyAlgoDSA, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
		ssh.KeyAlgoED25519, ssh.KeyAlgoSKECDSA256, ssh.KeyAlgoSKED25519:
		return true
	}
	return strings.HasSuffix(word, "-cert-v01@openssh.com")
}

// parseKey reads "type base64 [comment]".
func parseKey(s string) (ssh.PublicKey, error) {
	typ, rest := cutWord(s)
	b64, _ := cutWord(rest)
	if b64 == "" {
		return nil, fmt.Errorf("want a key type and its base64 data")
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("key data: %w", err)
	}
	key, err := ssh.ParsePublicKey(raw)
	if err != nil {
		return nil, err
	}
	if key.Type() != typ {
		return nil, fmt.Errorf("key type %q does not match its data (%s)", typ, key.Type())
	}
	if _, ok := key.(*ssh.Certificate); ok {
		return nil, fmt.Errorf("a certificate cannot be listed as a signer: list its key")
	}
	return key, nil
}

// parseOptions reads the comma-separated options of a line.
func (e *Entry) parseOptions(opts string) error {
	seen := map[string]bool{}
	for opts != "" {
		name, value, hasValue := "", "", false
		i := strings.IndexAny(opts, "=,")
		if i < 0 || opts[i] == ',' {
			if i < 0 {
				i = len(opts)
			}
			name = opts[:i]
		} else {
			name, hasValue = opts[:i], true
			v, after, err := dequote(opts[i+1:])
			if err != nil {
				return fmt.Errorf("option %s: %w", name, err)
			}
			value, i = v, len(opts)-len(after)
		}
		opts = opts[i:]
		if opts != "" {
			if opts[0] != ',' {
				return fmt.Errorf("invalid options: unknown text after %s", name)
			}
			opts = opts[1:]
			if opts == "" {
				return fmt.Errorf("invalid options: unexpected end after a comma")
			}
		}
		lname := strings.ToLower(name)
		if seen[lname] {
			return fmt.Errorf("option %s given twice", name)
		}
		seen[lname] = true
		switch {
		case lname == "cert-authority" && !hasValue:
			// A CA line trusts every certificate it signed, with principals
			// taken from the certificate: a second trust model we do not
			// implement. Refusing it loudly beats ignoring the line.
			return fmt.Errorf("cert-authority is not supported by zocker: list each signer's own public key instead")
		case lname == "namespaces" && hasValue:
			if value == "" {
				return fmt.Errorf("option namespaces is empty")
			}
			e.Namespaces = value
		case (lname == "valid-after" || lname == "valid-before") && hasValue:
			t, err := parseTime(value)
			if err != nil {
				return fmt.Errorf("invalid %q time %q: %w", lname, value, err)
			}
			if lname == "valid-after" {
				e.ValidAfter = t
			} else {
				e.ValidBefore = t
			}
		default:
			return fmt.Errorf("unknown option %q (allowed: namespaces=\"...\", valid-after=\"...\", valid-before=\"...\")", name)
		}
	}
	if !e.ValidAfter.IsZero() && !e.ValidBefore.IsZero() && !e.ValidBefore.After(e.ValidAfter) {
		return fmt.Errorf("\"valid-before\" time is not after \"valid-after\"")
	}
	return nil
}

// dequote reads a double-quoted value at the start of s, as OpenSSH's
// opt_dequote does: the quotes are required, \" stands for a quote.
func dequote(s string) (string, string, error) {
	if s == "" || s[0] != '"' {
		return "", "", fmt.Errorf("missing start quote")
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s) && s[i+1] == '"':
			b.WriteByte('"')
			i++
		case s[i] == '"':
			return b.String(), s[i+1:], nil
		default:
			b.WriteByte(s[i])
		}
	}
	return "", "", fmt.Errorf("missing end quote")
}

// parseTime reads YYYYMMDD, YYYYMMDDHHMM or YYYYMMDDHHMMSS, in UTC with a
// trailing Z, else in local time (OpenSSH's parse_absolute_time).
func parseTime(s string) (time.Time, error) {
	loc := time.Local
	if strings.HasSuffix(s, "Z") || strings.HasSuffix(s, "z") {
		loc, s = time.UTC, s[:len(s)-1]
	}
	var layout string
	switch len(s) {
	case 8:
		layout = "20060102"
	case 12:
		layout = "200601021504"
	case 14:
		layout = "20060102150405"
	default:
		return time.Time{}, fmt.Errorf("want YYYYMMDD[HHMM[SS]][Z]")
	}
	return time.ParseInLocation(layout, s, loc)
}

// matchPatternList is OpenSSH's match_pattern_list: a comma-separated list
// of patterns (* and ?), each possibly negated with !; a matching negated
// pattern refuses at once, otherwise one positive match accepts.
func matchPatternList(s, list string) bool {
	ok := false
	for _, p := range strings.Split(list, ",") {
		neg := strings.HasPrefix(p, "!")
		if neg {
			p = p[1:]
		}
		if matchPattern(s, p) {
			if neg {
				return false
			}
			ok = true
		}
	}
	return ok
}

// matchPattern matches s against a glob with * and ? only.
func matchPattern(s, p string) bool {
	for len(p) > 0 {
		switch p[0] {
		case '*':
			p = p[1:]
			if p == "" {
				return true
			}
			for i := 0; i <= len(s); i++ {
				if matchPattern(s[i:], p) {
					return true
				}
			}
			return false
		case '?':
			if s == "" {
				return false
			}
			s, p = s[1:], p[1:]
		default:
			if s == "" || s[0] != p[0] {
				return false
			}
			s, p = s[1:], p[1:]
		}
	}
	return s == ""
}
