//go:build freebsd

package jail

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// mountedAt reports the file system type mounted exactly at p (statfs(2):
// f_mntonname is p itself), or on=false when p is not a mount point or does
// not exist.
func mountedAt(p string) (fstype string, on bool, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(p, &st); err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return "", false, nil
		}
		return "", false, fmt.Errorf("statfs %s: %w", p, err)
	}
	if unix.ByteSliceToString(st.Mntonname[:]) != p {
		return "", false, nil
	}
	return unix.ByteSliceToString(st.Fstypename[:]), true, nil
}
