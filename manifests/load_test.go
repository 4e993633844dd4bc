package manifests

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/zocker-reconcile/zocker-reconcile/internal/testenv"
)

// write creates files (relative name -> content) under dir with mode 0644.
func write(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// tempRoot is a manifest directory that passes the permission checks.
func tempRoot(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "zocker.d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

const webYAML = `apiVersion: zocker/v1
kind: Container
metadata: {name: %s}
spec: {image: base}
`

func container(name string) string { return strings.Replace(webYAML, "%s", name, 1) }

// errorsOf returns the errors of a set as strings, without its warnings.
func errorsOf(set *Set) []string {
	var out []string
	for _, p := range set.Problems {
		if p.IsError() {
			out = append(out, p.String())
		}
	}
	return out
}

func TestLoadValid(t *testing.T) {
	set, err := Load("testdata/valid", LoadOptions{Insecure: true, NumCPU: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range set.Problems {
		t.Errorf("unexpected problem: %s", p)
	}
	if got, want := len(set.Images)+len(set.Containers)+len(set.Volumes), 8; got != want {
		t.Fatalf("got %d objects, want %d", got, want)
	}
	dir, _ := filepath.Abs("testdata/valid")
	web := set.Containers["web"]
	if web == nil {
		t.Fatal("Container/web missing")
	}
	if got := web.Spec.Volumes[2].HostPath; got != filepath.Join(dir, "apps/web/site") {
		t.Errorf("relative hostPath resolved to %s", got)
	}
	if got := set.Images["apache"].Spec.Build.Context; got != filepath.Join(dir, "apps/web") {
		t.Errorf("build.context resolved to %s", got)
	}
	if got := set.Images["base"].Spec.Tarball.Path; got != filepath.Join(dir, "base.txz") {
		t.Errorf("tarball.path resolved to %s", got)
	}
	if got := web.Spec.Healthcheck; got.Timeout != "5s" || got.Retries != 3 || got.Interval != "10s" {
		t.Errorf("healthcheck defaults: %+v", got)
	}
	if got := set.Containers["db"].Spec.Command; got.Shell == "" || got.Argv != nil {
		t.Errorf("string command: %+v", got)
	}
	if got := web.Spec.Command.Args(); !reflect.DeepEqual(got, []string{"/usr/local/sbin/httpd", "-D", "FOREGROUND"}) {
		t.Errorf("list command: %q", got)
	}
	src := set.Sources["Container/web"]
	if src.Rel != filepath.Join("apps", "web", "web.yml") || src.Line != 8 || !filepath.IsAbs(src.File) {
		t.Errorf("source of Container/web: %+v", src)
	}
	if !strings.HasPrefix(set.Revision, "sha256:") {
		t.Errorf("revision %q is not a content digest", set.Revision)
	}
	again, _ := Load("testdata/valid", LoadOptions{Insecure: true, NumCPU: 2})
	if again.Revision != set.Revision {
		t.Errorf("revision not stable: %s then %s", set.Revision, again.Revision)
	}
}

func TestDefaults(t *testing.T) {
	c := &Container{Metadata: ObjectMeta{Name: "web"}, Spec: ContainerSpec{Healthcheck: &Healthcheck{}}}
	Default(c, "/m")
	want := ContainerSpec{Hostname: "web", Network: Network{Mode: NetLoopback}, RestartPolicy: RestartAlways,
		State: StateRunning, StopSignal: "SIGTERM", StopTimeout: "10s",
		Healthcheck: &Healthcheck{Interval: "30s", Timeout: "5s", Retries: 3}}
	if !reflect.DeepEqual(c.Spec, want) {
		t.Errorf("container defaults:\n got %+v\nwant %+v", c.Spec, want)
	}
	v := &Volume{}
	Default(v, "/m")
	if v.Spec.ReclaimPolicy != ReclaimRetain {
		t.Errorf("reclaimPolicy default %q", v.Spec.ReclaimPolicy)
	}
	i := &Image{Metadata: ObjectMeta{Name: "apache"}, Spec: ImageSpec{Build: &BuildSource{Context: "../ctx"}}}
	Default(i, "/m/apps")
	if i.Spec.Build.File != "Zockerfile" || i.Spec.Build.Context != "/m/ctx" {
		t.Errorf("build defaults: %+v", i.Spec.Build)
	}
	p := &Image{Metadata: ObjectMeta{Name: "apache"}, Spec: ImageSpec{Pull: &PullSource{Repository: "file:///r"}}}
	Default(p, "/m")
	if p.Spec.Pull.Tag != "apache" {
		t.Errorf("pull.tag default %q", p.Spec.Pull.Tag)
	}
	// Values given are kept.
	c = &Container{Metadata: ObjectMeta{Name: "web"}, Spec: ContainerSpec{Hostname: "www", StopSignal: "SIGINT", State: StateStopped}}
	Default(c, "/m")
	if c.Spec.Hostname != "www" || c.Spec.StopSignal != "SIGINT" || c.Spec.State != StateStopped {
		t.Errorf("given values overwritten: %+v", c.Spec)
	}
}

func TestBadFileIsolated(t *testing.T) {
	root := tempRoot(t)
	write(t, root, map[string]string{
		"a.yaml":        container("a"),
		"b/broken.yaml": "apiVersion: zocker/v1\nkind: Container\nmetadata: {name: b}\nspec: {image: base, bogus: 1}\n---\n" + container("b2"),
		"c.yml":         "key: [unclosed\n",
		"d.yaml":        container("d"),
	})
	set, err := Load(root, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range set.Containers {
		names = append(names, n)
	}
	if len(names) != 2 || set.Containers["a"] == nil || set.Containers["d"] == nil {
		t.Errorf("containers loaded: %v, want a and d", names)
	}
	failed := map[string][]string{}
	for _, f := range set.Files {
		if f.Failed {
			failed[f.Rel] = f.Objects
		}
	}
	want := map[string][]string{"b/broken.yaml": {"Container/b", "Container/b2"}, "c.yml": nil}
	if !reflect.DeepEqual(failed, want) {
		t.Errorf("failed files %v, want %v", failed, want)
	}
	errs := errorsOf(set)
	if len(errs) != 2 {
		t.Fatalf("problems: %v", set.Problems)
	}
	if got := errs[0]; got != filepath.Join(root, "b/broken.yaml")+":4: Container/b: spec.bogus: unknown field" {
		t.Errorf("first problem %q", got)
	}
}

func TestSkippedNames(t *testing.T) {
	root := tempRoot(t)
	garbage := "not: [yaml\n"
	write(t, root, map[string]string{
		"ok.yaml": container("ok"), ".hidden.yaml": garbage, ".git/config.yaml": garbage, "web.yaml~": garbage,
		".web.yaml.swp": garbage, "web.yaml.swp": garbage, "#web.yaml#": garbage, "old.yaml.bak": garbage,
		"new.tmp": garbage, "README.md": garbage, "sub/deeper/app.yml": container("deep"),
	})
	set, err := Load(root, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(errorsOf(set)) != 0 || len(set.Files) != 2 || set.Containers["deep"] == nil {
		t.Errorf("files %+v problems %v", set.Files, set.Problems)
	}
}

func TestFileSizeCap(t *testing.T) {
	root := tempRoot(t)
	write(t, root, map[string]string{"big.yaml": container("big") + "# " + strings.Repeat("x", MaxFileSize) + "\n", "ok.yaml": container("ok")})
	set, err := Load(root, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if errs := errorsOf(set); len(errs) != 1 || !strings.Contains(errs[0], "1 MiB") || set.Containers["ok"] == nil {
		t.Errorf("problems %v", set.Problems)
	}
}

func TestMissingRoot(t *testing.T) {
	set, err := Load(filepath.Join(t.TempDir(), "nope"), LoadOptions{})
	if err != nil || !set.Missing {
		t.Fatalf("Load of a missing root: %+v, %v", set, err)
	}
	empty := tempRoot(t)
	set, err = Load(empty, LoadOptions{})
	if err != nil || set.Missing || len(set.Files) != 0 {
		t.Fatalf("Load of an empty root: %+v, %v", set, err)
	}
}

func TestPermissions(t *testing.T) {
	testenv.RequireRoot(t) // to chown files to another user
	t.Run("group-writable file", func(t *testing.T) {
		root := tempRoot(t)
		write(t, root, map[string]string{"a.yaml": container("a"), "b.yaml": container("b")})
		os.Chmod(filepath.Join(root, "a.yaml"), 0o664)
		set, err := Load(root, LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want := filepath.Join(root, "a.yaml") + ": insecure file: writable by group or others, who could then run anything as root (fix: chmod go-w " + filepath.Join(root, "a.yaml") + ", or --insecure-manifests)"
		if errs := errorsOf(set); len(errs) != 1 || errs[0] != want || set.Containers["a"] != nil || set.Containers["b"] == nil {
			t.Errorf("problems %v", set.Problems)
		}
		set, err = Load(root, LoadOptions{Insecure: true})
		if err != nil || len(errorsOf(set)) != 0 || set.Containers["a"] == nil {
			t.Errorf("insecure override: %v %v", set.Problems, err)
		}
	})
	t.Run("foreign owner and writable subdirectory", func(t *testing.T) {
		root := tempRoot(t)
		write(t, root, map[string]string{"a.yaml": container("a"), "sub/b.yaml": container("b"), "c.yaml": container("c")})
		os.Chown(filepath.Join(root, "a.yaml"), 4242, 4242)
		os.Chmod(filepath.Join(root, "sub"), 0o777)
		set, err := Load(root, LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got := errorsOf(set)
		want := []string{
			filepath.Join(root, "a.yaml") + ": insecure file: owned by uid 4242, neither root nor this service's user (fix: chown root " + filepath.Join(root, "a.yaml") + ", or --insecure-manifests)",
			filepath.Join(root, "sub") + ": insecure directory: writable by group or others, who could then run anything as root (fix: chmod go-w " + filepath.Join(root, "sub") + ", or --insecure-manifests)",
			filepath.Join(root, "sub/b.yaml") + ": not read: directory " + filepath.Join(root, "sub") + " is not secure",
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if len(set.Containers) != 1 || set.Containers["c"] == nil {
			t.Errorf("containers %v", set.Containers)
		}
		for _, f := range set.Files {
			if f.Rel == "sub/b.yaml" && !f.Failed {
				t.Errorf("file under an insecure directory not marked failed")
			}
		}
		set, err = Load(root, LoadOptions{Insecure: true})
		if err != nil || len(errorsOf(set)) != 0 || len(set.Containers) != 3 {
			t.Errorf("insecure override: %v %v", set.Problems, err)
		}
	})
	t.Run("world-writable ancestor", func(t *testing.T) {
		parent := filepath.Join(t.TempDir(), "shared")
		os.Mkdir(parent, 0o755)
		os.Chmod(parent, 0o777)
		root := filepath.Join(parent, "zocker.d")
		os.Mkdir(root, 0o755)
		write(t, root, map[string]string{"a.yaml": container("a")})
		_, err := Load(root, LoadOptions{})
		if err == nil || !strings.Contains(err.Error(), "chmod go-w "+parent) {
			t.Errorf("Load under a world-writable parent: %v", err)
		}
		os.Chmod(parent, 0o777|os.ModeSticky)
		if _, err := Load(root, LoadOptions{}); err != nil {
			t.Errorf("sticky parent refused: %v", err)
		}
		os.Chmod(parent, 0o777)
		if _, err := Load(root, LoadOptions{Insecure: true}); err != nil {
			t.Errorf("insecure override: %v", err)
		}
	})
}

// TestSymlinkSwapRefused swaps a git-sync style link to another worktree
// in the middle of a load: the load must throw its set away (ErrRootChanging)
// rather than return the old revision or a mix; reading again is the
// caller's (controller.LoadSettled). Unswapped, the same link loads.
func TestSymlinkSwapRefused(t *testing.T) {
	base := t.TempDir()
	oldRev := strings.Repeat("a", 40)
	newRev := strings.Repeat("b", 40)
	for rev, prefix := range map[string]string{oldRev: "old", newRev: "new"} {
		write(t, filepath.Join(base, ".worktrees", rev), map[string]string{
			"1.yaml": container(prefix + "-one"), "2.yaml": container(prefix + "-two"),
		})
	}
	link := filepath.Join(base, "current")
	if err := os.Symlink(filepath.Join(".worktrees", oldRev), link); err != nil {
		t.Fatal(err)
	}
	files := 0
	opts := LoadOptions{afterFile: func(string) {
		files++
		if files == 1 {
			// What git-sync does: a new link renamed over the old one.
			tmp := filepath.Join(base, "tmp-link")
			if err := os.Symlink(filepath.Join(".worktrees", newRev), tmp); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, link); err != nil {
				t.Fatal(err)
			}
		}
	}}
	set, err := Load(link, opts)
	if !errors.Is(err, ErrRootChanging) || set != nil {
		t.Fatalf("Load across a swap: %v, %v; want ErrRootChanging and no set", set, err)
	}
	if !strings.Contains(err.Error(), oldRev) || !strings.Contains(err.Error(), newRev) {
		t.Errorf("error %q does not name both worktrees", err)
	}
	opts.afterFile = nil
	set, err = Load(link, opts)
	if err != nil {
		t.Fatal(err)
	}
	if set.Revision != newRev || len(set.Containers) != 2 || set.Containers["new-one"] == nil {
		t.Errorf("revision %q, containers %v", set.Revision, set.Containers)
	}
	if !strings.HasSuffix(set.Resolved, newRev) || set.Root != link {
		t.Errorf("root %s resolved %s", set.Root, set.Resolved)
	}
}

// TestSecurityLoadResolvedChecksTheLink: a caller that resolved the root
// itself (the service's controller) must still have the directory holding
// the link checked: whoever can write there can point the link at any
// directory, an empty one included (every container pruned). Before
// LoadResolved, serve passed the resolved path as the root and the link's
// directory was never looked at.
func TestSecurityLoadResolvedChecksTheLink(t *testing.T) {
	base := t.TempDir()
	rev := filepath.Join(base, "rev")
	write(t, rev, map[string]string{"1.yaml": container("web")})
	open := filepath.Join(base, "open")
	if err := os.Mkdir(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil { // past the umask
		t.Fatal(err)
	}
	link := filepath.Join(open, "current")
	if err := os.Symlink(rev, link); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadResolved(link, rev, LoadOptions{}); err == nil || !strings.Contains(err.Error(), "writable by group or others") {
		t.Fatalf("LoadResolved through a link in a world-writable directory: %v; want it refused", err)
	}
	if _, err := Load(link, LoadOptions{}); err == nil || !strings.Contains(err.Error(), "writable by group or others") {
		t.Fatalf("Load through the same link: %v; want it refused", err)
	}
	set, err := LoadResolved(rev, rev, LoadOptions{})
	if err != nil || set.Containers["web"] == nil {
		t.Fatalf("the worktree itself: %v, %v", set, err)
	}
	if set, err := LoadResolved(link, filepath.Join(base, "gone"), LoadOptions{Insecure: true}); err != nil || !set.Missing {
		t.Fatalf("a resolved directory gone: %v, %v; want a Missing set", set, err)
	}
}

func TestRevision(t *testing.T) {
	h := strings.Repeat("0123456789", 4)
	for in, want := range map[string]string{
		"/srv/git/.worktrees/" + h:          h,
		"/srv/git/.worktrees/" + h + "/app": h,
		"/srv/git/rev-" + h:                 h,
		"/usr/local/etc/zocker.d":           "",
		"/srv/" + h[:39]:                    "",
	} {
		if got := revision(in); got != want {
			t.Errorf("revision(%s) = %q, want %q", in, got, want)
		}
	}
}

func TestCrossFileWarnings(t *testing.T) {
	root := tempRoot(t)
	write(t, root, map[string]string{"web.yaml": `apiVersion: zocker/v1
kind: Container
metadata: {name: web}
spec:
  image: nginx
  volumes:
    - {volume: logs, path: /logs}
`})
	set, err := Load(root, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range set.Problems {
		got = append(got, strings.TrimPrefix(p.String(), root+"/"))
	}
	want := []string{
		"web.yaml:5: warning: Container/web: spec.image: image nginx is not declared in the manifests: it must exist locally",
		"web.yaml:7: warning: Container/web: spec.volumes[0].volume: volume logs is not declared in the manifests: it must exist locally",
	}
	if !reflect.DeepEqual(got, want) || set.Errors() != 0 || set.Containers["web"] == nil {
		t.Errorf("got %q", got)
	}
}

func TestDuplicatesBlocked(t *testing.T) {
	root := tempRoot(t)
	write(t, root, map[string]string{
		"a.yaml": container("web") + "---\n" + container("other"),
		"b.yaml": container("web"),
		"c.yaml": container("fine") + "---\napiVersion: zocker/v1\nkind: Volume\nmetadata: {name: web}\n",
	})
	set, err := Load(root, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(set.Blocked, []string{"Container/web"}) {
		t.Errorf("blocked %v", set.Blocked)
	}
	// Both files fail as a whole; the Volume of the same name is another kind.
	if len(set.Containers) != 1 || set.Containers["fine"] == nil || set.Volumes["web"] == nil {
		t.Errorf("containers %v volumes %v", set.Containers, set.Volumes)
	}
	if _, ok := set.Sources["Container/web"]; ok {
		t.Error("a duplicate has a source")
	}
	if n := len(errorsOf(set)); n != 2 {
		t.Errorf("%d errors, want one per declaration: %v", n, errorsOf(set))
	}
}

func TestLoadSingleFile(t *testing.T) {
	root := tempRoot(t)
	write(t, root, map[string]string{"a.yaml": container("a"), "b.yaml": container("b")})
	set, err := Load(filepath.Join(root, "a.yaml"), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	other, _ := Load(filepath.Join(root, "b.yaml"), LoadOptions{})
	if len(set.Containers) != 1 || set.Containers["a"] == nil || len(set.Files) != 1 || set.Revision == other.Revision {
		t.Errorf("single file: %+v / revision %s vs %s", set.Files, set.Revision, other.Revision)
	}
}

func TestLoadIgnoreFile(t *testing.T) {
	dir := t.TempDir()
	write := func(rel, content string) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(".zockerignore", "# not manifests\nprometheus/\nci-*.yml\n")
	write("prometheus/rules.yml", "groups: []\n")
	write("ci-pipeline.yml", "steps: []\n")
	write("vol.yaml", "apiVersion: zocker/v1\nkind: Volume\nmetadata: {name: data}\nspec: {}\n")
	set, err := Load(dir, LoadOptions{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Problems) != 0 || len(set.Files) != 1 || set.Volumes["data"] == nil {
		t.Fatalf("files %+v problems %+v", set.Files, set.Problems)
	}
	write(".zockerignore", "[\n")
	if _, err := Load(dir, LoadOptions{Insecure: true}); err == nil || !strings.Contains(err.Error(), "bad pattern") {
		t.Fatalf("bad pattern: %v", err)
	}
}

// TestSecurityL5ProblemFlood: one file with thousands of problems (review
// L5: aliasing gave 99,987) reports its first 50 and one more problem with
// the counts of the rest; the error count stays true and the file invalid.
func TestSecurityL5ProblemFlood(t *testing.T) {
	dir := t.TempDir()
	var vols []string
	for range 2000 {
		vols = append(vols, "{volume: x, path: rel}")
	}
	write(t, dir, map[string]string{
		"flood.yaml": "apiVersion: zocker/v1\nkind: Container\nmetadata: {name: web}\nspec:\n  image: base\n  command: [/bin/sh]\n  volumes: [" + strings.Join(vols, ", ") + "]\n",
		"ok.yaml":    container("fine"),
	})
	set, err := Load(dir, LoadOptions{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	var inFlood []Problem
	for _, p := range set.Problems {
		if strings.HasSuffix(p.File, "flood.yaml") {
			inFlood = append(inFlood, p)
		}
	}
	if len(inFlood) != maxProblemsPerFile+1 {
		t.Fatalf("%d problems listed for flood.yaml, want %d", len(inFlood), maxProblemsPerFile+1)
	}
	if got := set.Errors(); got != 2000 {
		t.Errorf("Errors() = %d, want the 2000 bad paths", got)
	}
	found := false
	for _, p := range inFlood {
		if p.HiddenErrors+p.HiddenWarnings > 0 {
			found = strings.Contains(p.Message, "more problems in this file are not shown")
		}
	}
	if !found {
		t.Errorf("no problem says how many were left out: %v", inFlood[len(inFlood)-1])
	}
	if set.Containers["web"] != nil || set.Containers["fine"] == nil {
		t.Errorf("containers %v: flood.yaml must be invalid, ok.yaml loaded", set.Containers)
	}
}
