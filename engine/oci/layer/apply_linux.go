package layer

import (
	"os"

	"golang.org/x/sys/unix"
)

func fsetxattr(fd int, attr string, value []byte) error {
	return unix.Fsetxattr(fd, attr, value, 0)
}

// setFileFlags: Linux has no BSD file flags; a FreeBSD image's flags are
// dropped here (it cannot run on Linux anyway).
func setFileFlags(root *os.Root, name, flags string) error {
	_, err := parseFileFlags(flags)
	return err
}

func clearFileFlags(root *os.Root, name string) {}
