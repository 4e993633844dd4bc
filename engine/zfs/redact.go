package zfs

import (
	"strings"
)

// redactedError keeps err for errors.Is/As but prints msg: the message of a
// go-zfs error carries the whole command line (`zfs clone -o zocker:spec=...`),
// which goes to the log and to /status. zocker:spec holds env digests only
// (reconcile.RedactEnv), but it is long and it is the applied spec: nothing of
// a caller's property values is printed (review M3).
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redactValues returns err with every occurrence of the given property
// values replaced by "<redacted>" in its message (nil stays nil).
func redactValues(err error, props map[string]string, keys ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	for _, k := range keys {
		v := props[k]
		if len(v) < 4 {
			continue
		}
		msg = strings.ReplaceAll(msg, v, "<redacted>")
		// go-zfs quotes the command line with %q: the escaped form too.
		if q := strings.Trim(quoteInner(v), "\""); q != v {
			msg = strings.ReplaceAll(msg, q, "<redacted>")
		}
	}
	return &redactedError{msg: msg, err: err}
}

// quoteInner is v as it appears inside a %q-quoted string.
func quoteInner(v string) string {
	var b strings.Builder
	for _, r := range v {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
