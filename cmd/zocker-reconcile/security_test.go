package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

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

// TestSecurityLogsExecValidateTheName: logs and exec take a container name
// that becomes a path under the state directory; "../x" read STATE/x/log
// (outside STATE/containers) before the name was checked (security review:
// "logs/exec do not validate NAME").
func TestSecurityLogsExecValidateTheName(t *testing.T) {
	state := t.TempDir()
	if err := os.MkdirAll(filepath.Join(state, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, "x", "log"), []byte("not a container's log\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"logs", "../x"}, {"exec", "../x", "--", "true"}} {
		root := newRootCmd()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(append([]string{"--state-dir", state}, args...))
		err := root.Execute()
		if err == nil || !strings.Contains(err.Error(), `invalid container name "../x"`) {
			t.Errorf("%v: %v, want the name refused", args, err)
		}
		if strings.Contains(out.String(), "not a container's log") {
			t.Errorf("%v read a file outside the containers: %s", args, out.String())
		}
	}
}
