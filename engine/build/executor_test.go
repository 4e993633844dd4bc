package build

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/engine/jail"
	"github.com/zocker-reconcile/zocker-reconcile/image"
	"github.com/zocker-reconcile/zocker-reconcile/internal/testenv"
)

func TestStepKeyID(t *testing.T) {
	base := stepKey{Parent: "p", Instruction: `RUN shell ["/bin/sh","-c","true"]`, Args: []string{"A=1", "B=2"}, Files: "f"}
	same := base
	same.Args = []string{"B=2", "A=1"} // order of ARGs does not matter
	if base.ID() != same.ID() {
		t.Fatal("same inputs gave different IDs")
	}
	for name, k := range map[string]stepKey{
		"parent":      {Parent: "q", Instruction: base.Instruction, Args: base.Args, Files: base.Files},
		"instruction": {Parent: "p", Instruction: `RUN shell ["/bin/sh","-c","false"]`, Args: base.Args, Files: base.Files},
		"arg value":   {Parent: "p", Instruction: base.Instruction, Args: []string{"A=1", "B=3"}, Files: base.Files},
		"files":       {Parent: "p", Instruction: base.Instruction, Args: base.Args, Files: "g"},
		"framing":     {Parent: "p\n", Instruction: base.Instruction[1:], Args: base.Args, Files: base.Files},
	} {
		if k.ID() == base.ID() {
			t.Errorf("changing the %s did not change the ID", name)
		}
	}
	if len(base.ID()) != 64 {
		t.Errorf("ID %q is not 64 hex digits", base.ID())
	}
}

const cacheFile = `FROM base
RUN echo one > one
ARG V
COPY page.html /www/
ENV GREETING="hello $V"
RUN echo "$V" > v
`

func TestCacheReuseAndInvalidation(t *testing.T) {
	requireRootForCopy(t)
	fx := newFixture(t)
	fx.write(t, "page.html", "<h1>hi</h1>\n")
	res1, out, err := fx.build(t, cacheFile, map[string]string{"V": "1"}, "app")
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	if res1.Steps != 6 || res1.Executed != 5 || res1.Cached != 0 {
		t.Fatalf("first build: %+v\n%s", res1, out)
	}
	if !strings.Contains(out, "Step 4/6 : COPY page.html /www/") || !strings.HasSuffix(out, "Successfully built "+image.Short(res1.ID)+" and tagged app\n") {
		t.Errorf("progress:\n%s", out)
	}

	// Nothing changed: every step cached, nothing run, same ID.
	runs := len(fx.driver.procs)
	res2, out, err := fx.build(t, "", map[string]string{"V": "1"}, "app")
	if err != nil {
		t.Fatal(err)
	}
	if res2.ID != res1.ID || res2.Executed != 0 || res2.Cached != 5 || len(fx.driver.procs) != runs {
		t.Fatalf("rebuild: %+v, %d commands run\n%s", res2, len(fx.driver.procs)-runs, out)
	}

	// An undeclared build arg is seen by no step.
	res, out, err := fx.build(t, "", map[string]string{"V": "1", "OTHER": "x"}, "")
	if err != nil || res.ID != res1.ID || res.Executed != 0 {
		t.Fatalf("unseen arg changed the build: %+v %v\n%s", res, err, out)
	}
	if !strings.Contains(out, "--build-arg OTHER was not consumed") {
		t.Errorf("no warning for the unused build arg:\n%s", out)
	}

	// Changing an ARG: steps before its declaration stay cached; ENV
	// (which expands it) and RUN (which sees it) are rebuilt, COPY is not.
	res, out, err = fx.build(t, "", map[string]string{"V": "2"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cachedFlags(out), []bool{true, true, true, false, false}; !reflect.DeepEqual(got, want) {
		t.Errorf("after changing V: cached %v, want %v\n%s", got, want, out)
	}
	if data, _ := os.ReadFile(filepath.Join(fx.store.imageDir(res.ID), "v")); string(data) != "2\n" {
		t.Errorf("RUN saw V=%q", data)
	}
	if fx.store.configs[res.ID].Env["GREETING"] != "hello 2" {
		t.Errorf("ENV not expanded: %v", fx.store.configs[res.ID].Env)
	}

	// Touching the copied file re-runs from the COPY on. The ARG just before
	// it has no image of its own (config-only steps make no dataset unless
	// last), so it is re-applied too: no command, no dataset.
	fx.write(t, "page.html", "<h1>changed</h1>\n")
	before := len(fx.driver.procs)
	_, out, err = fx.build(t, "", map[string]string{"V": "1"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if ran := len(fx.driver.procs) - before; ran != 1 {
		t.Errorf("%d RUN steps ran, want 1 (the one after the COPY)", ran)
	}
	if got, want := cachedFlags(out), []bool{true, false, false, false, false}; !reflect.DeepEqual(got, want) {
		t.Errorf("after changing page.html: cached %v, want %v\n%s", got, want, out)
	}

	// Changing an instruction re-runs it and what follows.
	_, out, err = fx.build(t, strings.Replace(cacheFile, "echo one", "echo One", 1), map[string]string{"V": "1"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cachedFlags(out), []bool{false, false, false, false, false}; !reflect.DeepEqual(got, want) {
		t.Errorf("after changing the first RUN: cached %v, want %v\n%s", got, want, out)
	}
	// Spacing is not part of the key.
	_, out, err = fx.build(t, strings.Replace(cacheFile, "RUN echo one > one", "RUN   echo one > one ", 1), map[string]string{"V": "1"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cachedFlags(out), []bool{true, true, true, true, true}; !reflect.DeepEqual(got, want) {
		t.Errorf("respacing the first RUN: cached %v, want %v\n%s", got, want, out)
	}
	if len(fx.store.tmpEntries(t)) != 0 || len(fx.driver.jails) != 0 {
		t.Errorf("leftovers: tmp %v, jails %v", fx.store.tmpEntries(t), fx.driver.jails)
	}
}

func TestNoCacheRunsEverything(t *testing.T) {
	fx := newFixture(t)
	res1, _, err := fx.build(t, "FROM base\nRUN echo x > x\nENV A=1\n", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	res, err := Build(t.Context(), Options{ContextDir: fx.ctxDir, NoCache: true, Output: &out, Store: fx.store, Driver: fx.driver})
	if err != nil {
		t.Fatal(err)
	}
	if res.Executed != 2 || res.ID != res1.ID || strings.Contains(out.String(), "cached") {
		t.Errorf("--no-cache: %+v\n%s", res, out.String())
	}
	if len(fx.store.tmpEntries(t)) != 0 {
		t.Errorf("leftovers in tmp: %v", fx.store.tmpEntries(t))
	}
}

func TestConfigSteps(t *testing.T) {
	fx := newFixture(t)
	res, out, err := fx.build(t, `FROM base
ENV PATH=/bin:/usr/bin APP=demo
USER www
WORKDIR /srv
WORKDIR app
LABEL org.example.team=web
EXPOSE 80 53/udp
VOLUME /data
ENTRYPOINT ["/bin/app"]
CMD --serve
NET inherit
RUN pwd > here; echo "$APP $NET" > env
`, nil, "demo")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	cfg := fx.store.configs[res.ID]
	want := map[string]any{
		"env":        map[string]string{"HOME": "/root", "PATH": "/bin:/usr/bin", "APP": "demo"},
		"user":       "www",
		"workdir":    "/srv/app",
		"labels":     map[string]string{"org.example.team": "web"},
		"ports":      []string{"80", "53/udp"},
		"volumes":    []string{"/data"},
		"entrypoint": []string{"/bin/app"},
		"cmd":        []string{"/bin/sh", "-c", "--serve"},
	}
	got := map[string]any{"env": cfg.Env, "user": cfg.User, "workdir": cfg.Workdir, "labels": cfg.Labels,
		"ports": cfg.ExposedPorts, "volumes": cfg.Volumes, "entrypoint": cfg.Entrypoint, "cmd": cfg.Cmd}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("config:\n got %v\nwant %v", got, want)
	}
	root := fx.store.imageDir(res.ID)
	if data, _ := os.ReadFile(filepath.Join(root, "srv/app/env")); string(data) != "demo inherit\n" {
		t.Errorf("RUN saw env and net %q", data)
	}
	p := fx.driver.procs[len(fx.driver.procs)-1]
	if p.User != "www" || p.Workdir != "/srv/app" {
		t.Errorf("RUN ran as %q in %q", p.User, p.Workdir)
	}
	if cfg.Parent == "" || fx.store.tags["demo"] != res.ID {
		t.Errorf("parent %q, tag %q", cfg.Parent, fx.store.tags["demo"])
	}
}

func TestConfigOnlyStepsMakeNoDataset(t *testing.T) {
	fx := newFixture(t)
	res, out, err := fx.build(t, "FROM base\nENV A=1\nUSER www\nLABEL a=b\nRUN echo $A > a\nENV B=2\nCMD x\n", nil, "")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	// One clone for the RUN, one to materialize the final CMD.
	if fx.store.works != 2 || res.Executed != 6 {
		t.Errorf("%d work datasets, %+v", fx.store.works, res)
	}
	cfg := fx.store.configs[res.ID]
	if cfg.Env["A"] != "1" || cfg.Env["B"] != "2" || cfg.User != "www" || cfg.Labels["a"] != "b" {
		t.Errorf("config %+v", cfg)
	}
	// The final image's parent is the RUN's image (the data it cloned).
	run := stepLines(out)[4]
	if !strings.HasPrefix(cfg.Parent, strings.Fields(run)[1]) {
		t.Errorf("parent %s, RUN step %q", cfg.Parent, run)
	}
	if data, _ := os.ReadFile(filepath.Join(fx.store.imageDir(res.ID), "a")); string(data) != "1\n" {
		t.Errorf("RUN saw A=%q", data)
	}
}

func TestEntrypointDropsBaseCmd(t *testing.T) {
	fx := newFixture(t)
	res, _, err := fx.build(t, "FROM base\nENTRYPOINT /bin/app\n", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if cfg := fx.store.configs[res.ID]; cfg.Cmd != nil || !reflect.DeepEqual(cfg.Entrypoint, []string{"/bin/sh", "-c", "/bin/app"}) {
		t.Errorf("config %+v", cfg)
	}
}

func TestHostFilesRemovedAtCommit(t *testing.T) {
	testenv.RequireFile(t, "/etc/resolv.conf", "the host's resolver configuration")
	fx := newFixture(t)
	res, out, err := fx.build(t, "FROM base\nRUN cat etc/resolv.conf > seen\n", nil, "")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	root := fx.store.imageDir(res.ID)
	if data, _ := os.ReadFile(filepath.Join(root, "seen")); len(data) == 0 {
		t.Error("RUN did not see the host's resolv.conf")
	}
	for _, f := range hostFiles {
		if _, err := os.Lstat(filepath.Join(root, f)); err == nil {
			t.Errorf("%s left in the image", f)
		}
	}
}

func TestHostFilesOfTheImageKept(t *testing.T) {
	testenv.RequireFile(t, "/etc/resolv.conf", "the host's resolver configuration")
	fx := newFixture(t)
	res, out, err := fx.build(t, "FROM base\nRUN echo 'nameserver 192.0.2.1' > etc/resolv.conf\n", nil, "")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	own := filepath.Join(fx.store.imageDir(res.ID), "etc/resolv.conf")
	if data, _ := os.ReadFile(own); string(data) != "nameserver 192.0.2.1\n" {
		t.Fatalf("the step's own resolv.conf: %q", data)
	}
	// A later RUN sees the host's file, and the image keeps its own after it.
	fx.write(t, "Zockerfile", "FROM base\nRUN echo 'nameserver 192.0.2.1' > etc/resolv.conf\nRUN cat etc/resolv.conf > seen\n")
	res, out, err = fx.build(t, "", nil, "")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	root := fx.store.imageDir(res.ID)
	host, _ := os.ReadFile("/etc/resolv.conf")
	if seen, _ := os.ReadFile(filepath.Join(root, "seen")); string(seen) != string(host) {
		t.Errorf("RUN saw %q, want the host's", seen)
	}
	if data, _ := os.ReadFile(filepath.Join(root, "etc/resolv.conf")); string(data) != "nameserver 192.0.2.1\n" {
		t.Errorf("the image's resolv.conf became %q", data)
	}
}

func TestFailedRunMovesNoTag(t *testing.T) {
	fx := newFixture(t)
	good, _, err := fx.build(t, "FROM base\nRUN echo ok > ok\n", nil, "app")
	if err != nil {
		t.Fatal(err)
	}
	_, out, err := fx.build(t, "FROM base\nRUN echo ok > ok\n\nRUN echo partial > p; exit 3\nRUN echo never\n", nil, "app")
	var se *StepError
	if !errors.As(err, &se) || se.ExitCode != 3 || se.Line != 4 {
		t.Fatalf("error %v (%#v)\n%s", err, se, out)
	}
	if err.Error() != "Zockerfile:4: RUN exited with code 3" {
		t.Errorf("message %q", err.Error())
	}
	if strings.Contains(out, "Step 4/4") || strings.Contains(out, "Successfully") {
		t.Errorf("the build went on after the failure:\n%s", out)
	}
	if fx.store.tags["app"] != good.ID || fx.store.tagged != 1 {
		t.Errorf("tag moved: %s (tagged %d times)", fx.store.tags["app"], fx.store.tagged)
	}
	if tmp := fx.store.tmpEntries(t); len(tmp) != 0 {
		t.Errorf("temporary datasets left: %v", tmp)
	}
	if len(fx.driver.jails) != 0 {
		t.Errorf("build jails left: %v", fx.driver.jails)
	}
}

func TestCopyRefusesEscapes(t *testing.T) {
	outside := t.TempDir()
	mustWrite(t, filepath.Join(outside, "secret"), "s3cret")
	for name, tc := range map[string]struct {
		setup func(fx *fixture)
		line  string
	}{
		"dotdot":        {line: "COPY ../secret /"},
		"dotdot inside": {line: "COPY sub/../../secret /", setup: func(fx *fixture) { fx.write(t, "sub/f", "x") }},
		"absolute":      {line: "COPY /etc/passwd /"},
		"symlink abs": {line: "COPY link /", setup: func(fx *fixture) {
			os.Symlink(filepath.Join(outside, "secret"), filepath.Join(fx.ctxDir, "link"))
		}},
		"symlink rel": {line: "COPY link /", setup: func(fx *fixture) {
			rel, _ := filepath.Rel(fx.ctxDir, filepath.Join(outside, "secret"))
			os.Symlink(rel, filepath.Join(fx.ctxDir, "link"))
		}},
		"dir symlink": {line: "COPY d/secret /", setup: func(fx *fixture) {
			os.Symlink("..", filepath.Join(fx.ctxDir, "d"))
		}},
		"wildcard through link": {line: "COPY d/* /", setup: func(fx *fixture) {
			os.Symlink(outside, filepath.Join(fx.ctxDir, "d"))
		}},
	} {
		t.Run(name, func(t *testing.T) {
			fx := newFixture(t)
			if tc.setup != nil {
				tc.setup(fx)
			}
			_, out, err := fx.build(t, "FROM base\n"+tc.line+"\n", nil, "x")
			if !errors.Is(err, ErrOutsideContext) {
				t.Fatalf("%s: error %v, want ErrOutsideContext\n%s", tc.line, err, out)
			}
			if !strings.HasPrefix(err.Error(), "Zockerfile:2: COPY") {
				t.Errorf("message %q does not name the line", err)
			}
			if _, ok := fx.store.tags["x"]; ok || len(fx.store.tmpEntries(t)) != 0 {
				t.Errorf("tagged or left temporary work")
			}
		})
	}
}

func TestCopySymlinkInsideContext(t *testing.T) {
	requireRootForCopy(t)
	fx := newFixture(t)
	fx.write(t, "real/a.txt", "A")
	if err := os.Symlink("real", filepath.Join(fx.ctxDir, "alias")); err != nil {
		t.Fatal(err)
	}
	res, out, err := fx.build(t, "FROM base\nCOPY alias/a.txt /a.txt\n", nil, "")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if data, _ := os.ReadFile(filepath.Join(fx.store.imageDir(res.ID), "a.txt")); string(data) != "A" {
		t.Errorf("copied %q", data)
	}
}

func TestCopyRulesWildcardsIgnoreChown(t *testing.T) {
	requireRootForCopy(t)
	fx := newFixture(t)
	fx.write(t, "a.txt", "a")
	fx.write(t, "b.txt", "b")
	fx.write(t, "c.md", "c")
	fx.write(t, "site/index.html", "index")
	fx.write(t, "site/img/logo.png", "png")
	fx.write(t, "site/secret.key", "key")
	fx.write(t, "site/cache/x", "x")
	fx.write(t, "single", "one")
	fx.write(t, IgnoreFile, "# keys stay out\n*/*.key\nsite/cache\n")
	if err := os.Chmod(filepath.Join(fx.ctxDir, "single"), 0o750); err != nil {
		t.Fatal(err)
	}
	res, out, err := fx.build(t, `FROM base
COPY *.txt /txt/
COPY site /srv/www
COPY single /opt/renamed
COPY --chown=www:staff single /owned/
WORKDIR /w
COPY single rel
`, nil, "")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	root := fx.store.imageDir(res.ID)
	for _, p := range []string{"txt/a.txt", "txt/b.txt", "srv/www/index.html", "srv/www/img/logo.png", "opt/renamed", "owned/single", "w/rel"} {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Errorf("missing %s: %v", p, err)
		}
	}
	for _, p := range []string{"txt/c.md", "srv/www/secret.key", "srv/www/cache", "srv/www/site"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
			t.Errorf("%s should not have been copied", p)
		}
	}
	owner := func(p string) (uint32, uint32, os.FileMode) {
		fi, err := os.Stat(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		return st.Uid, st.Gid, fi.Mode().Perm()
	}
	if u, g, m := owner("opt/renamed"); u != 0 || g != 0 || m != 0o750 {
		t.Errorf("opt/renamed: %d:%d %o, want 0:0 750", u, g, m)
	}
	if u, g, _ := owner("owned/single"); u != 80 || g != 20 {
		t.Errorf("--chown=www:staff gave %d:%d", u, g)
	}

	// An ignored file does not change the step: all cached.
	fx.write(t, "site/secret.key", "other key")
	fx.write(t, "c.md", "changed")
	res2, out, err := fx.build(t, "", nil, "")
	if err != nil || res2.ID != res.ID || res2.Executed != 0 {
		t.Errorf("changing ignored or unused files rebuilt: %+v %v\n%s", res2, err, out)
	}
}

func TestCopyUnknownOwnerFails(t *testing.T) {
	requireRootForCopy(t)
	fx := newFixture(t)
	fx.write(t, "f", "x")
	_, _, err := fx.build(t, "FROM base\nCOPY --chown=nobody f /f\n", nil, "")
	if err == nil || !strings.Contains(err.Error(), `Zockerfile:2: COPY: --chown nobody: no user "nobody"`) {
		t.Fatalf("error %v", err)
	}
	if len(fx.store.tmpEntries(t)) != 0 {
		t.Error("temporary work left")
	}
}

func TestCopyMissingSource(t *testing.T) {
	fx := newFixture(t)
	_, _, err := fx.build(t, "FROM base\nCOPY nothing*.txt /\n", nil, "")
	if err == nil || !strings.Contains(err.Error(), "Zockerfile:2: COPY") || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("error %v", err)
	}
}

func TestFromErrors(t *testing.T) {
	fx := newFixture(t)
	if _, _, err := fx.build(t, "FROM missing\n", nil, ""); err == nil || !strings.HasPrefix(err.Error(), "Zockerfile:1: FROM: base image missing") {
		t.Errorf("unknown base: %v", err)
	}
	if _, _, err := fx.build(t, "FROM scratch\n", nil, ""); err == nil || !strings.Contains(err.Error(), "nothing to build") {
		t.Errorf("scratch alone: %v", err)
	}
	res, _, err := fx.build(t, "ARG BASE=base\nFROM $BASE\n", nil, "")
	if err != nil || res.ID != fx.base {
		t.Errorf("FROM $BASE: %v %+v", err, res)
	}
	res, _, err = fx.build(t, "FROM scratch\nENV A=1\n", nil, "")
	if err != nil || fx.store.configs[res.ID].Parent != "" {
		t.Errorf("FROM scratch: %v", err)
	}
}

func TestInputsHash(t *testing.T) {
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "Zockerfile"), "FROM base\nCOPY . /\n")
	mustWrite(t, filepath.Join(dir, "a"), "a")
	mustWrite(t, filepath.Join(dir, "logs/x.log"), "x")
	mustWrite(t, filepath.Join(dir, IgnoreFile), "logs\n")
	h := func(args map[string]string, base string) string {
		t.Helper()
		s, err := InputsHash(dir, "", args, base)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	h0 := h(nil, "b1")
	if h(nil, "b1") != h0 {
		t.Fatal("not stable")
	}
	mustWrite(t, filepath.Join(dir, "logs/x.log"), "more")
	if h(nil, "b1") != h0 {
		t.Error("an ignored file changed the hash")
	}
	for name, got := range map[string]string{
		"base": h(nil, "b2"),
		"args": h(map[string]string{"A": "1"}, "b1"),
	} {
		if got == h0 {
			t.Errorf("changing the %s did not change the hash", name)
		}
	}
	// Same size, later mtime: the stat cache must not hide the change.
	mustWrite(t, filepath.Join(dir, "a"), "b")
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(filepath.Join(dir, "a"), old, old); err != nil {
		t.Fatal(err)
	}
	h1 := h(nil, "b1")
	if h1 == h0 {
		t.Error("changing a context file did not change the hash")
	}
	mustWrite(t, filepath.Join(dir, "Zockerfile"), "FROM base\nCOPY . /srv\n")
	if h(nil, "b1") == h1 {
		t.Error("changing the Zockerfile did not change the hash")
	}
	if _, err := InputsHash(filepath.Join(dir, "missing"), "", nil, ""); err == nil {
		t.Error("a missing context gave no error")
	}
}

func TestDemoZockerfileUsesEveryDemoInstruction(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "..", "examples", "demo", "hello", "Zockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zf, err := Parse("Zockerfile", f)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, in := range zf.Instructions {
		seen[in.Keyword] = true
	}
	for _, kw := range []string{From, Run, Copy, Env, User, Workdir, Cmd} {
		if !seen[kw] {
			t.Errorf("the demo Zockerfile has no %s", kw)
		}
	}
}

// BenchmarkInputsHashDemo is what the reconciler pays per resync for the
// demo's context once its files' digests are in the stat cache.
func BenchmarkInputsHashDemo(b *testing.B) {
	dir := filepath.Join("..", "..", "examples", "demo", "hello")
	for i := 0; i < b.N; i++ {
		if _, err := InputsHash(dir, "", nil, "base"); err != nil {
			b.Fatal(err)
		}
	}
}

// TestRemoveLeftoverJails; also the L11 regression: a foreign jail named
// zbuild-* whose root is not below ROOT/tmp is left alone (67d2aef removed
// every zbuild-* jail).
func TestRemoveLeftoverJails(t *testing.T) {
	d := newFakeDriver()
	tmp := t.TempDir()
	for _, n := range []string{"zbuild-0a1b2c3d", "web", "zbuild-ffff0000"} {
		if err := d.Create(t.Context(), jail.Spec{Name: n, Root: filepath.Join(tmp, n)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Create(t.Context(), jail.Spec{Name: "zbuild-foreign", Root: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	removed, err := RemoveLeftoverJails(t.Context(), d, tmp)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(removed, []string{"zbuild-0a1b2c3d", "zbuild-ffff0000"}) {
		t.Errorf("removed %v", removed)
	}
	if left, _ := d.List(t.Context()); len(left) != 2 || left[0].Name != "web" || left[1].Name != "zbuild-foreign" {
		t.Errorf("left %v", left)
	}
}

func TestCopyRefusesSpecialFiles(t *testing.T) {
	requireRootForCopy(t)
	fx := newFixture(t)
	if err := syscall.Mkfifo(filepath.Join(fx.ctxDir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	fx.write(t, "Zockerfile", "FROM base\nCOPY fifo /\n")
	if _, err := InputsHash(fx.ctxDir, "", nil, ""); err != nil {
		t.Errorf("InputsHash failed on a fifo: %v", err)
	}
	if _, _, err := fx.build(t, "", nil, ""); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("COPY of a fifo: %v", err)
	}
	if len(fx.store.tmpEntries(t)) != 0 {
		t.Error("temporary work left")
	}
}
