// Package depcheck holds the module's import rules (ARCHITECTURE section 2):
// the direct imports of every package, as `go list` reports them for Linux
// and for FreeBSD, checked against the layering the design depends on.
package depcheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/zocker-reconcile/zocker-reconcile"

// pkg is what `go list -json` says about one package.
type pkg struct {
	ImportPath   string
	Standard     bool
	Imports      []string // non-test files
	TestImports  []string // _test.go files of the package
	XTestImports []string // _test.go files of package x_test
}

// list runs `go list -json` over the module for goos.
func list(t *testing.T, goos string) map[string]pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-e", "-json", module+"/...")
	cmd.Env = append(cmd.Environ(), "GOOS="+goos, "GOFLAGS=-mod=mod")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list (GOOS=%s): %v\n%s", goos, err, stderr.String())
	}
	pkgs := map[string]pkg{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		pkgs[rel(p.ImportPath)] = p
	}
	return pkgs
}

// rel is a module package's path relative to the module ("engine/zfs"),
// anything else unchanged.
func rel(path string) string {
	if path == module {
		return "."
	}
	if r, ok := strings.CutPrefix(path, module+"/"); ok {
		return r
	}
	return path
}

func isProject(path string) bool { return path == module || strings.HasPrefix(path, module+"/") }

// under reports whether package p is dir or below it.
func under(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }

// isStd is a standard library path: no dot in its first element.
func isStd(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

// ioStd are the standard packages that reach the filesystem, processes or
// the network: the deciding package must do without them.
var ioStd = []string{"os", "io/fs", "io/ioutil", "net", "syscall", "plugin", "runtime/cgo", "unsafe"}

// rule is one import rule: check returns why importing path from package
// p (non-test code) is forbidden, or "".
type rule struct {
	name  string
	check func(p, path string) string
}

var rules = []rule{
	{"reconcile decides without I/O", func(p, path string) string {
		if p != "reconcile" {
			return ""
		}
		switch {
		case isProject(path) && rel(path) != "manifests" && rel(path) != "image":
			return "reconcile imports only manifests and image from this module"
		case !isProject(path) && !isStd(path):
			return "reconcile imports no third-party package (fsnotify, go-zfs, ...)"
		case slices.ContainsFunc(ioStd, func(b string) bool { return under(path, b) && path != "net/netip" }):
			return "reconcile does no I/O"
		}
		return ""
	}},
	{"leaf packages", func(p, path string) string {
		if (p == "image" || p == "metrics" || p == "metrics/httpapi" || p == "engine/runner" || p == "manifests/jailparam" || p == "engine/oci/layer") && isProject(path) {
			return p + " imports no package of this module"
		}
		if p == "manifests" && isProject(path) && rel(path) != "image" && rel(path) != "manifests/jailparam" {
			return "manifests imports only image and manifests/jailparam from this module"
		}
		return ""
	}},
	{"the engine acts, it does not drive", func(p, path string) string {
		if !under(p, "engine") || !isProject(path) {
			return ""
		}
		r := rel(path)
		if under(r, "controller") || under(r, "service") || under(r, "cmd") || under(r, "metrics") {
			return "engine/** imports none of controller, service, metrics, cmd"
		}
		return ""
	}},
	{"the loop does not know what it runs", func(p, path string) string {
		if p != "controller" || !isProject(path) {
			return ""
		}
		if r := rel(path); r != "reconcile" && r != "manifests" && r != "image" {
			return "controller imports only reconcile, manifests and image from this module"
		}
		return ""
	}},
	{"nothing imports the wiring", func(p, path string) string {
		if !isProject(path) || under(p, "cmd") {
			return ""
		}
		if r := rel(path); under(r, "cmd") || (r == "service" && p != "service") {
			return "only cmd imports service and cmd"
		}
		return ""
	}},
	{"registries are engine/oci's", func(p, path string) string {
		if under(path, "github.com/google/go-containerregistry") && p != "engine/oci" {
			return "only engine/oci talks to OCI registries and layouts (go-containerregistry)"
		}
		return ""
	}},
	{"test support stays in tests", func(p, path string) string {
		if rel(path) == "internal/testenv" || strings.HasSuffix(path, "test") && isProject(path) {
			return "test support (" + rel(path) + ") is imported only by _test.go files"
		}
		return ""
	}},
}

func TestImportRules(t *testing.T) {
	for _, goos := range []string{"linux", "freebsd"} {
		pkgs := list(t, goos)
		if _, ok := pkgs["reconcile"]; !ok || len(pkgs) < 10 {
			t.Fatalf("GOOS=%s: go list found %d packages and no reconcile: the check would check nothing", goos, len(pkgs))
		}
		for name, p := range pkgs {
			if p.Standard || !isProject(p.ImportPath) {
				continue
			}
			for _, path := range p.Imports {
				for _, r := range rules {
					if why := r.check(name, path); why != "" {
						t.Errorf("GOOS=%s: %s imports %s: %s (rule %q)", goos, name, rel(path), why, r.name)
					}
				}
			}
		}
	}
}

// TestRulesCatchViolations feeds each rule an import it must refuse, so that
// a rule that cannot fail is noticed.
func TestRulesCatchViolations(t *testing.T) {
	bad := []struct{ pkg, path string }{
		{"reconcile", "os"},
		{"reconcile", "os/exec"},
		{"reconcile", "io/fs"},
		{"reconcile", "net/http"},
		{"reconcile", "github.com/fsnotify/fsnotify"},
		{"reconcile", "github.com/mistifyio/go-zfs/v4"},
		{"reconcile", module + "/engine"},
		{"manifests", module + "/reconcile"},
		{"manifests", module + "/engine/zfs"},
		{"manifests/jailparam", module + "/manifests"},
		{"image", module + "/manifests"},
		{"metrics/httpapi", module + "/metrics"},
		{"engine/zfs", module + "/service"},
		{"engine", module + "/controller"},
		{"engine/jail/linuxns", module + "/cmd/zocker-reconcile"},
		{"controller", module + "/engine"},
		{"reconcile", module + "/service"},
		{"engine/zfs", module + "/internal/testenv"},
		{"service", module + "/manifests/manifeststest"},
		{"engine", "github.com/google/go-containerregistry/pkg/v1/remote"},
	}
	for _, b := range bad {
		caught := false
		for _, r := range rules {
			caught = caught || r.check(b.pkg, b.path) != ""
		}
		if !caught {
			t.Errorf("%s importing %s passes every rule", b.pkg, b.path)
		}
	}
	good := []struct{ pkg, path string }{
		{"reconcile", module + "/manifests"},
		{"reconcile", module + "/image"},
		{"manifests", module + "/image"},
		{"reconcile", "net/netip"},
		{"reconcile", "path/filepath"},
		{"controller", module + "/reconcile"},
		{"service", module + "/controller"},
		{"service", module + "/engine"},
		{"cmd/zocker-reconcile", module + "/service"},
		{"engine", module + "/reconcile"},
	}
	for _, g := range good {
		for _, r := range rules {
			if why := r.check(g.pkg, g.path); why != "" {
				t.Errorf("%s importing %s refused: %s", g.pkg, g.path, fmt.Sprint(why))
			}
		}
	}
}
