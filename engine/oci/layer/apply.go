// Package layer turns OCI image layers (tar streams) into directory trees
// and back: Apply unpacks one layer onto the tree of the layers below it,
// inside an os.Root; Diff writes the difference between two trees as a
// layer. It knows nothing of registries or ZFS.
package layer

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"sort"
	"strings"
	"syscall"
)

// Whiteout names of the OCI image layer spec.
const (
	whiteoutPrefix = ".wh."
	opaqueWhiteout = ".wh..wh..opq"
)

// Stats counts what applying one layer did.
type Stats struct {
	Entries   int
	Bytes     int64
	Removed   int
	Skipped   int // devices, sockets, unsafe links: warned about, not written
	Whiteouts int
}

// Apply unpacks one uncompressed layer tar onto the directory dir, which
// holds the layers below it, as the OCI image spec says: `.wh.NAME` removes
// NAME of the lower layers, `.wh..wh..opq` empties its directory of every
// lower-layer entry (wherever it appears in the tar: entries of this layer
// are kept), hard links may point at lower-layer files.
//
// The layer is untrusted. Every path is resolved inside dir through an
// os.Root, so no symlink, whether from a lower layer or this one, can lead a
// write outside; an existing entry is replaced, never written through; an
// absolute or `..` name is refused (the whole layer fails); a symlink whose
// relative target climbs out of the root is dropped with a warning, as
// go-containerregistry's mutate.Extract drops it; device nodes, FIFOs and
// sockets are skipped with a warning (a jail gets its devices from devfs).
// Ownership, modes with setuid/setgid/sticky, mtimes, xattrs and FreeBSD
// file flags are restored where the host supports them.
func Apply(dir string, r io.Reader, log *slog.Logger) (Stats, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return Stats{}, fmt.Errorf("apply layer: %w", err)
	}
	defer root.Close()
	a := &applier{root: root, log: log, written: map[string]bool{}, touched: map[string]bool{}}
	err = a.run(tar.NewReader(r))
	return a.stats, err
}

type applier struct {
	root  *os.Root
	log   *slog.Logger
	stats Stats
	// written are the paths this layer created; touched are their parent
	// directories: an opaque marker keeps both.
	written, touched map[string]bool
	// dirs get their mtime (and flags) once the layer is complete, since
	// creating entries in them changes it.
	dirs  []*tar.Header
	flags []*tar.Header
	buf   []byte
}

func (a *applier) run(tr *tar.Reader) error {
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("apply layer: read tar: %w", err)
		}
		name, err := cleanName(hdr.Name)
		if err != nil {
			return fmt.Errorf("apply layer: %w", err)
		}
		if name == "." {
			if hdr.Typeflag == tar.TypeDir {
				a.dirs = append(a.dirs, hdr)
			}
			continue
		}
		a.stats.Entries++
		if err := a.entry(name, hdr, tr); err != nil {
			return fmt.Errorf("apply layer: entry %s: %w", hdr.Name, err)
		}
	}
	// Deepest first so that a parent's mtime is set after its children's.
	sort.SliceStable(a.dirs, func(i, j int) bool {
		return strings.Count(a.dirs[i].Name, "/") > strings.Count(a.dirs[j].Name, "/")
	})
	for _, hdr := range a.dirs {
		name, _ := cleanName(hdr.Name)
		if err := a.root.Chtimes(name, hdr.ModTime, hdr.ModTime); err != nil && !errors.Is(err, fs.ErrNotExist) {
			a.log.Warn("layer: set directory time", "path", name, "err", err)
		}
	}
	// File flags last: schg would refuse every later change.
	for _, hdr := range a.flags {
		name, _ := cleanName(hdr.Name)
		if err := setFileFlags(a.root, name, hdr.PAXRecords[paxFflags]); err != nil {
			a.log.Warn("layer: set file flags", "path", name, "flags", hdr.PAXRecords[paxFflags], "err", err)
		}
	}
	return nil
}

// cleanName turns a tar name into a clean relative path, refusing absolute
// names and names that climb with `..`.
func cleanName(name string) (string, error) {
	if strings.HasPrefix(name, "/") || strings.Contains(name, "\\") {
		return "", fmt.Errorf("unsafe path %q: absolute", name)
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", fmt.Errorf("unsafe path %q: contains ..", name)
		}
	}
	c := path.Clean(name)
	if c == "" {
		c = "."
	}
	return c, nil
}

// linkTarget is a hard link's target as a path inside the root: a leading
// slash means the root (some archivers write it), `..` is refused.
func linkTarget(name string) (string, error) {
	return cleanName(strings.TrimLeft(name, "/"))
}

// escapes says whether a relative link target, taken from the link's own
// directory, climbs out of the root.
func escapes(name, target string) bool {
	if path.IsAbs(target) {
		return false
	}
	j := path.Clean(path.Join(path.Dir(name), target))
	return j == ".." || strings.HasPrefix(j, "../")
}

func (a *applier) entry(name string, hdr *tar.Header, tr io.Reader) error {
	dir, base := path.Split(name)
	dir = path.Clean(dir)
	if base == opaqueWhiteout {
		a.stats.Whiteouts++
		return a.opaque(dir)
	}
	if strings.HasPrefix(base, whiteoutPrefix) {
		a.stats.Whiteouts++
		target := path.Join(dir, base[len(whiteoutPrefix):])
		if a.written[target] {
			return nil // a whiteout hides lower layers only
		}
		return a.remove(target)
	}
	switch hdr.Typeflag {
	case tar.TypeSymlink:
		if escapes(name, hdr.Linkname) {
			a.skip(name, "symlink target "+hdr.Linkname+" leaves the root")
			return nil
		}
	case tar.TypeLink:
		target, err := linkTarget(hdr.Linkname)
		if err != nil || target == "." {
			a.skip(name, "hard link target "+hdr.Linkname+" is unsafe")
			return nil
		}
	case tar.TypeReg, tar.TypeRegA, tar.TypeDir, tar.TypeGNUSparse:
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		a.skip(name, "device nodes and FIFOs are not created (devfs provides devices)")
		return nil
	default:
		a.skip(name, fmt.Sprintf("unsupported entry type %q", hdr.Typeflag))
		return nil
	}
	if dir != "." {
		if err := a.mkdirAll(dir); err != nil {
			if isEscape(err) {
				a.skip(name, "its directory resolves outside the root through a symlink")
				return nil
			}
			return err
		}
	}
	if err := a.clear(name, hdr.Typeflag == tar.TypeDir); err != nil {
		if isEscape(err) {
			a.skip(name, "its directory resolves outside the root through a symlink")
			return nil
		}
		return err
	}
	mode := hdr.FileInfo().Mode()
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := a.root.Mkdir(name, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		a.dirs = append(a.dirs, hdr)
	case tar.TypeSymlink:
		if err := a.root.Symlink(hdr.Linkname, name); err != nil {
			return err
		}
	case tar.TypeLink:
		target, _ := linkTarget(hdr.Linkname)
		if err := a.root.Link(target, name); err != nil {
			if isEscape(err) || errors.Is(err, fs.ErrNotExist) {
				a.skip(name, "hard link target "+hdr.Linkname+" does not exist inside the root")
				return nil
			}
			return err
		}
		a.mark(name)
		return nil // a hard link shares its target's metadata
	default:
		f, err := a.root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY|syscall.O_NOFOLLOW, 0o600)
		if err != nil {
			return err
		}
		// Large writes: each one is a request to the file system, which on
		// zfs-fuse crosses into user space (io.Copy would write 32 KiB at a time).
		if a.buf == nil {
			a.buf = make([]byte, 1<<20)
		}
		n, err := io.CopyBuffer(struct{ io.Writer }{f}, tr, a.buf)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		a.stats.Bytes += n
	}
	a.mark(name)
	if err := a.root.Lchown(name, hdr.Uid, hdr.Gid); err != nil {
		return err
	}
	if hdr.Typeflag != tar.TypeSymlink {
		// After chown, which clears setuid/setgid.
		if err := a.root.Chmod(name, mode&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
			return err
		}
		if err := setXattrs(a.root, name, hdr, a.log); err != nil {
			return err
		}
		if hdr.Typeflag != tar.TypeDir {
			if err := a.root.Chtimes(name, hdr.ModTime, hdr.ModTime); err != nil {
				return err
			}
		}
	} else if err := lchtimes(a.root, name, hdr.ModTime); err != nil {
		a.log.Debug("layer: symlink time not set", "path", name, "err", err)
	}
	if hdr.PAXRecords[paxFflags] != "" {
		a.flags = append(a.flags, hdr)
	}
	return nil
}

func (a *applier) skip(name, why string) {
	a.stats.Skipped++
	a.log.Warn("layer: entry skipped", "path", name, "reason", why)
}

func (a *applier) mark(name string) {
	a.written[name] = true
	for d := path.Dir(name); d != "." && !a.touched[d]; d = path.Dir(d) {
		a.touched[d] = true
	}
}

// mkdirAll makes the missing parents of an entry (0755, root-owned, as
// mutate.Extract's consumers and tar do for implicit directories).
func (a *applier) mkdirAll(dir string) error {
	fi, err := a.root.Lstat(dir)
	if err == nil && fi.IsDir() {
		return nil
	}
	if err == nil && fi.Mode()&fs.ModeSymlink == 0 {
		// A lower-layer file where this layer has a directory: replace it.
		if err := a.remove(dir); err != nil {
			return err
		}
	}
	return a.root.MkdirAll(dir, 0o755)
}

// clear removes what is at name before a new entry is written there: any
// non-directory (never written through: a symlink is replaced, not
// followed), or a directory unless the new entry is a directory too.
func (a *applier) clear(name string, isDir bool) error {
	fi, err := a.root.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if isDir && fi.IsDir() {
		return nil
	}
	return a.remove(name)
}

func (a *applier) remove(name string) error {
	if _, err := a.root.Lstat(name); errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		if isEscape(err) {
			return nil // nothing of ours lies behind an escaping symlink
		}
		return err
	}
	clearFileFlags(a.root, name)
	if err := a.root.RemoveAll(name); err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	a.stats.Removed++
	return nil
}

// opaque removes every entry of dir that this layer did not write.
func (a *applier) opaque(dir string) error {
	if dir != "." {
		fi, err := a.root.Lstat(dir)
		if errors.Is(err, fs.ErrNotExist) || isEscape(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			return nil
		}
	}
	f, err := a.root.Open(dir)
	if err != nil {
		return err
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return fmt.Errorf("read directory %s: %w", dir, err)
	}
	for _, n := range names {
		p := path.Join(dir, n)
		if !a.written[p] && !a.touched[p] {
			if err := a.remove(p); err != nil {
				return err
			}
			continue
		}
		// Kept, but a directory of this layer may still hold lower entries.
		if fi, err := a.root.Lstat(p); err == nil && fi.IsDir() {
			if err := a.opaque(p); err != nil {
				return err
			}
		}
	}
	return nil
}

// isEscape recognises os.Root's refusal of a path leaving the root.
func isEscape(err error) bool {
	return err != nil && strings.Contains(err.Error(), "path escapes from parent")
}
