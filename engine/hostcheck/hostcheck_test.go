package hostcheck

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/engine/jail"
	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
	"github.com/zocker-reconcile/zocker-reconcile/manifests"
)

// script is a runner answering by the joined argv's prefix.
type script map[string]struct {
	out    string
	stderr string
}

func (s script) Run(_ context.Context, c runner.Cmd) ([]byte, error) {
	line := strings.Join(c.Argv, " ")
	best := ""
	for k := range s {
		if strings.HasPrefix(line, k) && len(k) > len(best) {
			best = k
		}
	}
	if best == "" {
		return nil, fmt.Errorf("unexpected command %q", line)
	}
	a := s[best]
	if a.stderr != "" {
		return nil, &runner.CommandError{Argv: c.Argv, Stderr: a.stderr, ExitCode: 1}
	}
	return []byte(a.out), nil
}

func host(s script) *Host {
	h := NewHost(s)
	h.HTTP = &http.Client{Timeout: 5 * time.Second}
	return h
}

func get(lines ...string) string { return strings.Join(lines, "\n") + "\n" }

func TestRootDataset(t *testing.T) {
	o := Options{Root: "tank/zocker", ZFS: "zfs"}
	poolOK := struct{ out, stderr string }{get("tank\ttype\tfilesystem", "tank\tavailable\t10737418240"), ""}
	cases := []struct {
		name   string
		root   struct{ out, stderr string }
		status Status
		want   string
	}{
		{"ours", struct{ out, stderr string }{get("tank/zocker\ttype\tfilesystem", "tank/zocker\tavailable\t5368709120",
			"tank/zocker\tzocker:managed\ttrue", "tank/zocker\tzocker:kind\troot",
			"tank/zocker/images\ttype\tfilesystem", "tank/zocker/images/abc\ttype\tfilesystem"), ""}, OK, "zocker-reconcile's root, 1 images"},
		{"missing", struct{ out, stderr string }{"", "cannot open 'tank/zocker': dataset does not exist"}, OK, "does not exist yet"},
		{"empty foreign", struct{ out, stderr string }{get("tank/zocker\ttype\tfilesystem", "tank/zocker\tzocker:managed\t-"), ""}, OK, "the service adopts it"},
		{"foreign", struct{ out, stderr string }{get("tank/zocker\ttype\tfilesystem", "tank/zocker/iocage\ttype\tfilesystem"), ""}, Fail, "not empty (tank/zocker/iocage)"},
		{"low space", struct{ out, stderr string }{get("tank/zocker\ttype\tfilesystem", "tank/zocker\tavailable\t1048576",
			"tank/zocker\tzocker:managed\ttrue", "tank/zocker\tzocker:kind\troot"), ""}, Warn, "only 0.0 GiB free"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := host(script{
				"zfs get -H -p -o name,property,value type,available,zocker:managed,zocker:kind tank":           poolOK,
				"zfs get -H -p -r -o name,property,value type,available,zocker:managed,zocker:kind tank/zocker": c.root,
			})
			r := RootDataset(context.Background(), o, h)
			if r.Status != c.status || !strings.Contains(r.Detail, c.want) {
				t.Errorf("got %s %q, want %s containing %q", r.Status, r.Detail, c.status, c.want)
			}
		})
	}
	h := host(script{"zfs get": {"", "cannot open 'tank': dataset does not exist"}})
	if r := RootDataset(context.Background(), o, h); r.Status != Fail || !strings.Contains(r.Fix, "pool") {
		t.Errorf("missing pool: %+v", r)
	}
}

// TestManifestDirStrictModes: a world-writable manifest directory fails
// with the fix; a clean one passes; invalid files only warn.
func TestManifestDirStrictModes(t *testing.T) {
	parent := t.TempDir()
	if err := os.Chmod(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(parent, "zocker.d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if r := ManifestDir(Options{Manifests: dir}); r.Status != OK {
		t.Errorf("clean dir: %+v", r)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	r := ManifestDir(Options{Manifests: dir})
	if r.Status != Fail || !strings.Contains(r.Detail, "writable by group or others") || !strings.Contains(r.Fix, "chmod go-w") {
		t.Errorf("world-writable dir: %+v", r)
	}
	if r := ManifestDir(Options{Manifests: dir, InsecureManifests: true}); r.Status != OK {
		t.Errorf("--insecure-manifests: %+v", r)
	}
	os.Chmod(dir, 0o755)
	if err := os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("apiVersion: zocker/v1\nkind: Nope\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := ManifestDir(Options{Manifests: dir}); r.Status != Warn || !strings.Contains(r.Fix, "validate") {
		t.Errorf("invalid file: %+v", r)
	}
	if r := ManifestDir(Options{Manifests: filepath.Join(parent, "none")}); r.Status != Warn {
		t.Errorf("missing dir: %+v", r)
	}
}

func TestImageSources(t *testing.T) {
	parent := t.TempDir()
	os.Chmod(parent, 0o755)
	dir := filepath.Join(parent, "m")
	os.Mkdir(dir, 0o755)
	tarball := filepath.Join(parent, "base.tar")
	if err := os.WriteFile(tarball, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing.txz" {
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "i.yaml"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	img := func(name, spec string) string {
		return "---\napiVersion: zocker/v1\nkind: Image\nmetadata: {name: " + name + "}\nspec:\n  " + spec + "\n"
	}
	h := host(script{})
	write(img("a", "tarball: {path: "+tarball+"}") + img("b", "build: {context: "+parent+"}"))
	if r := ImageSources(context.Background(), Options{Manifests: dir}, h); r.Status != OK || !strings.Contains(r.Detail, "2 images") {
		t.Errorf("reachable: %+v", r)
	}
	write(img("a", "tarball: {path: "+filepath.Join(parent, "nope.txz")+"}") +
		img("c", "pull: {repository: 'file:///nonexistent/zocker-repo'}"))
	r := ImageSources(context.Background(), Options{Manifests: dir}, h)
	if r.Status != Fail || !strings.Contains(r.Detail, "Image/a") || !strings.Contains(r.Detail, "Image/c") {
		t.Errorf("unreachable: %+v", r)
	}
	// https is required by validation; the check itself is a HEAD request.
	if err := imageSource(context.Background(), imageSpecURL(srv.URL+"/missing.txz"), h); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("404 URL: %v", err)
	}
	if err := imageSource(context.Background(), imageSpecURL(srv.URL+"/base.txz"), h); err != nil {
		t.Errorf("200 URL: %v", err)
	}
}

func TestListenAddress(t *testing.T) {
	h := host(script{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	if r := ListenAddress(addr, h); r.Status != OK || r.Detail != "free" {
		t.Errorf("free: %+v", r)
	}
	ours := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "zocker-reconcile\n\n/metrics ...")
	}))
	defer ours.Close()
	if r := ListenAddress(strings.TrimPrefix(ours.URL, "http://"), h); r.Status != OK || !strings.Contains(r.Detail, "running zocker-reconcile") {
		t.Errorf("ours: %+v", r)
	}
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "nginx") }))
	defer other.Close()
	if r := ListenAddress(strings.TrimPrefix(other.URL, "http://"), h); r.Status != Fail || !strings.Contains(r.Fix, "--listen") {
		t.Errorf("someone else's: %+v", r)
	}
}

func TestLoopbackPool(t *testing.T) {
	pool := netip.MustParsePrefix("127.0.1.0/24")
	h := host(script{})
	h.IfaceAddrs = func(iface string) ([]netip.Addr, error) {
		if iface != "lo0" {
			return nil, errors.New("no such interface")
		}
		return []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.1.2"), netip.MustParseAddr("127.0.1.9")}, nil
	}
	jails := []jail.Info{{Name: "web", Addrs: []string{"127.0.1.2"}}}
	r := LoopbackPool("lo0", pool, jails, h)
	if r.Status != Warn || !strings.Contains(r.Detail, "127.0.1.9") || strings.Contains(r.Detail, "127.0.1.2,") {
		t.Errorf("foreign address: %+v", r)
	}
	jails = append(jails, jail.Info{Name: "db", Addrs: []string{"127.0.1.9"}})
	if r := LoopbackPool("lo0", pool, jails, h); r.Status != OK {
		t.Errorf("all ours: %+v", r)
	}
	if r := LoopbackPool("lo1", pool, nil, h); r.Status != Fail || !strings.Contains(r.Fix, "cloned_interfaces") {
		t.Errorf("missing interface: %+v", r)
	}
}

func TestFreeBSDChecks(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name string
		s    script
		f    func(context.Context, *Host) Result
		st   Status
		want string
	}{
		{"release", script{"/usr/bin/uname -sr": {"FreeBSD 14.3-RELEASE-p2\n", ""}}, FreeBSDRelease, OK, "FreeBSD 14.3"},
		{"old release", script{"/usr/bin/uname -sr": {"FreeBSD 12.4-RELEASE\n", ""}}, FreeBSDRelease, Warn, "older"},
		{"not freebsd", script{"/usr/bin/uname -sr": {"Linux 6.1.0\n", ""}}, FreeBSDRelease, Fail, "Linux"},
		{"racct on", script{"/sbin/sysctl -n kern.racct.enable": {"1\n", ""}}, Racct, OK, "is 1"},
		{"racct off", script{"/sbin/sysctl -n kern.racct.enable": {"0\n", ""}}, Racct, Warn, "not enforced"},
		{"no racct", script{"/sbin/sysctl -n": {"", "sysctl: unknown oid 'kern.racct.enable'"}}, Racct, Warn, "no RACCT"},
		{"devfs 4", script{"/sbin/devfs rule -s 4 show": {"100 hide\n200 path null unhide\n", ""}}, DevfsRuleset, OK, "2 rules"},
		{"devfs empty", script{"/sbin/devfs rule -s 4 show": {"", ""}}, DevfsRuleset, Fail, "empty or not loaded"},
		{"devfs error", script{"/sbin/devfs": {"", "devfs: ruleset 4 does not exist"}}, DevfsRuleset, Fail, "does not exist"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := c.f(ctx, host(c.s))
			if r.Status != c.st || !strings.Contains(r.Detail, c.want) {
				t.Errorf("got %s %q, want %s containing %q", r.Status, r.Detail, c.st, c.want)
			}
			if r.Status != OK && r.Fix == "" && c.st != Fail {
				t.Errorf("%s without a fix", r.Status)
			}
		})
	}
	// The rc.d script: missing, installed but disabled, enabled.
	h := host(script{"/usr/sbin/sysrc -n zocker_reconcile_enable": {"NO\n", ""}})
	h.Stat = func(string) (fs.FileInfo, error) { return nil, fs.ErrNotExist }
	if r := RCService(ctx, h); r.Status != Warn || !strings.Contains(r.Fix, "install") {
		t.Errorf("missing script: %+v", r)
	}
	exe := filepath.Join(t.TempDir(), "zocker_reconcile")
	os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o555)
	h.Stat = func(string) (fs.FileInfo, error) { return os.Stat(exe) }
	if r := RCService(ctx, h); r.Status != Warn || !strings.Contains(r.Fix, "sysrc zocker_reconcile_enable=YES") {
		t.Errorf("disabled: %+v", r)
	}
	h.Run = script{"/usr/sbin/sysrc -n zocker_reconcile_enable": {"YES\n", ""}}
	if r := RCService(ctx, h); r.Status != OK {
		t.Errorf("enabled: %+v", r)
	}
	// Tools: one missing.
	h.Stat = func(p string) (fs.FileInfo, error) {
		if p == jail.RctlPath {
			return nil, fs.ErrNotExist
		}
		return os.Stat(exe)
	}
	if r := Tools(FreeBSDTools, h); r.Status != Fail || !strings.Contains(r.Detail, jail.RctlPath) {
		t.Errorf("missing tool: %+v", r)
	}
}

func TestLinuxChecks(t *testing.T) {
	ctx := context.Background()
	h := host(script{})
	procs := map[string]string{"/proc/1/comm": "init\n", "/proc/77/comm": "zfs-fuse\n"}
	h.Glob = func(string) ([]string, error) {
		var out []string
		for p := range procs {
			out = append(out, p)
		}
		return out, nil
	}
	h.ReadFile = func(p string) ([]byte, error) { return []byte(procs[p]), nil }
	if r := ZFSFuse(h); r.Status != OK || !strings.Contains(r.Detail, "pid 77") {
		t.Errorf("running: %+v", r)
	}
	delete(procs, "/proc/77/comm")
	if r := ZFSFuse(h); r.Status != Fail || !strings.Contains(r.Fix, "substrate.sh") {
		t.Errorf("stopped: %+v", r)
	}
	o := Options{Root: "zt/zocker", ZFS: "zfs"}
	h.Run = script{"zfs list -H -p": {"", "invalid option 'p'\nusage:\n\tlist [-rH]"}}
	if r := Adapter(ctx, o, h); r.Status != Fail || r.Detail != "zfs list -p fails: invalid option 'p'" {
		t.Errorf("no adapter: %+v", r)
	}
	h.Run = runFunc(func(ctx context.Context, c runner.Cmd) ([]byte, error) {
		return nil, &runner.CommandError{Argv: c.Argv, Err: fmt.Errorf("%w (after 2m0s)", context.DeadlineExceeded)}
	})
	if r := Adapter(ctx, o, h); r.Status != Fail || !strings.Contains(r.Fix, "hung") {
		t.Errorf("hung zfs: %+v", r)
	}
	h.Run = script{"zfs list -H -p": {"zt\n", ""}}
	if r := Adapter(ctx, o, h); r.Status != OK {
		t.Errorf("adapter: %+v", r)
	}
	h.Run = script{"unshare": {"", "unshare: unshare failed: Operation not permitted"}}
	if r := Namespaces(ctx, h); r.Status != Fail || !strings.Contains(r.Detail, "Operation not permitted") {
		t.Errorf("no namespaces: %+v", r)
	}
	if r := Cgroups(false, "no cgroup controller for memory"); r.Status != Warn {
		t.Errorf("cgroups: %+v", r)
	}
}

func TestFormat(t *testing.T) {
	var b strings.Builder
	Format(&b, []Result{{Check: "a", Status: OK, Detail: "fine", Fix: "never shown"}, {Check: "b", Status: Fail, Detail: "broken", Fix: "mend it"}})
	want := "ok   a: fine\nfail b: broken\n     fix: mend it\n"
	if b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
	if !Failed([]Result{{Status: Warn}, {Status: Fail}}) || Failed([]Result{{Status: Warn}}) {
		t.Error("Failed")
	}
}

func imageSpecURL(u string) manifests.ImageSpec {
	return manifests.ImageSpec{Tarball: &manifests.TarballSource{URL: u}}
}

type runFunc func(ctx context.Context, c runner.Cmd) ([]byte, error)

func (f runFunc) Run(ctx context.Context, c runner.Cmd) ([]byte, error) { return f(ctx, c) }

func TestRegistryAddr(t *testing.T) {
	for ref, want := range map[string]string{
		"ghcr.io/freebsd/runtime:14.3":  "ghcr.io:443",
		"127.0.0.1:5000/busybox:latest": "127.0.0.1:5000",
		"localhost/x:1":                 "localhost:443",
		"library/alpine:3":              "registry-1.docker.io:443",
		"alpine":                        "registry-1.docker.io:443",
	} {
		if got := registryAddr(ref, false); got != want {
			t.Errorf("registryAddr(%q) = %q, want %q", ref, got, want)
		}
	}
	if got := registryAddr("example.org/x", true); got != "example.org:80" {
		t.Errorf("insecure: %q", got)
	}
}
