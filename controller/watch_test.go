package controller

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
)

func mkdirAll(p string) error { return os.MkdirAll(p, 0o755) }

// swap points link at target atomically, as git-sync and `ln -sfn` + `mv` do.
func swap(t *testing.T, link, target string) {
	t.Helper()
	tmp := link + ".tmp-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if err := os.Symlink(target, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, link); err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

type watchRun struct {
	w      *Watcher
	notes  chan string
	events atomic.Int32
}

func startWatcher(t *testing.T, root string) *watchRun {
	t.Helper()
	wr := &watchRun{notes: make(chan string, 100)}
	wr.w = &Watcher{
		Root:     root,
		Debounce: 100 * time.Millisecond,
		OnEvent:  func(string) { wr.events.Add(1) },
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if err := wr.w.start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); wr.w.loop(ctx, func(r string) { wr.notes <- r }) }()
	t.Cleanup(func() { cancel(); <-done })
	return wr
}

// quiet asserts no trigger arrives for d.
func (wr *watchRun) quiet(t *testing.T, d time.Duration, what string) {
	t.Helper()
	select {
	case r := <-wr.notes:
		t.Fatalf("unexpected trigger %q after %s", r, what)
	case <-time.After(d):
	}
}

func (wr *watchRun) one(t *testing.T, what string) {
	t.Helper()
	select {
	case r := <-wr.notes:
		if r != TriggerWatch {
			t.Fatalf("trigger %q after %s, want %q", r, what, TriggerWatch)
		}
	case <-time.After(3 * time.Second):
		t.Fatalf("no trigger after %s", what)
	}
}

func TestWatcherBurstCoalesces(t *testing.T) {
	root := t.TempDir()
	wr := startWatcher(t, root)
	for i := range 100 {
		write(t, filepath.Join(root, "app-"+strconv.Itoa(i)+".yaml"), "kind: Container\n")
	}
	wr.one(t, "a burst of 100 files")
	wr.quiet(t, 500*time.Millisecond, "the burst was already reported")
	if n := wr.events.Load(); n < 100 {
		t.Fatalf("counted %d events, want at least 100", n)
	}
}

func TestWatcherIgnoresNonManifestNames(t *testing.T) {
	root := t.TempDir()
	wr := startWatcher(t, root)
	for _, n := range []string{".web.yaml.swp", "web.yaml~", "#web.yaml#", ".hidden.yaml", "web.yaml.bak", "x.tmp"} {
		write(t, filepath.Join(root, n), "x")
	}
	wr.quiet(t, 400*time.Millisecond, "editor droppings")
	write(t, filepath.Join(root, "web.yml"), "x")
	wr.one(t, "a .yml file")
}

// A build context kept beside the manifests is an input too: editing its
// Zockerfile (or a file it copies) must trigger a pass at once, not at the
// next resync.
func TestWatcherSeesBuildContextFiles(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "hello"), 0o755); err != nil {
		t.Fatal(err)
	}
	wr := startWatcher(t, root)
	write(t, filepath.Join(root, "hello", "Zockerfile"), "FROM busybox\n")
	wr.one(t, "a Zockerfile in a build context")
	write(t, filepath.Join(root, "hello", "index.html"), "<p>hi</p>")
	wr.one(t, "a file the build copies")
}

func TestWatcherNewSubdirectoriesAreWatched(t *testing.T) {
	root := t.TempDir()
	wr := startWatcher(t, root)
	sub := filepath.Join(root, "apps", "web")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	wr.one(t, "a new directory")
	write(t, filepath.Join(sub, "web.yaml"), "x")
	wr.one(t, "a file in the new nested directory")
	if err := os.Mkdir(filepath.Join(root, ".git"), 0o755); err != nil {
		t.Fatal(err)
	}
	wr.quiet(t, 300*time.Millisecond, "a dot-directory")
	write(t, filepath.Join(root, ".git", "x.yaml"), "x")
	wr.quiet(t, 300*time.Millisecond, "a file in .git")
}

func TestWatcherFollowsSymlinkSwap(t *testing.T) {
	base := t.TempDir()
	for _, d := range []string{"rev1", "rev2", "unrelated"} {
		if err := os.Mkdir(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	root := filepath.Join(base, "current")
	swap(t, root, "rev1")
	wr := startWatcher(t, root)
	write(t, filepath.Join(base, "rev1", "a.yaml"), "x")
	wr.one(t, "a file in the first target")
	write(t, filepath.Join(base, "unrelated", "a.yaml"), "x")
	wr.quiet(t, 300*time.Millisecond, "a sibling of the root changed")

	swap(t, root, "rev2")
	wr.one(t, "the symlink swap")
	write(t, filepath.Join(base, "rev2", "b.yaml"), "x")
	wr.one(t, "a file in the new target")
	write(t, filepath.Join(base, "rev1", "old.yaml"), "x")
	wr.quiet(t, 300*time.Millisecond, "a file in the old target (its watches must be dropped)")
}

func TestControllerReloadsFromSwappedRoot(t *testing.T) {
	base := t.TempDir()
	for _, d := range []string{"rev1", "rev2"} {
		if err := os.Mkdir(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	root := filepath.Join(base, "current")
	swap(t, root, "rev1")
	loads := make(chan string, 100)
	var watchEvents atomic.Int32
	c := &Controller[string, int]{
		Root:    root,
		Load:    func(_ context.Context, _, dir string) (string, error) { loads <- dir; return dir, nil },
		Observe: func(context.Context) (int, error) { return 0, nil },
		Plan:    func(string, int) []Item { return nil },
		Watcher: &Watcher{Root: root, Debounce: 50 * time.Millisecond},
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		Hooks:   Hooks{OnWatchEvent: func(string) { watchEvents.Add(1) }},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	next := func(what string) string {
		t.Helper()
		select {
		case d := <-loads:
			return d
		case <-time.After(3 * time.Second):
			t.Fatalf("no load after %s", what)
		}
		return ""
	}
	if d := next("start-up"); d != filepath.Join(base, "rev1") {
		t.Fatalf("start-up loaded %s", d)
	}
	swap(t, root, "rev2")
	if d := next("the swap"); d != filepath.Join(base, "rev2") {
		t.Fatalf("after the swap loaded %s, want rev2", d)
	}
	write(t, filepath.Join(base, "rev2", "web.yaml"), "x")
	if d := next("a write in the new target"); d != filepath.Join(base, "rev2") {
		t.Fatalf("loaded %s", d)
	}
	if c.ResolvedRoot() != filepath.Join(base, "rev2") {
		t.Fatalf("ResolvedRoot %s", c.ResolvedRoot())
	}
	if watchEvents.Load() == 0 {
		t.Fatal("watch events not passed to Hooks.OnWatchEvent")
	}
}

func TestWatcherErrorTriggersFullReload(t *testing.T) {
	root := t.TempDir()
	wr := startWatcher(t, root)
	errs := make(chan string, 10)
	wr.w.OnError = func(typ string) { errs <- typ }
	// The backend reports lost events on this channel; so does the test.
	wr.w.fw.Errors <- fsnotify.ErrEventOverflow
	select {
	case typ := <-errs:
		if typ != "overflow" {
			t.Fatalf("error type %q, want overflow", typ)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("overflow not counted")
	}
	select {
	case r := <-wr.notes:
		if r != TriggerWatchErr {
			t.Fatalf("trigger %q, want %q", r, TriggerWatchErr)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("no reload after an overflow")
	}
}

func TestWatcherRootCreatedLater(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "zocker.d")
	wr := startWatcher(t, root)
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	wr.one(t, "the root appearing")
	write(t, filepath.Join(root, "web.yaml"), "x")
	wr.one(t, "a file in the new root")
}
