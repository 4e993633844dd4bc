//go:build linux || freebsd

package layer

import (
	"archive/tar"
	"fmt"
	"log/slog"
	"os"
	"path"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// paxXattr prefixes a PAX record holding an extended attribute.
const paxXattr = "SCHILY.xattr."

// openNoFollow opens name inside root without following a final symlink and
// without blocking (a FIFO is never opened here, but be safe).
func openNoFollow(root *os.Root, name string) (*os.File, error) {
	return root.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
}

// setXattrs restores the extended attributes of a regular file or directory
// through a descriptor opened inside the root (never by a path the host
// would resolve).
func setXattrs(root *os.Root, name string, hdr *tar.Header, log *slog.Logger) error {
	var keys []string
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, paxXattr) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	sort.Strings(keys)
	f, err := openNoFollow(root, name)
	if err != nil {
		return fmt.Errorf("open for xattrs: %w", err)
	}
	defer f.Close()
	for _, k := range keys {
		attr := strings.TrimPrefix(k, paxXattr)
		if err := fsetxattr(int(f.Fd()), attr, []byte(hdr.PAXRecords[k])); err != nil {
			log.Warn("layer: extended attribute not set", "path", name, "xattr", attr, "err", err)
		}
	}
	return nil
}

// lchtimes sets a symlink's own mtime: the parent is opened inside the root
// and the link named relative to it with AT_SYMLINK_NOFOLLOW.
func lchtimes(root *os.Root, name string, t time.Time) error {
	d, err := root.Open(path.Dir(name))
	if err != nil {
		return err
	}
	defer d.Close()
	ts := unix.NsecToTimespec(t.UnixNano())
	return unix.UtimesNanoAt(int(d.Fd()), path.Base(name), []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
}
