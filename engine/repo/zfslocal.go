package repo

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
	"github.com/zocker-reconcile/zocker-reconcile/engine/zfs"
	"github.com/zocker-reconcile/zocker-reconcile/image"
)

// ZFSLocal adapts the ZFS engine to Local. What *zfs.Store already offers
// (observation, tags) is used as is; send, receive and publishing a received
// image are done here with zfs argv through the runner, on the engine's
// dataset layout, until the engine offers them itself.
//
// Receiving: a full stream is received as ROOT/tmp/<random>/img. An
// incremental stream of image B on parent A (B being, on the sending side, a
// clone of A@image, as every built or pulled child is) is a clone stream:
// received as ROOT/tmp/<random>/img it becomes a clone of the local
// ROOT/images/A@image again. OpenZFS is told the origin explicitly
// (-o origin=); zfs-fuse (pool v23) has no -o and finds it by the snapshot's
// GUID. Receiving into a clone of A made beforehand does not work: zfs-fuse
// refuses a clone stream into an existing clone. ROOT/tmp/<random> is
// created managed first, so a crash mid-receive leaves a leftover that the
// engine's Open destroys.
type ZFSLocal struct {
	Store  ZFSStore
	Runner runner.Runner
	Log    *slog.Logger
	// ReceiveOrigin passes -o origin= to zfs receive for incremental
	// streams (OpenZFS; not zfs-fuse). NewZFSLocal sets it on FreeBSD.
	ReceiveOrigin bool

	capsOnce sync.Once
	caps     ReceiveCaps
}

// ReceiveCaps says which zfs receive options the local zfs has. OpenZFS
// (FreeBSD 13+, Linux) and FreeBSD 12's ZFS have -u (do not mount) and
// -x PROPERTY (ignore the stream's value); zfs-fuse 0.7 (pool v23) has
// neither: its usage is "receive [-vnF]". There, the StreamChecker's refusal
// of every stream that could carry properties is what keeps a stream's
// mountpoint off the host, and the received dataset is mounted (below the
// work dataset) before it can be checked.
type ReceiveCaps struct {
	NoMount bool // -u
	Exclude bool // -x PROPERTY (and -o PROPERTY=VALUE)
}

// receiveUsageRe finds the flag group of `zfs receive`'s usage line.
var receiveUsageRe = regexp.MustCompile(`receive(?:\|recv)? \[-([A-Za-z]+)\]`)

// ParseReceiveUsage reads the capabilities from the usage text `zfs receive`
// prints without arguments.
func ParseReceiveUsage(usage string) ReceiveCaps {
	var c ReceiveCaps
	if m := receiveUsageRe.FindStringSubmatch(usage); m != nil {
		c.NoMount = strings.ContainsRune(m[1], 'u')
	}
	c.Exclude = strings.Contains(usage, "-x <property>") || strings.Contains(usage, "-x property")
	return c
}

// receiveCaps runs `zfs receive` without arguments once (it exits non-zero
// and prints its usage) and remembers what it offers.
func (z *ZFSLocal) receiveCaps(ctx context.Context) ReceiveCaps {
	z.capsOnce.Do(func() {
		out, err := z.Runner.Run(ctx, runner.Cmd{Argv: []string{zfs.Bin(), "receive"}})
		text := string(out)
		var ce *runner.CommandError
		if errors.As(err, &ce) {
			text += ce.Stderr
		}
		z.caps = ParseReceiveUsage(text)
		z.Log.Debug("zfs receive capabilities", "no_mount", z.caps.NoMount, "exclude", z.caps.Exclude)
	})
	return z.caps
}

// excludedProps are the properties a received image never takes from its
// stream where zfs receive has -x: where it is mounted and how, what runs
// from it, who it is shared with, and every property this program keeps its
// own state in. -x makes the value inherited, so only inheritable properties
// are listed; the others are forced with -o (overriddenProps). Streams
// carrying any property are refused before this (StreamChecker): this is the
// second wall.
func excludedProps() []string {
	ps := []string{"mountpoint", "setuid", "exec", "devices", "sharenfs", "sharesmb", "readonly",
		zfs.PropManaged, zfs.PropKind, zfs.PropName, zfs.PropImage, zfs.PropManifest, zfs.PropSpecHash,
		zfs.PropSpec, zfs.PropConfig, zfs.PropParent, zfs.PropSource, zfs.PropOrigin, zfs.PropInputs}
	if runtime.GOOS == "freebsd" {
		ps = append(ps, "jailed")
	} else {
		ps = append(ps, "zoned")
	}
	return ps
}

// overriddenProps are the non-inheritable properties (zfs inherit refuses
// them, so -x cannot) that a received image gets with -o whatever its stream
// says: mounted like any dataset (our Publish mounts it after -u), and no
// pool space reserved or capped by the repository.
var overriddenProps = []string{"canmount=on", "reservation=none", "refreservation=none", "quota=none", "refquota=none"}

// ReceiveArgv is the zfs receive command for a stream into target: -u, -x
// and -o where the local zfs has them, -o origin= for an incremental stream
// on OpenZFS.
func ReceiveArgv(caps ReceiveCaps, originSnap, target string) []string {
	argv := []string{zfs.Bin(), "receive"}
	if caps.NoMount {
		argv = append(argv, "-u")
	}
	if caps.Exclude {
		for _, p := range excludedProps() {
			argv = append(argv, "-x", p)
		}
		for _, p := range overriddenProps {
			argv = append(argv, "-o", p)
		}
	}
	if originSnap != "" {
		argv = append(argv, "-o", "origin="+originSnap)
	}
	return append(argv, target)
}

// NewZFSLocal returns the adapter with the platform's defaults.
// ZFSStore is what ZFSLocal needs of the ZFS store (*zfs.Store).
type ZFSStore interface {
	Root() string
	Observe(ctx context.Context) (*zfs.State, error)
	ImageSizeLimit() int64
	Tag(ctx context.Context, tag, id string) error
}

var _ ZFSStore = (*zfs.Store)(nil)

func NewZFSLocal(s ZFSStore, r runner.Runner, log *slog.Logger) *ZFSLocal {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &ZFSLocal{Store: s, Runner: r, Log: log, ReceiveOrigin: runtime.GOOS == "freebsd"}
}

func (z *ZFSLocal) imageSnap(id string) string {
	return z.Store.Root() + "/images/" + id + "@" + zfs.ImageSnapshot
}

// LookupTag implements Local.
func (z *ZFSLocal) LookupTag(ctx context.Context, tag string) (string, error) {
	st, err := z.Store.Observe(ctx)
	if err != nil {
		return "", err
	}
	id, ok := st.Tags[tag]
	if !ok {
		return "", fmt.Errorf("local tag %s: %w", tag, ErrNotFound)
	}
	return id, nil
}

// Image implements Local.
func (z *ZFSLocal) Image(ctx context.Context, id string) (Image, bool, error) {
	if err := image.ValidID(id); err != nil {
		return Image{}, false, err
	}
	st, err := z.Store.Observe(ctx)
	if err != nil {
		return Image{}, false, err
	}
	im, ok := st.Image(id)
	if !ok {
		return Image{}, false, nil
	}
	img := Image{ID: id, Parent: im.Parent, GUID: im.GUID, Created: im.Created}
	if img.GUID == 0 {
		// zfs-fuse leaves guid out of `zfs get all`: ask for it.
		out, err := z.Runner.Run(ctx, runner.Cmd{Argv: []string{zfs.Bin(), "get", "-H", "-p", "-o", "value", "guid", z.imageSnap(id)}})
		if err != nil {
			return Image{}, false, fmt.Errorf("image %s: snapshot guid: %w", id, err)
		}
		if img.GUID, err = strconv.ParseUint(strings.TrimSpace(string(out)), 10, 64); err != nil {
			return Image{}, false, fmt.Errorf("image %s: snapshot guid %q: %w", id, strings.TrimSpace(string(out)), err)
		}
	}
	if c := im.Props[zfs.PropConfig]; c != "" {
		img.Config = []byte(c)
	}
	return img, true, nil
}

// Send implements Local: zfs send [-i ROOT/images/PARENT@image] ROOT/images/ID@image.
func (z *ZFSLocal) Send(ctx context.Context, id, parent string, w io.Writer) error {
	if err := image.ValidID(id); err != nil {
		return err
	}
	argv := []string{zfs.Bin(), "send"}
	if parent != "" {
		if err := image.ValidID(parent); err != nil {
			return err
		}
		argv = append(argv, "-i", z.imageSnap(parent))
	}
	argv = append(argv, z.imageSnap(id))
	if _, err := z.Runner.Run(ctx, runner.Cmd{Argv: argv, Stdout: w, Timeout: -1}); err != nil {
		return fmt.Errorf("send image %s: %w", id, err)
	}
	return nil
}

// Receive implements Local; the handle is ROOT/tmp/<random>, the image is
// received as its child "img".
func (z *ZFSLocal) Receive(ctx context.Context, parent string, r io.Reader) (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	work := z.Store.Root() + "/tmp/" + hex.EncodeToString(b[:])
	// The quota bounds what the stream can make, whatever it says about
	// itself (a WRITE_BYREF or compressed stream makes more than its size).
	if _, err := z.Runner.Run(ctx, runner.Cmd{Argv: []string{zfs.Bin(), "create",
		"-o", zfs.PropManaged + "=true", "-o", zfs.PropKind + "=" + zfs.KindTmp,
		"-o", "quota=" + strconv.FormatInt(z.Store.ImageSizeLimit(), 10), work}}); err != nil {
		return "", fmt.Errorf("create receive dataset %s: %w", work, err)
	}
	var origin string
	if parent != "" {
		if err := image.ValidID(parent); err != nil {
			return work, err
		}
		if z.ReceiveOrigin {
			origin = z.imageSnap(parent)
		}
	}
	argv := ReceiveArgv(z.receiveCaps(ctx), origin, work+"/img")
	if _, err := z.Runner.Run(ctx, runner.Cmd{Argv: argv, Stdin: r, Timeout: -1}); err != nil {
		return work, fmt.Errorf("receive into %s: %w", work+"/img", err)
	}
	return work, nil
}

// Publish implements Local: readonly, the image properties, then one rename
// of WORK/img to ROOT/images/<id>, and WORK is destroyed.
func (z *ZFSLocal) Publish(ctx context.Context, work string, img Image) error {
	if err := z.checkWork(work); err != nil {
		return err
	}
	ds := work + "/img"
	// The received image must be a clone of OUR parent (or of nothing):
	// zfs-fuse finds a clone stream's origin by GUID anywhere in the pool,
	// which may be another root's copy of the parent.
	out, err := z.Runner.Run(ctx, runner.Cmd{Argv: []string{zfs.Bin(), "get", "-H", "-o", "value", "origin", ds}})
	if err != nil {
		return fmt.Errorf("publish image %s: %w", img.ID, err)
	}
	want := "-"
	if img.Parent != "" {
		want = z.imageSnap(img.Parent)
	}
	if got := strings.TrimSpace(string(out)); got != want {
		return fmt.Errorf("publish image %s: received as a clone of %s instead of %s (zfs-fuse picks a clone stream's origin by GUID in the whole pool: pull into a root on another pool)", img.ID, got, want)
	}
	if err := z.checkReceived(ctx, work, img.ID); err != nil {
		return err
	}
	props := [][2]string{
		{"readonly", "on"},
		{zfs.PropManaged, "true"},
		{zfs.PropKind, zfs.KindImage},
		{zfs.PropName, img.ID},
		{zfs.PropSource, "pull"},
		{zfs.PropOrigin, zfs.OriginPull},
	}
	if len(img.Config) > 0 {
		// Compact: a zfs property value is one line.
		var buf bytes.Buffer
		if err := json.Compact(&buf, img.Config); err != nil {
			return fmt.Errorf("publish image %s: config: %w", img.ID, err)
		}
		c := buf.String()
		if len(c) > 8000 {
			return fmt.Errorf("publish image %s: config must be one line of at most 8000 bytes", img.ID)
		}
		props = append(props, [2]string{zfs.PropConfig, c})
	}
	if img.Parent != "" {
		props = append(props, [2]string{zfs.PropParent, img.Parent})
	}
	for _, p := range props {
		if _, err := z.Runner.Run(ctx, runner.Cmd{Argv: []string{zfs.Bin(), "set", p[0] + "=" + p[1], ds}}); err != nil {
			return fmt.Errorf("publish image %s: set %s on %s: %w", img.ID, p[0], ds, err)
		}
	}
	target := z.Store.Root() + "/images/" + img.ID
	// Unmount first, as the store's own rename does: zfs-fuse keeps a
	// freshly received, mounted dataset "busy" for tens of seconds under load.
	if out, err := z.Runner.Run(ctx, runner.Cmd{Argv: []string{zfs.Bin(), "unmount", "-f", ds}}); err != nil &&
		!strings.Contains(err.Error(), "not currently mounted") {
		z.Log.Debug("unmount received image before rename", "dataset", ds, "out", string(out), "err", err)
	}
	if err := z.retryBusy(ctx, "rename", ds, []string{zfs.Bin(), "rename", ds, target}); err != nil {
		return fmt.Errorf("publish image %s: %w", img.ID, err)
	}
	if _, err := z.Runner.Run(ctx, runner.Cmd{Argv: []string{zfs.Bin(), "mount", target}}); err != nil &&
		!strings.Contains(err.Error(), "already mounted") {
		z.Log.Debug("mount published image", "dataset", target, "err", err)
	}
	if err := z.Discard(ctx, work); err != nil {
		z.Log.Warn("remove empty receive dataset", "dataset", work, "err", err)
	}
	z.Log.Info("published pulled image", "image", img.ID, "dataset", target, "action", "pull")
	return nil
}

// checkReceived refuses received work that is more than one filesystem
// with its @image snapshot, or that holds any property with source
// "received": the StreamChecker lets no such stream through, this checks
// what zfs made of it (one `zfs get -r`, which zfs-fuse has too).
func (z *ZFSLocal) checkReceived(ctx context.Context, work, id string) error {
	out, err := z.Runner.Run(ctx, runner.Cmd{Argv: []string{zfs.Bin(), "get", "-H", "-r", "-o", "name,property,value,source", "type", work}})
	if err != nil {
		return fmt.Errorf("publish image %s: list received datasets: %w", id, err)
	}
	want := map[string]string{work: "filesystem", work + "/img": "filesystem", work + "/img@" + zfs.ImageSnapshot: "snapshot"}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 4 || want[f[0]] != f[2] {
			return fmt.Errorf("publish image %s: the stream made %q: want one filesystem with its @%s snapshot: %w", id, line, zfs.ImageSnapshot, ErrCorrupt)
		}
		delete(want, f[0])
	}
	if len(want) > 0 {
		return fmt.Errorf("publish image %s: the stream did not make the @%s snapshot: %w", id, zfs.ImageSnapshot, ErrCorrupt)
	}
	out, err = z.Runner.Run(ctx, runner.Cmd{Argv: []string{zfs.Bin(), "get", "-H", "-r", "-s", "received", "-o", "name,property", "all", work}})
	if err != nil {
		return fmt.Errorf("publish image %s: list received properties: %w", id, err)
	}
	if s := strings.TrimSpace(string(out)); s != "" {
		return fmt.Errorf("publish image %s: the stream set properties (%s): %w", id, strings.ReplaceAll(s, "\n", "; "), ErrCorrupt)
	}
	return nil
}

// Discard implements Local: zfs destroy -r WORK (retrying while busy).
func (z *ZFSLocal) Discard(ctx context.Context, work string) error {
	if err := z.checkWork(work); err != nil {
		return err
	}
	return z.retryBusy(ctx, "destroy", work, []string{zfs.Bin(), "destroy", "-r", work})
}

// Tag implements Local.
func (z *ZFSLocal) Tag(ctx context.Context, tag, id string) error { return z.Store.Tag(ctx, tag, id) }

// checkWork refuses a handle that is not one of ours: Discard destroys it.
func (z *ZFSLocal) checkWork(work string) error {
	rest, ok := strings.CutPrefix(work, z.Store.Root()+"/tmp/")
	if !ok || len(rest) != 16 || strings.Trim(rest, "0123456789abcdef") != "" {
		return fmt.Errorf("receive dataset %q is not a ROOT/tmp work dataset", work)
	}
	return nil
}

// retryBusy runs argv until zfs stops saying "busy" (zfs-fuse does for a
// moment after a dataset was used; FreeBSD while processes die), bounded.
func (z *ZFSLocal) retryBusy(ctx context.Context, action, ds string, argv []string) error {
	deadline := time.Now().Add(zfs.BusyTimeout)
	delay := 100 * time.Millisecond
	for {
		_, err := z.Runner.Run(ctx, runner.Cmd{Argv: argv})
		var ce *runner.CommandError
		if err == nil || !errors.As(err, &ce) || !strings.Contains(ce.Stderr, "busy") {
			if err != nil {
				return fmt.Errorf("%s dataset %s: %w", action, ds, err)
			}
			return nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return fmt.Errorf("%s dataset %s: still busy: %w", action, ds, err)
		}
		z.Log.Debug("dataset busy, retrying", "dataset", ds, "action", action)
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
		if delay < 500*time.Millisecond {
			delay += 100 * time.Millisecond
		}
	}
}
