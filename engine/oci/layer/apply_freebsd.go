package layer

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// fsetxattr maps a Linux-style "namespace.name" attribute, as tar archives
// carry it, onto extattr_set_fd(2)'s namespaces.
func fsetxattr(fd int, attr string, value []byte) error {
	ns, name, ok := strings.Cut(attr, ".")
	if !ok {
		return fmt.Errorf("attribute %q has no namespace", attr)
	}
	var n int
	switch ns {
	case "user":
		n = unix.EXTATTR_NAMESPACE_USER
	case "system":
		n = unix.EXTATTR_NAMESPACE_SYSTEM
	default:
		return fmt.Errorf("attribute namespace %q has no FreeBSD equivalent", ns)
	}
	var p uintptr
	if len(value) > 0 {
		p = uintptr(unsafe.Pointer(&value[0]))
	}
	_, err := unix.ExtattrSetFd(fd, n, name, p, len(value))
	return err
}

// setFileFlags sets chflags(2) flags through a descriptor opened inside the
// root; a symlink's flags are left alone (no lchflagsat).
func setFileFlags(root *os.Root, name, flags string) error {
	bits, err := parseFileFlags(flags)
	if bits == 0 {
		return err
	}
	f, ferr := openNoFollow(root, name)
	if ferr != nil {
		return ferr
	}
	defer f.Close()
	if ferr := unix.Fchflags(int(f.Fd()), int(bits)); ferr != nil {
		return ferr
	}
	return err
}

// clearFileFlags clears the flags of name and everything below it, so that
// a file a lower layer made immutable (schg) can be replaced or whited out.
func clearFileFlags(root *os.Root, name string) {
	_ = fs.WalkDir(root.FS(), name, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		if f, err := openNoFollow(root, path.Clean(p)); err == nil {
			_ = unix.Fchflags(int(f.Fd()), 0)
			f.Close()
		}
		return nil
	})
}
