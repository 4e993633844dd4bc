//go:build linux || freebsd

package jail

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// DefaultHostFiles are copied from the host into a jail's root at every
// start, so that name resolution and local time inside match the host.
var DefaultHostFiles = []string{"/etc/resolv.conf", "/etc/localtime"}

// The helpers below write into a container's root directory, whose content
// comes from an image and may hold symlinks planted to point outside it
// (/etc -> /host/etc, /etc/resolv.conf -> /etc/master.passwd). Every path
// component is therefore opened relative to the root with O_NOFOLLOW: a
// symlink on the way is refused, never followed. This matters doubly on
// FreeBSD, where the nullfs mounts of mount.fstab are resolved by the kernel
// in the host's namespace: a mount point that is a symlink inside the root
// would mount a volume over a host directory.

// openRoot opens root itself (a host path the caller trusts).
func openRoot(root string) (int, error) {
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &fs.PathError{Op: "open", Path: root, Err: err}
	}
	return fd, nil
}

// components splits an absolute in-jail path into its names, refusing ".."
// so that the walk can never climb above the root.
func components(p string) ([]string, error) {
	if !path.IsAbs(p) {
		return nil, fmt.Errorf("path %q is not absolute", p)
	}
	var out []string
	for _, c := range strings.Split(p, "/") {
		switch c {
		case "", ".":
		case "..":
			return nil, fmt.Errorf("path %q: \"..\" is not allowed", p)
		default:
			out = append(out, c)
		}
	}
	return out, nil
}

// walkDirs opens the directory dirs (components below the root fd),
// creating missing ones with mode 0755 when create is set. The returned fd
// must be closed by the caller. A component that is a symlink or not a
// directory is an error naming it.
func walkDirs(rootFD int, root string, dirs []string, create bool) (int, error) {
	fd, err := unix.Dup(rootFD)
	if err != nil {
		return -1, fmt.Errorf("dup root fd of %s: %w", root, err)
	}
	cur := root
	for _, c := range dirs {
		cur = path.Join(cur, c)
		next, err := unix.Openat(fd, c, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) && create {
			if err := unix.Mkdirat(fd, c, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
				unix.Close(fd)
				return -1, &fs.PathError{Op: "mkdir", Path: cur, Err: err}
			}
			next, err = unix.Openat(fd, c, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		}
		unix.Close(fd)
		if err != nil {
			return -1, explainWalkErr(cur, err)
		}
		fd = next
	}
	return fd, nil
}

// explainWalkErr turns O_NOFOLLOW|O_DIRECTORY failures into messages that
// say a symlink was refused (Linux reports ELOOP or ENOTDIR for it, FreeBSD
// EMLINK or ENOTDIR).
func explainWalkErr(p string, err error) error {
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EMLINK) || errors.Is(err, unix.ENOTDIR) {
		return fmt.Errorf("%s is a symlink or not a directory; refusing to follow it out of the jail root: %w", p, err)
	}
	return &fs.PathError{Op: "open", Path: p, Err: err}
}

// MkdirInRoot creates the directory dir (an absolute path inside the jail)
// under root, with every missing parent, without following any symlink.
// It is how mount points are made inside a clone before the jail starts.
func MkdirInRoot(root, dir string) error {
	cs, err := components(dir)
	if err != nil {
		return fmt.Errorf("create mount point in %s: %w", root, err)
	}
	rootFD, err := openRoot(root)
	if err != nil {
		return fmt.Errorf("create mount point %s: %w", dir, err)
	}
	defer unix.Close(rootFD)
	fd, err := walkDirs(rootFD, root, cs, true)
	if err != nil {
		return fmt.Errorf("create mount point %s: %w", dir, err)
	}
	return unix.Close(fd)
}

// WriteFileInRoot atomically replaces the file name (an absolute path inside
// the jail) under root with data: it writes a temporary file in the same
// directory and renames it over name. A symlink at name is replaced, not
// followed; a symlink among the parent directories is an error. Missing
// parent directories are created.
func WriteFileInRoot(root, name string, data []byte, perm os.FileMode) error {
	cs, err := components(name)
	if err != nil || len(cs) == 0 {
		return fmt.Errorf("write %q in %s: not a file path inside the root", name, root)
	}
	rootFD, err := openRoot(root)
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	defer unix.Close(rootFD)
	dirFD, err := walkDirs(rootFD, root, cs[:len(cs)-1], true)
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	defer unix.Close(dirFD)

	base := cs[len(cs)-1]
	tmp := "." + base + ".zocker-" + randomSuffix()
	host := path.Join(root, name)
	fd, err := unix.Openat(dirFD, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(perm.Perm()))
	if err != nil {
		return fmt.Errorf("write %s: %w", host, err)
	}
	f := os.NewFile(uintptr(fd), path.Join(root, path.Dir(name), tmp))
	_, werr := f.Write(data)
	if werr == nil {
		// The umask may have narrowed the mode given to openat.
		werr = f.Chmod(perm.Perm())
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = unix.Renameat(dirFD, tmp, dirFD, base)
	}
	if werr != nil {
		_ = unix.Unlinkat(dirFD, tmp, 0)
		return fmt.Errorf("write %s: %w", host, werr)
	}
	return nil
}

// CopyHostFiles copies each host file in files (absolute paths, such as
// DefaultHostFiles) to the same path inside root, with WriteFileInRoot's
// care. The host side is trusted and read through symlinks (Linux's
// /etc/localtime is one); the copy is a regular file. A host file that does
// not exist is skipped: a host without /etc/localtime runs in UTC.
func CopyHostFiles(root string, files []string) error {
	for _, f := range files {
		data, err := os.ReadFile(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("copy host file %s into %s: %w", f, root, err)
		}
		if err := WriteFileInRoot(root, f, data, 0o644); err != nil {
			return fmt.Errorf("copy host file %s into %s: %w", f, root, err)
		}
	}
	return nil
}

func randomSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
