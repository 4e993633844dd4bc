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
	"runtime"
	"strings"
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
	Store  *zfs.Store
	Runner runner.Runner
	Log    *slog.Logger
	// ReceiveOrigin passes -o origin= to zfs receive for incremental
	// streams (OpenZFS; not zfs-fuse). NewZFSLocal sets it on FreeBSD.
	ReceiveOrigin bool
}

// NewZFSLocal returns the adapter with the platform's defaults.
func NewZFSLocal(s *zfs.Store, r runner.Runner, log *slog.Logger) *ZFSLocal {
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
	img := Image{ID: id, Parent: im.Parent, Created: im.Created}
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
	if _, err := z.Runner.Run(ctx, runner.Cmd{Argv: []string{zfs.Bin(), "create",
		"-o", zfs.PropManaged + "=true", "-o", zfs.PropKind + "=" + zfs.KindTmp, work}}); err != nil {
		return "", fmt.Errorf("create receive dataset %s: %w", work, err)
	}
	argv := []string{zfs.Bin(), "receive"}
	if parent != "" {
		if err := image.ValidID(parent); err != nil {
			return work, err
		}
		if z.ReceiveOrigin {
			argv = append(argv, "-o", "origin="+z.imageSnap(parent))
		}
	}
	argv = append(argv, work+"/img")
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
	props := [][2]string{
		{"readonly", "on"},
		{zfs.PropManaged, "true"},
		{zfs.PropKind, zfs.KindImage},
		{zfs.PropName, img.ID},
		{zfs.PropSource, "pull"},
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
