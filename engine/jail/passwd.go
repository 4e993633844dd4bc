//go:build linux || freebsd

package jail

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// maxPasswdSize bounds what is read from an image's passwd files.
const maxPasswdSize = 4 << 20

// isUID reports whether user is a numeric uid.
func isUID(user string) bool {
	return user != "" && strings.Trim(user, "0123456789") == ""
}

// LookupUID returns the login name of uid in the jail root's own password
// database: jexec -U looks names up inside the jail (getpwnam(3) after
// jail_attach, i.e. the image's /etc/pwd.db, built from /etc/master.passwd),
// so a Docker-style numeric USER must become a name first. /etc/passwd is
// read when the image has no master.passwd. The files come from the image:
// they are opened without following symlinks out of the root, must be
// regular files and are read up to a bound.
func LookupUID(root, uid string) (string, error) {
	for _, f := range []string{"/etc/master.passwd", "/etc/passwd"} {
		data, err := ReadFileInRoot(root, f, maxPasswdSize)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("user %s: %w", uid, err)
		}
		if name, ok := passwdName(data, uid); ok {
			return name, nil
		}
		return "", fmt.Errorf("user %s: no entry with that uid in the image's %s (jexec -U needs a user name)", uid, f)
	}
	return "", fmt.Errorf("user %s: the image has no /etc/master.passwd or /etc/passwd to look the uid up in", uid)
}

// passwdName finds the first entry with uid in passwd(5) or master.passwd(5)
// text: the uid is the third colon-separated field in both.
func passwdName(data []byte, uid string) (string, bool) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxPasswdSize)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) >= 7 && f[2] == uid && f[0] != "" && !strings.HasPrefix(f[0], "-") && !strings.HasPrefix(f[0], "+") {
			return f[0], true
		}
	}
	return "", false
}

// ReadFileInRoot reads the regular file name (an absolute path inside the
// jail) under root, refusing symlinks on the way and in the last component,
// and anything that is not a regular file (a FIFO would block the reader).
// At most max bytes are read; a longer file is an error.
func ReadFileInRoot(root, name string, max int64) ([]byte, error) {
	cs, err := components(name)
	if err != nil || len(cs) == 0 {
		return nil, fmt.Errorf("read %q in %s: not a file path inside the root", name, root)
	}
	rootFD, err := openRoot(root)
	if err != nil {
		return nil, err
	}
	defer unix.Close(rootFD)
	dirFD, err := walkDirs(rootFD, root, cs[:len(cs)-1], false)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dirFD)
	host := root + name
	fd, err := unix.Openat(dirFD, cs[len(cs)-1], unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, &fs.PathError{Op: "open", Path: host, Err: fs.ErrNotExist}
		}
		return nil, explainWalkErr(host, err)
	}
	f := os.NewFile(uintptr(fd), host)
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", host)
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", host, err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", host, max)
	}
	return data, nil
}
