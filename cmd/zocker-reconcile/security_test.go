package main

import "testing"

// TestSecurityL10TerminalEscapes: a pulled image's CMD with terminal escapes
// was printed raw by `ps` on 67d2aef; now control characters are escaped.
func TestSecurityL10TerminalEscapes(t *testing.T) {
	got := truncateCmd([]string{"/bin/sh", "-c", "\x1b]2;pwned\x07\x1b[2J"})
	if got != `/bin/sh -c \x1b]2;pwned\x07\x1b[2J` {
		t.Fatalf("got %q", got)
	}
	if got := printable("caf\xc3\xa9 \xff \u009b"); got != `café \xff \x9b` {
		t.Fatalf("got %q", got)
	}
}
