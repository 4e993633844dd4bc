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
func RemoveLeftoverJails(ctx context.Context, d jail.Driver) ([]string, error) {
	infos, err := d.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list leftover build jails: %w", err)
	}
	var removed []string
	for _, in := range infos {
		if !strings.HasPrefix(in.Name, buildJailPrefix) {
			continue
		}
		if err := d.Remove(ctx, in.Name); err != nil {
			return removed, fmt.Errorf("remove leftover build jail %s: %w", in.Name, err)
		}
		removed = append(removed, in.Name)
	}
	return removed, nil
}

// runStep runs a RUN command in a build jail on the clone at root.
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
	defer func() {
		if rerr := b.opts.Driver.Remove(context.WithoutCancel(ctx), name); rerr != nil {
			b.log.Warn("remove build jail", "jail", name, "action", "build", "err", rerr)
			if err == nil {
				err = fmt.Errorf("remove build jail %s: %w", name, rerr)
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
	return restoreHostFiles(saved)
}

// savedFile is what an image had at a host file's path before a RUN step.
type savedFile struct {
	target  string // host path inside the clone
	existed bool
	data    []byte
	mode    fs.FileMode
	link    string
	host    []byte // the host's content, as copied in
}

// saveHostFiles records what the image has at each host file's path and
// copies the host's file in where the image has none (the drivers copy them
// in at Create as well, overwriting: what is saved here is restored).
func saveHostFiles(root string) ([]savedFile, error) {
	if !isDirIn(root, "/etc") {
		return nil, nil
	}
	var saved []savedFile
	for _, f := range hostFiles {
		host, err := os.ReadFile(f)
		if err != nil {
			continue // the host has none: nothing is copied in
		}
		target, err := inRoot(root, f, false, 0, 0)
		if err != nil {
			return nil, err
		}
		sf := savedFile{target: target, host: host}
		if fi, err := os.Lstat(target); err == nil {
			sf.existed, sf.mode = true, fi.Mode()
			switch {
			case fi.Mode()&fs.ModeSymlink != 0:
				if sf.link, err = os.Readlink(target); err != nil {
					return nil, err
				}
			case fi.Mode().IsRegular():
				if sf.data, err = os.ReadFile(target); err != nil {
					return nil, err
				}
			default:
				continue // not a file: left alone
			}
		} else if err := os.WriteFile(target, host, 0o644); err != nil {
			return nil, fmt.Errorf("copy %s into the build: %w", f, err)
		}
		saved = append(saved, sf)
	}
	return saved, nil
}

// restoreHostFiles puts back what the image had before the step: the host's
// files copied in for the build are removed (or the image's own restored),
// unless the step itself changed them; then they are the image's now.
func restoreHostFiles(saved []savedFile) error {
	for _, sf := range saved {
		fi, err := os.Lstat(sf.target)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		now, err := os.ReadFile(sf.target)
		if err != nil || !bytes.Equal(now, sf.host) {
			continue
		}
		if err := os.Remove(sf.target); err != nil {
			return fmt.Errorf("remove %s after the build step: %w", sf.target, err)
		}
		switch {
		case !sf.existed:
		case sf.link != "":
			err = os.Symlink(sf.link, sf.target)
		default:
			err = os.WriteFile(sf.target, sf.data, sf.mode.Perm())
		}
		if err != nil {
			return fmt.Errorf("restore %s after the build step: %w", sf.target, err)
		}
	}
	return nil
}
