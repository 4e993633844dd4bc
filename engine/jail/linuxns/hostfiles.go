//go:build linux

package linuxns

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Mount points on Linux are resolved rather than refused when the image has
// symlinks on the way (FreeBSD's /home -> usr/home style), because the init
// mounts by path in its own namespace: resolving every link as if root were
// "/" gives the path the container itself will see. Files written into the
// root use engine/jail's CopyHostFiles, which refuses symlinks instead.

// maxSymlinks bounds symlink resolution inside a root, as the kernel does (40).
const maxSymlinks = 40

// resolveIn returns the host path of path inside root, with every symlink
// resolved as if root were "/": an image's symlinks (absolute or full of
// "..") can never lead outside it. With mkdir, missing components are
// created as directories (mode 0755); otherwise a missing component is an
// os.ErrNotExist error. The container has no process yet when this runs for
// its mounts, so nothing inside can swap a component afterwards.
func resolveIn(root, path string, mkdir bool) (string, error) {
	root = filepath.Clean(root)
	var done []string // resolved components below root, none a symlink
	todo := splitPath(path)
	links := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case ".":
			continue
		case "..":
			if len(done) > 0 {
				done = done[:len(done)-1]
			}
			continue
		}
		cur := filepath.Join(root, filepath.Join(done...), c)
		fi, err := os.Lstat(cur)
		switch {
		case errors.Is(err, os.ErrNotExist) && mkdir:
			if err := os.Mkdir(cur, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
				return "", fmt.Errorf("create %s: %w", cur, err)
			}
			// Check again what is there now: a directory, not a planted link.
			if fi, err = os.Lstat(cur); err != nil {
				return "", err
			}
			if !fi.IsDir() {
				return "", fmt.Errorf("create %s: not a directory", cur)
			}
		case err != nil:
			return "", err
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			links++
			if links > maxSymlinks {
				return "", fmt.Errorf("resolve %s in %s: %w", path, root, syscall.ELOOP)
			}
			target, err := os.Readlink(cur)
			if err != nil {
				return "", err
			}
			if filepath.IsAbs(target) {
				done = nil
			}
			todo = append(splitPath(target), todo...)
			continue
		}
		if len(todo) > 0 && !fi.IsDir() {
			return "", fmt.Errorf("resolve %s in %s: %s: %w", path, root, cur, syscall.ENOTDIR)
		}
		done = append(done, c)
	}
	return filepath.Join(root, filepath.Join(done...)), nil
}

func splitPath(p string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" {
			out = append(out, c)
		}
	}
	return out
}

// mountTarget prepares the mount point for source at target inside root: a
// directory for a directory source, an empty file for a file source.
func mountTarget(root, source, target string) (string, error) {
	fi, err := os.Stat(source)
	if err != nil {
		return "", err
	}
	if fi.IsDir() {
		return resolveIn(root, target, true)
	}
	if p, err := resolveIn(root, target, false); err == nil {
		return p, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	dir, err := resolveIn(root, filepath.Dir(target), true)
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, filepath.Base(target))
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY|syscall.O_NOFOLLOW, 0o644)
	if err != nil {
		return "", fmt.Errorf("create mount point %s: %w", p, err)
	}
	return p, f.Close()
}
