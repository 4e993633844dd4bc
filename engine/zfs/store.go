// Package zfs is the storage engine: images, containers and volumes as ZFS
// datasets under one root, with everything the reconciler must know stored as
// zocker:* user properties on them (ARCHITECTURE section 4).
//
// Mutations go through go-zfs v4 with a per-command timeout; the whole actual
// state is observed with one `zfs get -r` through the engine's command runner.
// Only datasets carrying their own zocker:managed property are ever modified,
// and nothing outside the root is touched. It is over the house's 1,500
// lines; the tarball download (image.go) belongs in the engine's import
// action and is the first thing to move out.
package zfs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"time"

	gozfs "github.com/mistifyio/go-zfs/v4"

	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
)

// ErrNotFound is returned (wrapped) when a dataset, image, tag, container or
// volume does not exist. Compare with errors.Is.
var ErrNotFound = errors.New("not found")

// ErrDigestMismatch is returned (wrapped) when an archive's sha256 is not
// the declared one: the manifest or the file is wrong, and retrying the same
// import cannot help.
var ErrDigestMismatch = errors.New("sha256 mismatch")

// ErrExists is returned (wrapped) when creating something that already exists.
var ErrExists = errors.New("already exists")

// User properties the engine writes.
const (
	PropManaged  = "zocker:managed"
	PropKind     = "zocker:kind"
	PropName     = "zocker:name"
	PropImage    = "zocker:image"
	PropManifest = "zocker:manifest"
	PropSpecHash = "zocker:spec-hash"
	PropSpec     = "zocker:spec"
	PropConfig   = "zocker:config"
	PropParent   = "zocker:parent"
	PropSource   = "zocker:source"
	// PropTagPrefix + tag is set on ROOT/images, valued with the image ID.
	PropTagPrefix = "zocker:tag."
)

// Kinds stored in zocker:kind.
const (
	KindRoot      = "root"
	KindDir       = "dir"
	KindImage     = "image"
	KindContainer = "container"
	KindVolume    = "volume"
	KindTmp       = "tmp"
)

// ImageSnapshot is the snapshot every published image carries; containers and
// child images are clones of it.
const ImageSnapshot = "image"

// BusyTimeout bounds how long destroy and rename retry on "dataset is busy"
// (seconds on a loaded zfs-fuse machine; brief on FreeBSD).
var BusyTimeout = 45 * time.Second

// CommandTimeout bounds each go-zfs command, so a hung zfs cannot hang the service.
var CommandTimeout = 2 * time.Minute

var (
	datasetRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]*(/[A-Za-z0-9][A-Za-z0-9_.:-]*)*$`)
	propKeyRe = regexp.MustCompile(`^zocker:[a-z0-9][a-z0-9_.:-]*$`)
)

// Bin is the zfs binary the commands run: an absolute path on FreeBSD
// (ARCHITECTURE section 2); elsewhere the one on PATH, so the zfs-fuse adapter
// of the test substrate applies.
func Bin() string {
	if runtime.GOOS == "freebsd" {
		return "/sbin/zfs"
	}
	return "zfs"
}

// Store is the ZFS engine rooted at one dataset.
type Store struct {
	root  string
	r     runner.Runner
	log   *slog.Logger
	sleep func(time.Duration)
	// HTTPClient downloads URL imports; nil means http.DefaultClient.
	HTTPClient *http.Client

	// rootMount is ROOT's mountpoint as the shared open's one read of the
	// layout found it ("" when not mounted), for EnvKey; rootMountRead says
	// whether that read happened.
	rootMount     string
	rootMountRead bool

	mu sync.Mutex
	// pending are the leftovers in ROOT/tmp that the sweep could not
	// destroy yet (busy): SweepTmp retries them.
	pending map[string]string // dataset -> mountpoint
	// MaxImageSize bounds a download and is the quota of every work dataset
	// (import, build step, receive), so that no source can fill the pool
	// (0: DefaultMaxImageSize; the CLI's --max-image-size).
	MaxImageSize int64
}

// DefaultMaxImageSize is the image size bound when none is set: 20 GiB.
const DefaultMaxImageSize = 20 << 30

// ImageSizeLimit is MaxImageSize, or the default when it is not set.
func (s *Store) ImageSizeLimit() int64 {
	if s.MaxImageSize > 0 {
		return s.MaxImageSize
	}
	return DefaultMaxImageSize
}

// Root returns the root dataset's name.
func (s *Store) Root() string { return s.root }

// Dataset names of the tree.
func (s *Store) imagesDS() string               { return s.root + "/images" }
func (s *Store) imageDS(id string) string       { return s.root + "/images/" + id }
func (s *Store) containerDS(name string) string { return s.root + "/containers/" + name }
func (s *Store) volumeDS(name string) string    { return s.root + "/volumes/" + name }
func (s *Store) tmpDS() string                  { return s.root + "/tmp" }

type goZFSLogger struct{ log *slog.Logger }

func (l goZFSLogger) Log(cmd []string) { l.log.Debug("go-zfs", "cmd", strings.Join(cmd, " ")) }

// Open prepares the tree under root (ROOT/{images,containers,volumes,tmp},
// created on first use), refuses a missing pool or a foreign non-empty root,
// and destroys the leftovers of interrupted work in ROOT/tmp.
func Open(ctx context.Context, root string, r runner.Runner, log *slog.Logger) (*Store, error) {
	return open(ctx, root, r, log, true)
}

// OpenShared is Open without the sweep of ROOT/tmp, for the commands people
// run beside a running service (import, build, tag, rmi, gc, push, pull):
// what is in ROOT/tmp may be the service's work in progress. Only the
// service, at its start, sweeps; a shared open removes only the work of
// processes that are gone (PropWorker).
func OpenShared(ctx context.Context, root string, r runner.Runner, log *slog.Logger) (*Store, error) {
	return open(ctx, root, r, log, false)
}

// OpenAdHoc is OpenShared without reading ROOT/tmp when the tree is laid
// out, for the commands a user waits on that make no work there (run,
// create, start): one command fewer. What dead processes left there is
// removed by the next import, build, pull or load, or the service's start.
func OpenAdHoc(ctx context.Context, root string, r runner.Runner, log *slog.Logger) (*Store, error) {
	return openWith(ctx, root, r, log, false, false)
}

func open(ctx context.Context, root string, r runner.Runner, log *slog.Logger, sweep bool) (*Store, error) {
	return openWith(ctx, root, r, log, sweep, true)
}

func openWith(ctx context.Context, root string, r runner.Runner, log *slog.Logger, sweep, sweepDead bool) (*Store, error) {
	root = strings.TrimSuffix(root, "/")
	if !datasetRe.MatchString(root) || strings.Contains(root, "@") {
		return nil, fmt.Errorf("open root %q: not a valid dataset name", root)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	gozfs.SetRunner(&gozfs.Runner{Timeout: CommandTimeout, Grace: 5 * time.Second})
	gozfs.SetLogger(goZFSLogger{log})
	s := &Store{root: root, r: r, log: log, sleep: time.Sleep}
	if !sweep && s.laidOut(ctx) {
		// The usual case for a command beside a service: nothing to create
		// or adopt, and no need to read the whole tree; only ROOT/tmp is
		// read, for the work of processes that are gone (a SIGKILLed
		// import or pull), which a shared open removes.
		if !sweepDead {
			return s, nil
		}
		if recs, err := s.get(ctx, "all", s.tmpDS(), true); err == nil {
			s.sweep(ctx, recs, false)
		}
		return s, nil
	}

	recs, err := s.get(ctx, "all", root, true)
	if errors.Is(err, ErrNotFound) {
		pool := strings.SplitN(root, "/", 2)[0]
		if _, perr := s.get(ctx, "type", pool, false); perr != nil {
			if errors.Is(perr, ErrNotFound) {
				return nil, fmt.Errorf("open root %s: pool %s does not exist", root, pool)
			}
			return nil, fmt.Errorf("open root %s: %w", root, perr)
		}
		if err := s.create(ctx, root, marks(KindRoot, "")); err != nil {
			return nil, fmt.Errorf("open root %s: %w", root, err)
		}
		log.Info("created root dataset", "dataset", root, "action", "create")
		recs = nil
	} else if err != nil {
		return nil, fmt.Errorf("open root %s: %w", root, err)
	}
	if recs != nil {
		rootRec := recs[root]
		if rootRec == nil {
			return nil, fmt.Errorf("open root %s: zfs get returned nothing for it", root)
		}
		if rootRec.own[PropManaged] != "true" || rootRec.own[PropKind] != KindRoot {
			for name, rec := range recs {
				if name != root && rec.typ != "snapshot" {
					return nil, fmt.Errorf("open root %s: the dataset exists, was not created by zocker-reconcile (no %s=true) and is not empty (%s): choose another --root", root, PropManaged, name)
				}
			}
			for k, v := range marks(KindRoot, "") {
				if err := s.setProp(ctx, root, k, v); err != nil {
					return nil, fmt.Errorf("open root %s: adopt empty dataset: %w", root, err)
				}
			}
		}
	}
	for _, dir := range []string{"images", "containers", "volumes", "tmp"} {
		ds := root + "/" + dir
		rec := recs[ds]
		if rec == nil {
			if err := s.create(ctx, ds, marks(KindDir, dir)); err != nil {
				return nil, fmt.Errorf("open root %s: %w", root, err)
			}
			continue
		}
		if rec.own[PropManaged] != "true" {
			return nil, fmt.Errorf("open root %s: %s exists but is not managed by zocker-reconcile", root, ds)
		}
	}
	if err := s.secureTree(ctx); err != nil {
		return nil, fmt.Errorf("open root %s: %w", root, err)
	}
	// Leftovers of an interrupted import or build: never published, never
	// used. A shared open removes only work whose process is gone (a
	// SIGKILLed import or pull), never a running process's.
	s.sweep(ctx, recs, sweep)
	return s, nil
}

// laidOut tells, with one command over five datasets whatever the size of
// the tree, whether the root and its four directories exist and are ours;
// the same command reads ROOT's mountpoint for EnvKey.
func (s *Store) laidOut(ctx context.Context) bool {
	dirs := []string{s.root, s.imagesDS(), s.root + "/containers", s.root + "/volumes", s.tmpDS()}
	argv := append([]string{Bin(), "get", "-H", "-p", "-o", "name,property,value,source", PropManaged + "," + PropKind + ",mountpoint,mounted"}, dirs...)
	out, err := s.r.Run(ctx, runner.Cmd{Argv: argv, Timeout: CommandTimeout})
	if err != nil {
		return false
	}
	recs, err := parseGet(out)
	if err != nil {
		return false
	}
	for i, ds := range dirs {
		rec := recs[ds]
		want := KindDir
		if i == 0 {
			want = KindRoot
		}
		if rec == nil || rec.own[PropManaged] != "true" || rec.own[PropKind] != want {
			return false
		}
	}
	if rec := recs[s.root]; rec.vals["mounted"] == "yes" && strings.HasPrefix(rec.vals["mountpoint"], "/") {
		s.rootMount = rec.vals["mountpoint"]
	}
	s.rootMountRead = true
	return true
}

// marks returns the ownership properties of a new dataset.
func marks(kind, name string) map[string]string {
	m := map[string]string{PropManaged: "true", PropKind: kind}
	if name != "" {
		m[PropName] = name
	}
	return m
}

// classify turns a failed zfs command's "does not exist" into ErrNotFound —
// the one place where that happens — and keeps the original error readable.
func classify(err error) error {
	if err == nil {
		return nil
	}
	msg := stderrOf(err)
	switch {
	case strings.Contains(msg, "does not exist"):
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case strings.Contains(msg, "already exists"):
		return fmt.Errorf("%w: %w", ErrExists, err)
	case strings.Contains(strings.ToLower(msg), "usage:"):
		// A zfs that rejects the options go-zfs uses (zfs-fuse's has no
		// -p): one line, not its ~80 lines of usage text (F16).
		first, _, _ := strings.Cut(strings.TrimSpace(msg), "\n")
		return fmt.Errorf("%w: %s (a zfs without -p, such as zfs-fuse without the adapter of internal/zfsfuse first on PATH?)", ErrZFSUnusable, first)
	}
	return err
}

func stderrOf(err error) string {
	var ge *gozfs.Error
	if errors.As(err, &ge) {
		return ge.Stderr
	}
	var ce *runner.CommandError
	if errors.As(err, &ce) {
		return ce.Stderr
	}
	return ""
}

func isBusy(err error) bool {
	msg := stderrOf(err)
	return strings.Contains(msg, "busy")
}

// retryBusy runs op until it stops failing with "dataset is busy": zfs-fuse
// says so for a few hundred ms after a dataset was used, and FreeBSD while a
// removed jail's processes are still dying.
func (s *Store) retryBusy(ctx context.Context, action, ds string, op func() error) error {
	delay := 100 * time.Millisecond
	deadline := time.Now().Add(BusyTimeout)
	var err error
	for attempt := 1; ; attempt++ {
		if err = op(); err == nil || !isBusy(err) {
			return err
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			s.log.Warn("dataset still busy, giving up", "dataset", ds, "action", action, "attempts", attempt, "err", err)
			return err
		}
		s.log.Debug("dataset busy, retrying", "dataset", ds, "action", action, "attempt", attempt, "err", err)
		s.sleep(delay)
		if delay < 500*time.Millisecond {
			delay += 100 * time.Millisecond
		}
	}
}

// create makes a filesystem with properties set atomically at creation.
func (s *Store) create(ctx context.Context, ds string, props map[string]string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := gozfs.CreateFilesystem(ds, props); err != nil {
		return fmt.Errorf("create dataset %s: %w", ds, classify(err))
	}
	return nil
}

// destroy destroys ds (with its snapshots when recursive: -r, never -R, which
// would take clones elsewhere with it). force unmounts first even when the
// kernel still holds the mount (zfs destroy -f): used for datasets no process
// may be using any more (tmp work, images, containers whose jail is gone);
// zfs-fuse otherwise says "busy" for seconds to minutes after files were read.
//
// -r takes every child dataset too: outside ROOT/tmp work (all ours by
// construction) a child dataset is never one of ours (containers, volumes
// and images have none), so one made by hand below them is refused rather
// than destroyed with them (review M8).
func (s *Store) destroy(ctx context.Context, ds string, recursive, force bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if recursive && !strings.HasPrefix(ds, s.tmpDS()+"/") {
		if err := s.refuseChildren(ctx, ds); err != nil {
			return err
		}
	}
	var flags gozfs.DestroyFlag = gozfs.DestroyDefault
	if recursive {
		flags |= gozfs.DestroyRecursive
	}
	if force {
		flags |= gozfs.DestroyForceUmount
	}
	if force {
		// An explicit forced unmount first: zfs-fuse refuses the implicit
		// unmount of destroy (even with -f) as "busy" far longer.
		if err := s.unmount(ctx, ds); err != nil {
			return fmt.Errorf("destroy dataset %s: %w", ds, err)
		}
	}
	err := s.retryBusy(ctx, "destroy", ds, func() error {
		return (&gozfs.Dataset{Name: ds}).Destroy(flags)
	})
	if err != nil {
		return fmt.Errorf("destroy dataset %s: %w", ds, classify(err))
	}
	return nil
}

// rename moves ds to a new name in one atomic step (how work is published).
// The dataset is unmounted (forced) first and mounted again after: renaming a
// mounted dataset implies an unmount that zfs-fuse refuses as "busy" for up to
// minutes after files were written, while a forced unmount works at once.
func (s *Store) rename(ctx context.Context, from, to string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.unmount(ctx, from); err != nil {
		return fmt.Errorf("rename dataset %s: %w", from, err)
	}
	err := s.retryBusy(ctx, "rename", from, func() error {
		_, err := (&gozfs.Dataset{Name: from}).Rename(to, false, false)
		return err
	})
	if err != nil {
		return fmt.Errorf("rename dataset %s to %s: %w", from, to, classify(err))
	}
	if _, err := (&gozfs.Dataset{Name: to}).Mount(false, nil); err != nil && !strings.Contains(stderrOf(err), "already mounted") {
		return fmt.Errorf("mount dataset %s after rename: %w", to, classify(err))
	}
	return nil
}

// refuseChildren fails when ds has child file systems or volumes (its
// snapshots are fine: -r is for them).
func (s *Store) refuseChildren(ctx context.Context, ds string) error {
	out, err := s.r.Run(ctx, runner.Cmd{Argv: []string{Bin(), "list", "-H", "-r", "-o", "name", "-t", "filesystem,volume", ds}, Timeout: CommandTimeout})
	if err != nil {
		return fmt.Errorf("destroy dataset %s: list children: %w", ds, classify(err))
	}
	var children []string
	for _, n := range strings.Fields(string(out)) {
		if n != ds {
			children = append(children, n)
		}
	}
	if len(children) > 0 {
		return fmt.Errorf("destroy dataset %s: it has child datasets not made by zocker-reconcile (%s): refusing to destroy them with it; move or destroy them by hand", ds, strings.Join(children, ", "))
	}
	return nil
}

// unmount force-unmounts ds; a dataset that is not mounted is fine.
func (s *Store) unmount(ctx context.Context, ds string) error {
	err := s.retryBusy(ctx, "unmount", ds, func() error {
		_, err := (&gozfs.Dataset{Name: ds}).Unmount(true)
		if err != nil && strings.Contains(stderrOf(err), "not currently mounted") {
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("unmount dataset %s: %w", ds, classify(err))
	}
	return nil
}

// setProp sets one property: one zfs set, atomic.
func (s *Store) setProp(ctx context.Context, ds, key, value string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := (&gozfs.Dataset{Name: ds}).SetProperty(key, value); err != nil {
		return fmt.Errorf("set %s on dataset %s: %w", key, ds, classify(err))
	}
	return nil
}

// inheritProp removes a user property from ds (go-zfs has no inherit).
func (s *Store) inheritProp(ctx context.Context, ds, key string) error {
	_, err := s.r.Run(ctx, runner.Cmd{Argv: []string{Bin(), "inherit", key, ds}, Timeout: CommandTimeout})
	if err != nil {
		return fmt.Errorf("remove %s from dataset %s: %w", key, ds, classify(err))
	}
	return nil
}

// checkProps validates caller-supplied properties: zocker:* user properties
// only, values that zfs stores (no newline or tab, at most 8 KiB).
func checkProps(props map[string]string) error {
	for k, v := range props {
		if !propKeyRe.MatchString(k) {
			return fmt.Errorf("property %q: only zocker:* user properties may be set", k)
		}
		if strings.ContainsAny(v, "\n\t") || len(v) > 8000 {
			return fmt.Errorf("property %s: value must be one line of at most 8000 bytes", k)
		}
	}
	return nil
}
