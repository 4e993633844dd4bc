package manifests

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Manifests are read through descriptors, never by path after the first
// open: each entry is looked at with fstatat(AT_SYMLINK_NOFOLLOW), opened
// relative to its directory's descriptor with O_NOFOLLOW (and O_NONBLOCK, so
// that a FIFO cannot block the service), and the opened descriptor is
// checked with fstat: it must be the entry that was looked at, and it is
// what the ownership and permission checks see. A directory renamed or
// swapped during the load cannot redirect it, and what is checked is what
// is read (security review 2026-12-02, M1).

// errSymlink and errNotRegular are the refusals of entries that are neither
// a regular file nor a directory.
var (
	errSymlink    = errors.New("not a regular file (symbolic links inside the manifest directory are not followed)")
	errNotRegular = errors.New("not a regular file")
)

// entry is an opened file or directory.
type entry struct {
	fd int
	st unix.Stat_t
}

func (e entry) isDir() bool { return e.st.Mode&unix.S_IFMT == unix.S_IFDIR }

func (e entry) close() { _ = unix.Close(e.fd) }

// openEntry opens name in the directory dirfd without following a symlink,
// refusing anything but a regular file or a directory before it is opened
// (opening a device can have effects). beforeOpen is the tests' hook
// between the look and the open.
func openEntry(dirfd int, name string, beforeOpen func(string)) (entry, error) {
	var pre unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &pre, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return entry{}, err
	}
	switch pre.Mode & unix.S_IFMT {
	case unix.S_IFLNK:
		return entry{}, errSymlink
	case unix.S_IFREG, unix.S_IFDIR:
	default:
		return entry{}, errNotRegular
	}
	if beforeOpen != nil {
		beforeOpen(name)
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	// A symlink put there since the look: ELOOP on Linux, EMLINK on FreeBSD
	// (open(2): "O_NOFOLLOW was specified and the target is a symbolic link").
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EMLINK) {
		return entry{}, errSymlink
	}
	if err != nil {
		return entry{}, err
	}
	e := entry{fd: fd}
	if err := unix.Fstat(fd, &e.st); err != nil {
		e.close()
		return entry{}, err
	}
	if t := e.st.Mode & unix.S_IFMT; t != unix.S_IFREG && t != unix.S_IFDIR {
		e.close()
		return entry{}, errNotRegular
	}
	if e.st.Dev != pre.Dev || e.st.Ino != pre.Ino {
		e.close()
		return entry{}, errors.New("replaced while being opened")
	}
	return e, nil
}

// openDirPath opens an absolute directory path (the manifest root's parent).
func openDirPath(path string) (entry, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return entry{}, &os.PathError{Op: "open", Path: path, Err: err}
	}
	e := entry{fd: fd}
	if err := unix.Fstat(fd, &e.st); err != nil {
		e.close()
		return entry{}, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	return e, nil
}

// readNames lists a directory through its descriptor (which stays open).
func readNames(e entry) ([]string, error) {
	fd, err := unix.Dup(e.fd)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "")
	defer f.Close()
	return f.Readdirnames(-1)
}

// insecureStat says why a manifest file or directory may not be trusted, and
// how to fix it, or returns "". Whoever can write a manifest can run anything
// as root on this host, so, like sshd's StrictModes, only root (or the user
// the service runs as) may be able to write one.
func insecureStat(display string, st *unix.Stat_t) string {
	what := "file"
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		what = "directory"
	}
	if st.Mode&0o022 != 0 {
		return fmt.Sprintf("insecure %s: writable by group or others, who could then run anything as root (fix: chmod go-w %s, or --insecure-manifests)", what, display)
	}
	if uid := int(st.Uid); uid != 0 && uid != os.Geteuid() {
		return fmt.Sprintf("insecure %s: owned by uid %d, neither root nor this service's user (fix: chown root %s, or --insecure-manifests)", what, uid, display)
	}
	return ""
}

// insecureAncestor says why a directory above the manifest root lets
// someone else replace what is below it, or returns "". It must be owned by
// root or the service's user and writable by nobody else; a sticky
// directory (/tmp) is accepted when root owns it, since others cannot
// rename entries they do not own there.
func insecureAncestor(root, dir string, st *unix.Stat_t) string {
	if uid := int(st.Uid); uid != 0 && uid != os.Geteuid() {
		return fmt.Sprintf("insecure manifest root %s: its ancestor %s is owned by uid %d, who could replace it (fix: chown root %s, or --insecure-manifests)", root, dir, uid, dir)
	}
	if st.Mode&0o022 != 0 && !(st.Mode&unix.S_ISVTX != 0 && st.Uid == 0) {
		return fmt.Sprintf("insecure manifest root %s: its ancestor %s is writable by group or others without the sticky bit, so they could replace it (fix: chmod go-w %s, or --insecure-manifests)", root, dir, dir)
	}
	return ""
}

// checkOpenedAncestors checks the directory dir (opened as e) and every
// directory above it up to /, found through ".." from the descriptor: the
// chain the opened directory really hangs from, whatever its path said.
// dir names them in messages.
func checkOpenedAncestors(root, dir string, e entry) error {
	cur := e
	defer func() {
		if cur.fd != e.fd {
			cur.close()
		}
	}()
	for range 4096 {
		if why := insecureAncestor(root, dir, &cur.st); why != "" {
			return errors.New(why)
		}
		fd, err := unix.Openat(cur.fd, "..", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("check manifest root %s: open parent of %s: %w", root, dir, err)
		}
		parent := entry{fd: fd}
		if err := unix.Fstat(fd, &parent.st); err != nil {
			parent.close()
			return fmt.Errorf("check manifest root %s: %w", root, err)
		}
		if parent.st.Dev == cur.st.Dev && parent.st.Ino == cur.st.Ino {
			parent.close()
			return nil // "/": its own parent
		}
		if cur.fd != e.fd {
			cur.close()
		}
		cur, dir = parent, filepath.Dir(dir)
	}
	return fmt.Errorf("check manifest root %s: too many ancestors", root)
}

// checkLinkAncestors checks, by path, the directories above the manifest
// root as given, where a git-sync symlink lives: whoever could write there
// could point the link elsewhere.
func checkLinkAncestors(root string) error {
	abs, err := filepath.Abs(root)
	if err != nil {
		return fmt.Errorf("check manifest root %s: %w", root, err)
	}
	for dir := filepath.Dir(abs); ; dir = filepath.Dir(dir) {
		var st unix.Stat_t
		if err := unix.Stat(dir, &st); err != nil {
			return fmt.Errorf("check manifest root %s: %w", root, &os.PathError{Op: "stat", Path: dir, Err: err})
		}
		if why := insecureAncestor(root, dir, &st); why != "" {
			return errors.New(why)
		}
		if dir == filepath.Dir(dir) {
			return nil
		}
	}
}
