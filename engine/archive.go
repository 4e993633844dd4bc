package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/zocker-reconcile/zocker-reconcile/engine/repo"
	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
	"github.com/zocker-reconcile/zocker-reconcile/engine/zfs"
)

// Save writes the images tags point at, with all their ancestors, to w as
// one archive: they are pushed into a file:// repository in a private
// temporary directory, which is then written as a tar (repo.WriteArchive).
// tmpDir is where that directory goes ("" for the system's).
func (e *Engine) Save(ctx context.Context, r runner.Runner, tags []string, w io.Writer, tmpDir string) error {
	dir, err := os.MkdirTemp(tmpDir, "zocker-save-")
	if err != nil {
		return fmt.Errorf("save: %w", err)
	}
	defer os.RemoveAll(dir)
	rp, err := repo.Open(ctx, "file://"+dir, repo.Options{Log: e.Log})
	if err != nil {
		return fmt.Errorf("save: %w", err)
	}
	defer rp.Close()
	local := repo.NewZFSLocal(e.Store, r, e.Log)
	for _, tag := range tags {
		if _, err := rp.Push(ctx, local, tag); err != nil {
			return fmt.Errorf("save: %w", err)
		}
	}
	return repo.WriteArchive(dir, w)
}

// Load reads an archive from rd and pulls every tag in it through the pull
// path of engine/repo, so that the archive gets every check a pull does
// (sizes and sha256 of the streams, names, and the stream checks of the
// repository code). It is all or nothing: when anything fails, the images it
// published are destroyed and the tags it moved are put back. It returns the
// tags it set.
func (e *Engine) Load(ctx context.Context, r runner.Runner, rd io.Reader, tmpDir string) (tags []string, err error) {
	dir, err := os.MkdirTemp(tmpDir, "zocker-load-")
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := repo.ReadArchive(rd, dir); err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	tags, err = repo.ArchiveTags(dir)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	before, err := e.Store.Observe(ctx)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	rp, err := repo.Open(ctx, "file://"+dir, repo.Options{Log: e.Log})
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	defer rp.Close()
	local := repo.NewZFSLocal(e.Store, r, e.Log)
	var received []string
	defer func() {
		if err != nil {
			e.undoLoad(context.WithoutCancel(ctx), before, tags, received)
		}
	}()
	for _, tag := range tags {
		res, err := rp.Pull(ctx, local, tag)
		for _, m := range res.Received {
			received = append(received, m.ID)
		}
		if err != nil {
			return nil, fmt.Errorf("load: %w", err)
		}
	}
	for _, id := range received {
		if err := e.Store.SetImageProps(ctx, id, map[string]string{zfs.PropOrigin: zfs.OriginLoad}); err != nil {
			return nil, fmt.Errorf("load: %w", err)
		}
	}
	return tags, nil
}

// undoLoad puts the tags back as they were before a failed load and
// destroys the images it published, children first. Failures are logged.
func (e *Engine) undoLoad(ctx context.Context, before *zfs.State, tags, received []string) {
	now, err := e.Store.Observe(ctx)
	if err != nil {
		e.Log.Error("undo load: observe", "err", err)
		return
	}
	for _, tag := range tags {
		id, set := now.Tags[tag]
		if !set {
			continue
		}
		old, had := before.Tags[tag]
		switch {
		case had && old != id:
			err = e.Store.Tag(ctx, tag, old)
		case !had:
			err = e.Store.Untag(ctx, tag)
		default:
			continue
		}
		if err != nil {
			e.Log.Error("undo load: restore tag", "tag", tag, "err", err)
		}
	}
	for _, id := range slices.Backward(received) {
		if _, ok := before.Image(id); ok {
			continue
		}
		if _, err := e.Store.RemoveImage(ctx, id); err != nil && !errors.Is(err, zfs.ErrNotFound) {
			e.Log.Error("undo load: remove image", "image", id, "err", err)
		}
	}
}
