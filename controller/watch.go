package controller

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/zocker-reconcile/zocker-reconcile/manifests"
)

// Watcher turns filesystem events under the manifest directory into
// debounced reload triggers. Events are only hints (FreeBSD's kqueue misses
// some; the periodic resync covers that): a burst of them becomes one
// trigger, and the pass re-reads everything.
//
// It watches the parent of Root (Root may be a symlink that git-sync or
// `ln -sfn` + `mv` swaps atomically: the swap is an event on Root's name in
// the parent), Root's resolved target and every directory below it except
// dot-directories (.git). When the target changes, the old target's
// watches are dropped and the new tree is watched.
type Watcher struct {
	// Root is the manifest directory as configured, possibly a symlink.
	Root string
	// Debounce is the quiet time after the last event before the trigger
	// fires (default 200 ms).
	Debounce time.Duration
	// MaxDelay caps the wait under a continuous stream of events (default
	// 2 s), so a busy directory cannot postpone reloads forever.
	MaxDelay time.Duration
	// OnEvent counts every event received by op (create, write, remove,
	// rename, chmod).
	OnEvent func(op string)
	// OnError counts watcher errors: "overflow" (events were lost) or
	// "error".
	OnError func(typ string)
	// Logger defaults to slog.Default().
	Logger *slog.Logger

	fw     *fsnotify.Watcher
	syncCh chan struct{}

	// Owned by the loop goroutine after start.
	absRoot     string
	parent      string
	parentAdded bool
	target      string          // Root resolved; "" while missing
	dirs        map[string]bool // watched directories of the target tree
}

// Run watches until ctx is cancelled and calls notify(reason) with
// TriggerWatch or TriggerWatchErr once per debounced burst. It returns an
// error only when the watcher cannot be created.
func (w *Watcher) Run(ctx context.Context, notify func(reason string)) error {
	if err := w.start(); err != nil {
		return err
	}
	w.loop(ctx, notify)
	return nil
}

// Sync asks the watcher to re-resolve Root and repair its watches (the
// controller calls it at every pass: a swap whose event was lost is
// caught at the next resync). It never blocks.
func (w *Watcher) Sync() {
	if w.syncCh == nil {
		return
	}
	select {
	case w.syncCh <- struct{}{}:
	default:
	}
}

func (w *Watcher) start() error {
	if w.Logger == nil {
		w.Logger = slog.Default()
	}
	if w.Debounce <= 0 {
		w.Debounce = 200 * time.Millisecond
	}
	if w.MaxDelay <= 0 {
		w.MaxDelay = 2 * time.Second
	}
	abs, err := filepath.Abs(w.Root)
	if err != nil {
		return err
	}
	w.absRoot, w.parent = abs, filepath.Dir(abs)
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	w.fw = fw
	w.syncCh = make(chan struct{}, 1)
	w.dirs = map[string]bool{}
	w.addParent()
	w.retarget(true)
	return nil
}

func (w *Watcher) addParent() {
	if w.parentAdded {
		return
	}
	if err := w.fw.Add(w.parent); err != nil {
		w.Logger.Warn("cannot watch manifest parent directory", "action", "watch", "dir", w.parent, "err", err)
		return
	}
	w.parentAdded = true
}

// retarget resolves Root again and, when its target changed (or force),
// drops the old tree's watches and watches the new tree. It reports
// whether the target changed.
func (w *Watcher) retarget(force bool) bool {
	target := ""
	if p, err := manifests.ResolveRoot(w.absRoot); err == nil {
		target = p
	}
	if target == w.target && !force {
		return false
	}
	changed := target != w.target
	first := w.target == "" && len(w.dirs) == 0 // the start, not a change (F47)
	for dir := range w.dirs {
		// A deleted directory has lost its watch already.
		_ = w.fw.Remove(dir)
		delete(w.dirs, dir)
	}
	w.target = target
	if target != "" {
		w.addTree(target)
	}
	switch {
	case changed && first:
		w.Logger.Debug("watching the manifest root", "action", "watch", "dir", target)
	case changed:
		w.Logger.Info("manifest root target changed", "action", "watch", "dir", target)
	}
	return changed
}

// addTree watches dir and its subdirectories, skipping dot-directories
// other than dir itself (.git holds thousands of files nobody loads).
func (w *Watcher) addTree(dir string) {
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // vanished meanwhile; the next event or resync repairs
		}
		if !d.IsDir() {
			return nil
		}
		if p != dir && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if w.dirs[p] {
			return nil
		}
		if err := w.fw.Add(p); err != nil {
			w.Logger.Warn("cannot watch manifest directory", "action", "watch", "dir", p, "err", err)
			return nil
		}
		w.dirs[p] = true
		return nil
	})
}

func (w *Watcher) dropTree(dir string) {
	prefix := dir + string(filepath.Separator)
	for d := range w.dirs {
		if d == dir || strings.HasPrefix(d, prefix) {
			_ = w.fw.Remove(d)
			delete(w.dirs, d)
		}
	}
}

// relevant decides whether an event may change the manifest set.
func (w *Watcher) relevant(ev fsnotify.Event) bool {
	if ev.Op == fsnotify.Chmod {
		return false // editors and backups touch modes constantly
	}
	if ev.Name == w.absRoot {
		return true
	}
	if filepath.Dir(ev.Name) == w.parent && !w.dirs[w.parent] {
		return false // a sibling of Root (another git-sync worktree)
	}
	if w.dirs[ev.Name] && ev.Op.Has(fsnotify.Remove|fsnotify.Rename) {
		w.dropTree(ev.Name)
		return true
	}
	if ev.Op.Has(fsnotify.Create | fsnotify.Rename) {
		if fi, err := os.Lstat(ev.Name); err == nil {
			switch {
			case fi.IsDir():
				if !strings.HasPrefix(fi.Name(), ".") {
					w.addTree(ev.Name)
					return true
				}
				return false
			case fi.Mode()&fs.ModeSymlink != 0:
				return true // a link may point at manifests or directories
			}
		}
	}
	return inputFileName(filepath.Base(ev.Name))
}

// inputFileName reports whether a file in the manifest tree can change what
// a pass does: a manifest, but also any file of a build context kept beside
// the manifests (a Zockerfile, a file it COPYs), so every name counts except
// hidden files and editors' leftovers (which the loader and the build
// context skip too).
func inputFileName(name string) bool {
	if strings.HasPrefix(name, ".") || strings.HasPrefix(name, "#") {
		return false
	}
	for _, suffix := range []string{"~", ".swp", ".bak", ".tmp"} {
		if strings.HasSuffix(name, suffix) {
			return false
		}
	}
	return true
}

func opName(op fsnotify.Op) string {
	switch {
	case op.Has(fsnotify.Create):
		return "create"
	case op.Has(fsnotify.Write):
		return "write"
	case op.Has(fsnotify.Remove):
		return "remove"
	case op.Has(fsnotify.Rename):
		return "rename"
	case op.Has(fsnotify.Chmod):
		return "chmod"
	}
	return "other"
}

func (w *Watcher) loop(ctx context.Context, notify func(reason string)) {
	defer w.fw.Close()
	var (
		timer    *time.Timer
		timerC   <-chan time.Time
		first    time.Time // first event of the current burst
		errored  bool
		schedule = func() {
			now := time.Now()
			if timer == nil {
				first = now
				timer = time.NewTimer(w.Debounce)
				timerC = timer.C
				return
			}
			// Trailing debounce, but never later than MaxDelay after the
			// burst began.
			d := min(w.Debounce, first.Add(w.MaxDelay).Sub(now))
			timer.Stop()
			timer.Reset(max(d, 0))
		}
	)
	for {
		select {
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			return
		case <-w.syncCh:
			w.addParent()
			w.retarget(false)
		case ev, ok := <-w.fw.Events:
			if !ok {
				return
			}
			rel := false
			if ev.Name == w.absRoot {
				// Root itself was swapped, removed or recreated: rebuild.
				w.retarget(true)
				rel = true
			} else if w.retarget(false) {
				// readlink on every event: a swap whose own event is
				// still queued (or lost) is noticed here.
				rel = true
			}
			if w.relevant(ev) || rel {
				// Only events that concern the manifests are logged and
				// counted: the watched parent directory may hold other busy
				// files (the service's own log, say).
				if w.OnEvent != nil {
					w.OnEvent(opName(ev.Op))
				}
				w.Logger.Debug("manifest event", "action", "watch", "event", ev.String())
				schedule()
			}
		case err, ok := <-w.fw.Errors:
			if !ok {
				return
			}
			typ := "error"
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				typ = "overflow"
			}
			if w.OnError != nil {
				w.OnError(typ)
			}
			w.Logger.Warn("manifest watcher error, reloading everything", "action", "watch", "type", typ, "err", err)
			// Lost events may include new directories: walk again.
			w.retarget(true)
			errored = true
			schedule()
		case <-timerC:
			timer, timerC = nil, nil
			reason := TriggerWatch
			if errored {
				reason = TriggerWatchErr
			}
			errored = false
			notify(reason)
		}
	}
}
