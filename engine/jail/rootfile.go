//go:build linux || freebsd

package jail

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"

	"golang.org/x/sys/unix"
)

// The helpers below READ from and remove in a root that untrusted code may
// have changed (a build step, a container): like WriteFileInRoot they walk
// from the root with O_NOFOLLOW, so a directory on the way that is now a
// symlink (/etc -> /etc on the host) is refused, never followed, and the
// last component is looked at itself, not at what it points to. A FIFO,
// device or socket where a file is expected is reported, never opened for
// reading (O_NONBLOCK, then fstat), so it can neither block nor read a device.

// ErrNotRegular is returned (wrapped) when a path inside a root is expected
// to be a regular file and is something else. Compare with errors.Is.
var ErrNotRegular = errors.New("not a regular file")

// RootEntry is what a path inside a root is, looked at without following
// any symlink.
type RootEntry struct {
	// Exists is false when there is nothing at the path.
	Exists bool
	// Mode is the entry's type and permission bits.
	Mode fs.FileMode
	// Link is a symlink's target.
	Link string
	// Data is a regular file's content (ReadEntryInRoot with read set).
	Data []byte
}

// parentInRoot opens the directory holding name (an absolute path inside
// root) without following symlinks and returns its fd and the last name.
func parentInRoot(root, name string) (int, string, error) {
	cs, err := components(name)
	if err != nil || len(cs) == 0 {
		return -1, "", fmt.Errorf("%q in %s: not a file path inside the root", name, root)
	}
	rootFD, err := openRoot(root)
	if err != nil {
		return -1, "", err
	}
	defer unix.Close(rootFD)
	dirFD, err := walkDirs(rootFD, root, cs[:len(cs)-1], false)
	if err != nil {
		return -1, "", err
	}
	return dirFD, cs[len(cs)-1], nil
}

// ReadEntryInRoot looks at name (an absolute path inside root) without
// following symlinks; with read, a regular file's content is read, at most
// max bytes (a larger file is an error). A missing entry (or a missing
// directory on the way) is RootEntry{Exists: false} and no error; a symlink
// or non-directory on the way is an error.
func ReadEntryInRoot(root, name string, read bool, max int64) (RootEntry, error) {
	dirFD, base, err := parentInRoot(root, name)
	if errors.Is(err, unix.ENOENT) {
		return RootEntry{}, nil
	}
	if err != nil {
		return RootEntry{}, fmt.Errorf("look at %s in %s: %w", name, root, err)
	}
	defer unix.Close(dirFD)
	host := path.Join(root, name)
	var st unix.Stat_t
	if err := unix.Fstatat(dirFD, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return RootEntry{}, nil
		}
		return RootEntry{}, &fs.PathError{Op: "lstat", Path: host, Err: err}
	}
	e := RootEntry{Exists: true, Mode: statMode(&st)}
	switch {
	case e.Mode&fs.ModeSymlink != 0:
		buf := make([]byte, 4096)
		n, err := unix.Readlinkat(dirFD, base, buf)
		if err != nil {
			return e, &fs.PathError{Op: "readlink", Path: host, Err: err}
		}
		e.Link = string(buf[:n])
	case e.Mode.IsRegular() && read:
		f, err := openRegularAt(dirFD, base, host)
		if err != nil {
			return e, err
		}
		defer f.Close()
		e.Data, err = io.ReadAll(io.LimitReader(f, max+1))
		if err != nil {
			return e, fmt.Errorf("read %s: %w", host, err)
		}
		if int64(len(e.Data)) > max {
			return e, fmt.Errorf("read %s: larger than %d bytes", host, max)
		}
	}
	return e, nil
}

// openRegularAt opens base in dirFD for reading, refusing symlinks and
// anything but a regular file without blocking on a FIFO.
func openRegularAt(dirFD int, base, host string) (*os.File, error) {
	fd, err := unix.Openat(dirFD, base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, explainWalkErr(host, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "fstat", Path: host, Err: err}
	}
	if !statMode(&st).IsRegular() {
		unix.Close(fd)
		return nil, fmt.Errorf("%s: %w", host, ErrNotRegular)
	}
	return os.NewFile(uintptr(fd), host), nil
}

// OpenFileInRoot opens name (an absolute path inside root) for reading
// with the same care: no symlink anywhere on the path, a regular file only.
func OpenFileInRoot(root, name string) (*os.File, error) {
	dirFD, base, err := parentInRoot(root, name)
	if err != nil {
		return nil, fmt.Errorf("open %s in %s: %w", name, root, err)
	}
	defer unix.Close(dirFD)
	return openRegularAt(dirFD, base, path.Join(root, name))
}

// RemoveInRoot removes the non-directory name (an absolute path inside
// root) itself: a symlink is removed, not what it points to.
func RemoveInRoot(root, name string) error {
	dirFD, base, err := parentInRoot(root, name)
	if err != nil {
		return fmt.Errorf("remove %s in %s: %w", name, root, err)
	}
	defer unix.Close(dirFD)
	if err := unix.Unlinkat(dirFD, base, 0); err != nil {
		return &fs.PathError{Op: "remove", Path: path.Join(root, name), Err: err}
	}
	return nil
}

// SymlinkInRoot creates the symlink name -> target inside root (target is
// stored as is: it is resolved inside the jail, never by this program).
func SymlinkInRoot(root, name, target string) error {
	dirFD, base, err := parentInRoot(root, name)
	if err != nil {
		return fmt.Errorf("symlink %s in %s: %w", name, root, err)
	}
	defer unix.Close(dirFD)
	if err := unix.Symlinkat(target, dirFD, base); err != nil {
		return &fs.PathError{Op: "symlink", Path: path.Join(root, name), Err: err}
	}
	return nil
}

// statMode converts a stat mode to an fs.FileMode (type and permissions).
func statMode(st *unix.Stat_t) fs.FileMode {
	m := fs.FileMode(uint32(st.Mode) & 0o777)
	switch uint32(st.Mode) & unix.S_IFMT {
	case unix.S_IFDIR:
		m |= fs.ModeDir
	case unix.S_IFLNK:
		m |= fs.ModeSymlink
	case unix.S_IFIFO:
		m |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		m |= fs.ModeSocket
	case unix.S_IFCHR:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		m |= fs.ModeDevice
	}
	if uint32(st.Mode)&unix.S_ISUID != 0 {
		m |= fs.ModeSetuid
	}
	if uint32(st.Mode)&unix.S_ISGID != 0 {
		m |= fs.ModeSetgid
	}
	if uint32(st.Mode)&unix.S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	return m
}
