package zfs

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"

	gozfs "github.com/mistifyio/go-zfs/v4"

	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
	"github.com/zocker-reconcile/zocker-reconcile/image"
)

// commitIDPrefix makes commit IDs a space of their own.
const commitIDPrefix = "zocker/v1 commit"

// Commit makes a new image of container name's clone as it is now (a
// snapshot of the live clone: the container may run) and returns its ID.
// The image is a child of the container's image: the clone's changes are
// sent as an incremental stream from the image's @image snapshot and
// received into ROOT/tmp/<random>/img, which makes a clone of that image
// again that owes nothing to the container (rm still works); it is
// published under its ID like any image. cfg is the new image's config; its
// Parent is set here. The ID is the sha256 of the parent, the snapshot's
// GUID and the config: a commit is a unique event, not a reproducible step.
func (s *Store) Commit(ctx context.Context, name string, cfg Config, extra map[string]string) (id string, err error) {
	if err := image.ValidName("container", name); err != nil {
		return "", err
	}
	ds := s.containerDS(name)
	recs, err := s.get(ctx, PropManaged+","+PropKind+","+PropImage, ds, false)
	if err != nil {
		return "", fmt.Errorf("commit container %s: %w", name, err)
	}
	rec := recs[ds]
	if rec == nil || rec.own[PropManaged] != "true" || rec.own[PropKind] != KindContainer {
		return "", fmt.Errorf("commit container %s: dataset %s is not a container managed by zocker-reconcile", name, ds)
	}
	parent := rec.own[PropImage]
	if err := image.ValidID(parent); err != nil {
		return "", fmt.Errorf("commit container %s: its image: %w", name, err)
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	snapName := "commit-" + hex.EncodeToString(b[:])
	snap := ds + "@" + snapName
	if _, err := (&gozfs.Dataset{Name: ds}).Snapshot(snapName, false); err != nil {
		return "", fmt.Errorf("commit container %s: snapshot: %w", name, classify(err))
	}
	defer func() {
		if derr := s.destroy(context.WithoutCancel(ctx), snap, false, false); derr != nil {
			s.log.Warn("remove commit snapshot", "dataset", snap, "err", derr)
		}
	}()
	grecs, err := s.get(ctx, "guid", snap, false)
	if err != nil || grecs[snap] == nil {
		return "", fmt.Errorf("commit container %s: read snapshot guid: %w", name, err)
	}
	cfg.Parent = parent
	cj, err := json.Marshal(cfg)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(commitIDPrefix + "\x00" + parent + "\x00" + grecs[snap].vals["guid"] + "\x00" + string(cj)))
	id = hex.EncodeToString(sum[:])

	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	work := s.tmpDS() + "/" + hex.EncodeToString(b[:])
	if err := s.create(ctx, work, marks(KindTmp, "")); err != nil {
		return "", fmt.Errorf("commit container %s: %w", name, err)
	}
	defer func() {
		// On success only the empty wrapper is left.
		if derr := s.destroy(context.WithoutCancel(ctx), work, true, true); derr != nil {
			s.log.Warn("remove commit work dataset", "dataset", work, "err", derr)
		}
	}()
	img := work + "/img"
	parentSnap := s.imageDS(parent) + "@" + ImageSnapshot
	if err := s.sendReceive(ctx, parentSnap, snap, img); err != nil {
		return "", fmt.Errorf("commit container %s: %w", name, err)
	}
	// zfs-fuse finds a clone stream's origin by GUID anywhere in the pool:
	// make sure it is this root's parent image.
	orecs, err := s.get(ctx, "origin", img, false)
	if err != nil {
		return "", fmt.Errorf("commit container %s: %w", name, err)
	}
	if got := orecs[img].value("origin"); got != parentSnap {
		return "", fmt.Errorf("commit container %s: received as a clone of %s instead of %s", name, got, parentSnap)
	}
	if err := s.destroy(ctx, img+"@"+snapName, false, false); err != nil {
		return "", fmt.Errorf("commit container %s: %w", name, err)
	}
	// Received without properties: the ownership mark comes from us.
	if err := s.setProp(ctx, img, PropManaged, "true"); err != nil {
		return "", fmt.Errorf("commit container %s: %w", name, err)
	}
	if err := s.Publish(ctx, &Work{Dataset: img}, id, cfg, extra); err != nil {
		return "", fmt.Errorf("commit container %s: %w", name, err)
	}
	s.log.Info("committed container", "container", name, "image", id, "action", "commit")
	return id, nil
}

func (rec *record) value(k string) string {
	if rec == nil {
		return ""
	}
	return rec.vals[k]
}

// sendReceive copies snapshot snap, incrementally from base, into the new
// dataset target: zfs send -i BASE SNAP | zfs receive TARGET, two commands
// of the runner joined by a pipe in this process (never a shell).
func (s *Store) sendReceive(ctx context.Context, base, snap, target string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	sendErr := make(chan error, 1)
	go func() {
		_, err := s.r.Run(ctx, runner.Cmd{Argv: []string{Bin(), "send", "-i", base, snap}, Stdout: pw, Timeout: -1})
		pw.CloseWithError(err)
		sendErr <- err
	}()
	argv := []string{Bin(), "receive"}
	if runtime.GOOS == "freebsd" {
		// OpenZFS is told the origin; zfs-fuse (pool v23) finds it by GUID.
		argv = append(argv, "-o", "origin="+base)
	}
	_, rerr := s.r.Run(ctx, runner.Cmd{Argv: append(argv, target), Stdin: pr, Timeout: -1})
	if rerr != nil {
		cancel()
		pr.CloseWithError(rerr)
	}
	serr := <-sendErr
	if serr != nil && !errors.Is(serr, context.Canceled) && rerr == nil {
		return fmt.Errorf("send %s: %w", snap, serr)
	}
	if rerr != nil {
		if serr != nil && !strings.Contains(serr.Error(), "context canceled") {
			return fmt.Errorf("receive %s: %w (send: %v)", target, classify(rerr), serr)
		}
		return fmt.Errorf("receive %s: %w", target, classify(rerr))
	}
	return nil
}
