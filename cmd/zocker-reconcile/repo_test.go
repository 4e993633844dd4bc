package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runRepoCmd runs a command in-process with a --root that does not exist, so
// that any attempt to open the local store would fail differently.
func runRepoCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append([]string{"--root", "nosuchpool-zz/zocker", "--log-level", "error"}, args...))
	err := root.Execute()
	return out.String(), err
}

func TestRepoCommandsRefuseBadInputFirst(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"push", "Bad_Tag", "--repository", "file://" + dir}, "invalid tag"},
		{[]string{"pull", "../x", "--repository", "file://" + dir}, "invalid tag"},
		{[]string{"del", "x-", "--repository", "file://" + dir}, "invalid tag"},
		{[]string{"pull", "app", "--repository", "file://" + dir + "/../etc"}, `".."`},
		{[]string{"push", "app", "--repository", "ssh://-oProxyCommand=touch/x"}, "invalid host"},
		{[]string{"search", "--repository", ""}, "ZOCKER_REPOSITORY"},
	} {
		_, err := runRepoCmd(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("repository touched: %v", ents)
	}
}

func TestSearchAndDelCommands(t *testing.T) {
	dir := t.TempDir()
	id := strings.Repeat("ab", 32)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "images", id), 0o755))
	must(os.MkdirAll(filepath.Join(dir, "tags"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "images", id, "stream"), []byte("x"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "images", id, "meta.json"), []byte(`{"id":"`+id+`","size":3145728,"sha256":"`+strings.Repeat("0", 64)+`","created":"2026-11-01T10:00:00Z"}`), 0o644))
	must(os.WriteFile(filepath.Join(dir, "tags", "apache"), []byte(id+"\n"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "tags", "base"), []byte(id+"\n"), 0o644))
	t.Setenv("ZOCKER_REPOSITORY", "file://"+dir)

	out, err := runRepoCmd(t, "search", "ap*")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "TAG") || !strings.Contains(lines[1], "apache") ||
		!strings.Contains(lines[1], id[:12]) || !strings.Contains(lines[1], "3.0M") {
		t.Errorf("search output:\n%s", out)
	}
	out, err = runRepoCmd(t, "del", "apache")
	if err != nil || !strings.Contains(out, "0 unused image(s) removed") {
		t.Fatalf("del apache: %v\n%s", err, out)
	}
	out, err = runRepoCmd(t, "del", "base")
	if err != nil || !strings.Contains(out, "1 unused image(s) removed") {
		t.Fatalf("del base: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "images", id)); !os.IsNotExist(err) {
		t.Errorf("image kept after its last tag went: %v", err)
	}
}
