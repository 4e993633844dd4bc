package build

import (
	"context"
	"fmt"
	"path"
	"path/filepath"
	"strings"
)

// prepareCopy resolves COPY's sources in the context, digests what they
// read, and returns the function that copies them into an image.
func (b *builder) prepareCopy(in Instruction, workdir string) (func(context.Context, string) error, string, []string, error) {
	n := len(in.Args)
	dest := b.expand(in.Args[n-1])
	dirDest := strings.HasSuffix(dest, "/") || dest == "." || strings.HasSuffix(dest, "/.")
	if !path.IsAbs(dest) {
		if workdir == "" {
			workdir = "/"
		}
		dest = path.Join(workdir, dest)
	}
	dest = path.Clean(dest)
	var sources []string
	for _, a := range in.Args[:n-1] {
		pattern := b.expand(a)
		m, err := b.ctx.glob(pattern)
		if err != nil {
			return nil, "", nil, err
		}
		sources = append(sources, m...)
	}
	if len(sources) > 1 {
		dirDest = true // Docker: several sources need a directory destination
	}
	var groups [][]entry
	for _, src := range sources {
		ents, err := b.ctx.collect(src)
		if err != nil {
			return nil, "", nil, fmt.Errorf("%s: %w", src, err)
		}
		groups = append(groups, ents)
	}
	args := append(append([]string(nil), sources...), dest)
	if dirDest {
		args[len(args)-1] += "/"
	}
	chown := b.expand(in.Chown)
	apply := func(_ context.Context, root string) error {
		uid, gid := 0, 0
		if chown != "" {
			var err error
			if uid, gid, err = lookupOwner(root, chown); err != nil {
				return err
			}
		}
		for i, ents := range groups {
			var err error
			target := dest
			isDir := ents[0].mode.IsDir()
			switch {
			case isDir:
				// A directory's contents land in dest (its own entry, "", is dest).
			case dirDest || isDirIn(root, dest):
				target = path.Join(dest, path.Base(sources[i]))
			}
			// Parents are created as root; only what COPY brings gets --chown.
			var hostTarget string
			if isDir {
				hostTarget, err = inRoot(root, target+"/.", true, 0, 0)
			} else {
				var parent string
				parent, err = inRoot(root, path.Dir(target)+"/.", true, 0, 0)
				hostTarget = filepath.Join(parent, path.Base(target))
			}
			if err != nil {
				return fmt.Errorf("%s to %s: %w", sources[i], target, err)
			}
			if err := copyEntries(hostTarget, ents, uid, gid); err != nil {
				return fmt.Errorf("%s to %s: %w", sources[i], target, err)
			}
		}
		return nil
	}
	return apply, digestEntries(groups), args, nil
}
