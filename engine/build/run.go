package build

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"strings"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/engine/jail"
)

// buildJailPrefix starts the names of build jails, so that the ones a
// crashed build left behind can be found (RemoveLeftoverJails).
const buildJailPrefix = "zbuild-"

// RemoveLeftoverJails removes build jails that a build interrupted by a
// crash left running. The service calls it at start-up, before any build,
// beside the store's cleanup of ROOT/tmp; it returns the names removed.
// Only jails named like ours AND rooted below under (the mountpoint of
// ROOT/tmp, where every build clone lives) are ours: a foreign jail called
// zbuild-something is left alone (review L11).
func RemoveLeftoverJails(ctx context.Context, d jail.Driver, under string) ([]string, error) {
	if !path.IsAbs(under) || path.Clean(under) == "/" {
		return nil, fmt.Errorf("remove leftover build jails: %q is not the work directory", under)
	}
	infos, err := d.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list leftover build jails: %w", err)
	}
	var removed []string
	for _, in := range infos {
		if !strings.HasPrefix(in.Name, buildJailPrefix) || !strings.HasPrefix(path.Clean(in.Path), path.Clean(under)+"/") {
			continue
		}
		if err := d.Remove(ctx, in.Name); err != nil {
			return removed, fmt.Errorf("remove leftover build jail %s: %w", in.Name, err)
		}
		removed = append(removed, in.Name)
	}
	return removed, nil
}

// runStep runs a RUN command in a build jail on the clone at root. The jail
// is removed (every process of the step gone) before anything on the host
// looks at the clone again, and the host files copied in for the step are
// restored with the jail package's no-follow walk: the step may have turned
// any directory of the clone into a symlink to a host path (review H1).
func (b *builder) runStep(ctx context.Context, root string, in Instruction, argv, env []string, user, wd, net string) (err error) {
	if b.opts.Driver == nil {
		return errors.New("no jail driver to run the step")
	}
	saved, err := saveHostFiles(root)
	if err != nil {
		return err
	}
	var rb [4]byte
	if _, err := rand.Read(rb[:]); err != nil {
		return err
	}
	name := buildJailPrefix + hex.EncodeToString(rb[:])
	spec := jail.Spec{Name: name, Root: root, Hostname: name, Network: jail.Network{Mode: net}}
	if err := b.opts.Driver.Create(ctx, spec); err != nil {
		return fmt.Errorf("create build jail: %w", err)
	}
	removed := false
	remove := func() error {
		removed = true
		if rerr := b.opts.Driver.Remove(context.WithoutCancel(ctx), name); rerr != nil {
			b.log.Warn("remove build jail", "jail", name, "action", "build", "err", rerr)
			return fmt.Errorf("remove build jail %s: %w", name, rerr)
		}
		return nil
	}
	defer func() {
		if !removed {
			if rerr := remove(); err == nil {
				err = rerr
			}
		}
	}()
	cmd, err := b.opts.Driver.Command(name, jail.Process{Argv: argv, Env: env, User: user, Workdir: wd})
	if err != nil {
		return err
	}
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = b.out, b.out
	// When the step is cancelled only the exec shim is killed; the step's
	// processes live on in the jail (until Remove below) and hold the
	// output pipe open, on which Wait would block for good (the service
	// writes the output to a log, not a file): stop waiting for it.
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %v: %w", argv, err)
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			_ = cmd.Process.Kill() // Remove then kills what is left in the jail
		case <-done:
		}
	}()
	err = cmd.Wait()
	close(done)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code := ee.ExitCode()
		if code == 0 || code == -1 {
			code = 128 // killed by a signal
		}
		return &StepError{File: b.name, Line: in.Line, Keyword: Run, ExitCode: code, Err: err}
	}
	if err != nil {
		return err
	}
	// Nothing of the step may still run (a daemon it started could swap a
	// directory between our checks and our writes).
	if err := remove(); err != nil {
		return err
	}
	return restoreHostFiles(root, saved, b.log)
}

// maxHostFile bounds what is read of a host file's path inside the clone.
const maxHostFile = 1 << 20

// savedFile is what an image had at a host file's path before a RUN step.
type savedFile struct {
	name    string // the path inside the clone (= the host path)
	existed bool
	data    []byte
	mode    fs.FileMode
	link    string
	host    []byte // the host's content, as copied in
}

// saveHostFiles records what the image has at each host file's path and
// copies the host's file in where the image has none (the drivers copy them
// in at Create as well, overwriting: what is saved here is restored). The
// clone is looked at through the jail package's no-follow walk: an image
// whose /etc is a symlink gets no host file.
func saveHostFiles(root string) ([]savedFile, error) {
	var saved []savedFile
	for _, f := range hostFiles {
		host, err := os.ReadFile(f) // the host's own file: trusted, links followed
		if err != nil {
			continue // the host has none: nothing is copied in
		}
		e, err := jail.ReadEntryInRoot(root, f, true, maxHostFile)
		if err != nil {
			continue // a symlink on the way, or too big: left to the image
		}
		sf := savedFile{name: f, host: host, existed: e.Exists, data: e.Data, mode: e.Mode, link: e.Link}
		switch {
		case !e.Exists:
			if !dirExistsInRoot(root, path.Dir(f)) {
				continue // the image has no /etc: nothing to resolve with
			}
			if err := jail.WriteFileInRoot(root, f, host, 0o644); err != nil {
				return nil, fmt.Errorf("copy %s into the build: %w", f, err)
			}
		case e.Mode&fs.ModeSymlink == 0 && !e.Mode.IsRegular():
			continue // not a file: left alone
		}
		saved = append(saved, sf)
	}
	return saved, nil
}

// dirExistsInRoot reports whether dir (inside root) is a real directory,
// reached without following symlinks.
func dirExistsInRoot(root, dir string) bool {
	e, err := jail.ReadEntryInRoot(root, dir, false, 0)
	return err == nil && e.Exists && e.Mode.IsDir()
}

// restoreHostFiles puts back what the image had before the step: the host's
// files copied in for the build are removed (or the image's own restored),
// unless the step itself changed them; then they are the image's now. Run
// only once the step's jail is gone; every access walks from the root
// without following symlinks, so a step that made /etc a symlink to a host
// directory makes the restore skip the file, never touch the host's.
func restoreHostFiles(root string, saved []savedFile, log interface {
	Warn(string, ...any)
}) error {
	for _, sf := range saved {
		e, err := jail.ReadEntryInRoot(root, sf.name, true, maxHostFile)
		if err != nil {
			log.Warn("host file changed into something else by the build step: left as the step made it", "file", sf.name, "action", "build", "err", err)
			continue
		}
		if !e.Exists || !e.Mode.IsRegular() || !bytes.Equal(e.Data, sf.host) {
			continue
		}
		if err := jail.RemoveInRoot(root, sf.name); err != nil {
			return fmt.Errorf("remove %s after the build step: %w", sf.name, err)
		}
		switch {
		case !sf.existed:
		case sf.link != "":
			err = jail.SymlinkInRoot(root, sf.name, sf.link)
		default:
			err = jail.WriteFileInRoot(root, sf.name, sf.data, sf.mode.Perm())
		}
		if err != nil {
			return fmt.Errorf("restore %s after the build step: %w", sf.name, err)
		}
	}
	return nil
}
