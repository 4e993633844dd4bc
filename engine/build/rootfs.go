package build

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/zocker-reconcile/zocker-reconcile/engine/jail"
)

// inRoot resolves an absolute path of an image's file system to a host path
// under root, the way the jail would see it: symlinks are followed with
// absolute targets taken relative to root and ".." stopping at root, so that
// no path written by a build lands outside the image. The last component is
// not followed when it is a symlink (callers replace it). With mkdir, missing
// directories are created (mode 0755, owned by uid:gid).
func inRoot(root, p string, mkdir bool, uid, gid int) (string, error) {
	var done []string
	todo := splitRel(p)
	links := 0
	for len(todo) > 0 {
		comp := todo[0]
		todo = todo[1:]
		if comp == "." {
			continue
		}
		if comp == ".." {
			if len(done) > 0 {
				done = done[:len(done)-1]
			}
			continue
		}
		cur := filepath.Join(root, filepath.FromSlash(path.Join(append(done, comp)...)))
		fi, err := os.Lstat(cur)
		switch {
		case errors.Is(err, fs.ErrNotExist) && len(todo) == 0:
			done = append(done, comp)
			continue
		case errors.Is(err, fs.ErrNotExist) && mkdir:
			if err := os.Mkdir(cur, 0o755); err != nil {
				return "", err
			}
			if err := os.Lchown(cur, uid, gid); err != nil {
				return "", err
			}
			done = append(done, comp)
			continue
		case err != nil:
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 || len(todo) == 0 {
			done = append(done, comp)
			continue
		}
		links++
		if links > maxLinks {
			return "", fmt.Errorf("%s: too many levels of symbolic links", p)
		}
		target, err := os.Readlink(cur)
		if err != nil {
			return "", err
		}
		if strings.HasPrefix(target, "/") {
			done = nil
		}
		todo = append(splitRel(target), todo...)
	}
	return filepath.Join(root, filepath.FromSlash(path.Join(done...))), nil
}

// isDirIn reports whether p is a directory in the image (following links
// inside the image).
func isDirIn(root, p string) bool {
	host, err := inRoot(root, p+"/.", false, 0, 0)
	if err != nil {
		return false
	}
	fi, err := os.Stat(host)
	return err == nil && fi.IsDir()
}

// lookupOwner resolves COPY --chown's USER[:GROUP] in the image's own
// /etc/passwd and /etc/group; numbers need no entry. A user without a group
// gets the user's primary group (0 for a bare number), as Docker does.
func lookupOwner(root, spec string) (uid, gid int, err error) {
	u, g, hasGroup := strings.Cut(spec, ":")
	if n, err := strconv.Atoi(u); err == nil && n >= 0 {
		uid, gid = n, 0
		if !hasGroup {
			if f, ok := findEntry(root, "/etc/passwd", 2, u); ok && len(f) > 3 {
				gid, _ = strconv.Atoi(f[3])
			}
		}
	} else {
		f, ok := findEntry(root, "/etc/passwd", 0, u)
		if !ok || len(f) < 4 {
			return 0, 0, fmt.Errorf("--chown %s: no user %q in the image's /etc/passwd", spec, u)
		}
		if uid, err = strconv.Atoi(f[2]); err != nil {
			return 0, 0, fmt.Errorf("--chown %s: bad uid in /etc/passwd: %q", spec, f[2])
		}
		gid, _ = strconv.Atoi(f[3])
	}
	if !hasGroup {
		return uid, gid, nil
	}
	if n, err := strconv.Atoi(g); err == nil && n >= 0 {
		return uid, n, nil
	}
	f, ok := findEntry(root, "/etc/group", 0, g)
	if !ok || len(f) < 3 {
		return 0, 0, fmt.Errorf("--chown %s: no group %q in the image's /etc/group", spec, g)
	}
	if gid, err = strconv.Atoi(f[2]); err != nil {
		return 0, 0, fmt.Errorf("--chown %s: bad gid in /etc/group: %q", spec, f[2])
	}
	return uid, gid, nil
}

// findEntry returns the fields of the first line of a colon file in the
// image whose field col equals value.
func findEntry(root, file string, col int, value string) ([]string, bool) {
	// No symlink anywhere on the path (the image's /etc/passwd pointing at
	// the host's would be read on the host), and a regular file only: a
	// FIFO would block the build (review L7, M4).
	f, err := jail.OpenFileInRoot(root, file)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) > col && fields[col] == value && !strings.HasPrefix(fields[0], "#") {
			return fields, true
		}
	}
	return nil, false
}

// copyEntries writes the entries of one COPY source under dst (a host path
// already resolved inside the image): entry "" is dst itself. Existing
// non-directories are replaced, never written through, so a symlink in the
// image cannot redirect the copy.
func copyEntries(dst string, ents []entry, uid, gid int) error {
	for _, e := range ents {
		target := dst
		if e.rel != "" {
			target = filepath.Join(dst, filepath.FromSlash(e.rel))
		}
		if err := copyEntry(target, e, uid, gid); err != nil {
			return err
		}
	}
	return nil
}

func copyEntry(target string, e entry, uid, gid int) error {
	old, err := os.Lstat(target)
	exists := err == nil
	if e.rel == "" && e.mode.IsDir() && exists && old.IsDir() {
		// The destination of a directory's contents keeps its own owner and mode.
		return nil
	}
	if exists && !(old.IsDir() && e.mode.IsDir()) {
		if err := os.RemoveAll(target); err != nil {
			return err
		}
		exists = false
	}
	switch {
	case !e.mode.IsDir() && !e.mode.IsRegular() && e.link == "":
		return fmt.Errorf("%s: not a regular file, directory or symlink", e.host)
	case e.mode.IsDir():
		if !exists {
			if err := os.Mkdir(target, e.mode.Perm()); err != nil {
				return err
			}
		} else if err := os.Chmod(target, e.mode.Perm()); err != nil {
			return err
		}
	case e.link != "":
		if err := os.Symlink(e.link, target); err != nil {
			return err
		}
	default:
		if err := copyFile(e.host, target, e.mode.Perm()); err != nil {
			return err
		}
	}
	if err := os.Lchown(target, uid, gid); err != nil {
		return err
	}
	if e.link == "" {
		// chown clears setuid/setgid bits: set the mode again after it.
		return os.Chmod(target, e.mode&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky))
	}
	return nil
}

func copyFile(src, dst string, perm fs.FileMode) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	_, err = io.Copy(out, in)
	return err
}
