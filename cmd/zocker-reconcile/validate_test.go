package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runValidate runs the validate command in-process and returns its output and exit code.
func runValidate(t *testing.T, args ...string) (string, int) {
	t.Helper()
	return runCLI(t, append([]string{"validate"}, args...)...)
}

// runCLI runs a command line in-process and returns its output (stdout
// and stderr) and exit code.
func runCLI(t *testing.T, args ...string) (string, int) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	var ec *exitCode
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &ec):
		return out.String(), ec.code
	}
	t.Fatalf("%v: %v", args, err)
	return "", 0
}

func TestValidateCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "zocker.d")
	os.Mkdir(dir, 0o755)
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("web.yaml", "apiVersion: zocker/v1\nkind: Container\nmetadata: {name: web}\nspec: {image: base}\n")
	out, code := runValidate(t, dir)
	if code != 0 || out != dir+"/web.yaml:4: warning: Container/web: spec.image: image base is not declared in the manifests: it must exist locally\n" {
		t.Errorf("valid set with a warning: exit %d, output %q", code, out)
	}
	write("bad.yaml", "apiVersion: zocker/v1\nkind: Container\nmetadata: {name: Bad}\nspec: {image: base}\n")
	out, code = runValidate(t, dir)
	if code != 1 || !strings.HasPrefix(out, dir+`/bad.yaml:3: Container/"Bad": metadata.name: name "Bad" is invalid`) {
		t.Errorf("invalid set: exit %d, output %q", code, out)
	}
	os.Chmod(filepath.Join(dir, "web.yaml"), 0o666)
	if out, code = runValidate(t, dir); code != 1 || !strings.Contains(out, "chmod go-w "+dir+"/web.yaml") {
		t.Errorf("insecure file: exit %d, output %q", code, out)
	}
	os.Remove(filepath.Join(dir, "bad.yaml"))
	if out, code = runValidate(t, "--insecure-manifests", dir); code != 0 {
		t.Errorf("--insecure-manifests: exit %d, output %q", code, out)
	}
	if _, code = runValidate(t, filepath.Join(dir, "missing")); code != 1 {
		t.Errorf("missing directory: exit %d", code)
	}
}
