package zfs

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
	"github.com/zocker-reconcile/zocker-reconcile/image"
)

// Change is one path that differs between a container and its image, in
// Docker's diff words: A added, C changed, D deleted.
type Change struct {
	Kind string `json:"kind"`
	Path string `json:"path"`
}

// Change kinds.
const (
	Added   = "A"
	Changed = "C"
	Deleted = "D"
)

// Diff lists what changed in container name's clone relative to its image,
// sorted by path. It runs `zfs diff -FH IMAGE@image CONTAINER` where ZFS has
// it (OpenZFS, FreeBSD); zfs-fuse has no diff, and there the two mounted
// trees are compared (CompareTrees).
func (s *Store) Diff(ctx context.Context, name string) ([]Change, error) {
	if err := image.ValidName("container", name); err != nil {
		return nil, err
	}
	st, err := s.Observe(ctx)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(st.Containers, func(c Container) bool { return c.ContainerName == name })
	if i < 0 {
		return nil, fmt.Errorf("diff container %s: %w", name, ErrNotFound)
	}
	c := st.Containers[i]
	img, ok := st.Image(c.ImageID)
	if !ok {
		return nil, fmt.Errorf("diff container %s: image %s: %w", name, c.ImageID, ErrNotFound)
	}
	out, err := s.r.Run(ctx, runner.Cmd{Argv: []string{Bin(), "diff", "-FH", img.Name + "@" + ImageSnapshot, c.Name}, Timeout: CommandTimeout})
	if err == nil {
		return ParseZFSDiff(out, c.Mountpoint)
	}
	if msg := stderrOf(err); !strings.Contains(msg, "unrecognized command") && !strings.Contains(msg, "invalid command") {
		return nil, fmt.Errorf("diff container %s: %w", name, err)
	}
	if c.Mountpoint == "" || img.Mountpoint == "" {
		return nil, fmt.Errorf("diff container %s: the clone or the image is not mounted", name)
	}
	changes, err := CompareTrees(img.Mountpoint, c.Mountpoint)
	if err != nil {
		return nil, fmt.Errorf("diff container %s: %w", name, err)
	}
	return changes, nil
}

// ParseZFSDiff reads `zfs diff -FH` output: CHANGE TAB TYPE TAB PATH [TAB
// NEWPATH], CHANGE one of - + M R, paths absolute under mountpoint with
// unusual bytes escaped as \ooo. Renames become a deletion and an addition;
// the clone's root directory itself is left out, as Docker does.
func ParseZFSDiff(out []byte, mountpoint string) ([]Change, error) {
	mountpoint = strings.TrimSuffix(mountpoint, "/")
	rel := func(p string) (string, error) {
		p, err := unescapeZFS(p)
		if err != nil {
			return "", err
		}
		r, ok := strings.CutPrefix(p, mountpoint)
		if !ok || (r != "" && r[0] != '/') {
			return "", fmt.Errorf("path %q is not under %s", p, mountpoint)
		}
		if r == "" {
			r = "/"
		}
		return r, nil
	}
	var changes []Change
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) < 3 {
			return nil, fmt.Errorf("parse zfs diff output: unexpected line %q", line)
		}
		p, err := rel(f[2])
		if err != nil {
			return nil, fmt.Errorf("parse zfs diff output: %w", err)
		}
		switch f[0] {
		case "+":
			changes = append(changes, Change{Added, p})
		case "-":
			changes = append(changes, Change{Deleted, p})
		case "M":
			changes = append(changes, Change{Changed, p})
		case "R":
			if len(f) < 4 {
				return nil, fmt.Errorf("parse zfs diff output: rename without a new path: %q", line)
			}
			np, err := rel(f[3])
			if err != nil {
				return nil, fmt.Errorf("parse zfs diff output: %w", err)
			}
			changes = append(changes, Change{Deleted, p}, Change{Added, np})
		default:
			return nil, fmt.Errorf("parse zfs diff output: unknown change %q", f[0])
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	changes = slices.DeleteFunc(changes, func(c Change) bool { return c.Path == "/" })
	return sortChanges(changes), nil
}

// unescapeZFS undoes zfs diff's \ooo escapes (octal bytes).
func unescapeZFS(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+4 > len(s) {
			return "", fmt.Errorf("bad escape in %q", s)
		}
		n, err := strconv.ParseUint(s[i+1:i+4], 8, 8)
		if err != nil {
			return "", fmt.Errorf("bad escape in %q", s)
		}
		b.WriteByte(byte(n))
		i += 3
	}
	return b.String(), nil
}

// sortChanges sorts by path (then kind) and drops repeats.
func sortChanges(cs []Change) []Change {
	slices.SortFunc(cs, func(a, b Change) int {
		if c := strings.Compare(a.Path, b.Path); c != 0 {
			return c
		}
		return strings.Compare(a.Kind, b.Kind)
	})
	return slices.Compact(cs)
}

// entry is what CompareTrees compares of one path.
type entry struct {
	mode     fs.FileMode
	uid, gid uint32
	size     int64
	mtime    int64 // nanoseconds
	link     string
	dev      uint64 // device number of device nodes
}

// CompareTrees lists what differs between the tree top and the tree base,
// as ZFS's diff would: a path only in top is added, only in base deleted,
// in both but with another type, mode, owner, size, link target or device
// number changed; a regular file that equals in all those but not in mtime
// is changed when its content hash differs. A directory is changed when its
// own attributes differ or an entry was added or removed in it. Nothing is
// followed: symbolic links are compared as links, and only regular files
// are opened (O_NOFOLLOW, non-blocking), so what ran in the container
// cannot make this read anything outside the two trees, or block.
func CompareTrees(base, top string) ([]Change, error) {
	// Every path below is resolved inside an os.Root: a directory or a
	// symbolic link swapped in by what runs in the container can never
	// take a read outside the two trees.
	br, err := os.OpenRoot(base)
	if err != nil {
		return nil, err
	}
	defer br.Close()
	tr, err := os.OpenRoot(top)
	if err != nil {
		return nil, err
	}
	defer tr.Close()
	var changes []Change
	if err := compareDir(br, tr, "/", &changes); err != nil {
		return nil, err
	}
	return sortChanges(changes), nil
}

// inRoot turns a change path ("/etc/motd", "/") into a path for os.Root.
func inRoot(p string) string {
	if p = strings.TrimPrefix(p, "/"); p == "" {
		return "."
	}
	return p
}

func compareDir(base, top *os.Root, rel string, out *[]Change) error {
	bnames, err := readNames(base, rel)
	if err != nil {
		return err
	}
	tnames, err := readNames(top, rel)
	if err != nil {
		return err
	}
	entriesChanged := false
	for name := range bnames {
		if _, ok := tnames[name]; !ok {
			entriesChanged = true
			if err := walkAll(base, path.Join(rel, name), Deleted, out); err != nil {
				return err
			}
		}
	}
	for name := range tnames {
		p := path.Join(rel, name)
		if _, ok := bnames[name]; !ok {
			entriesChanged = true
			if err := walkAll(top, p, Added, out); err != nil {
				return err
			}
			continue
		}
		be, err := stat(base, p)
		if err != nil {
			return err
		}
		te, err := stat(top, p)
		if err != nil {
			return err
		}
		if be.mode.Type() != te.mode.Type() {
			*out = append(*out, Change{Deleted, p}, Change{Added, p})
			continue
		}
		if te.mode.IsDir() {
			if be.mode != te.mode || be.uid != te.uid || be.gid != te.gid {
				*out = append(*out, Change{Changed, p})
			}
			if err := compareDir(base, top, p, out); err != nil {
				return err
			}
			continue
		}
		changed, err := fileChanged(base, top, p, be, te)
		if err != nil {
			return err
		}
		if changed {
			*out = append(*out, Change{Changed, p})
		}
	}
	if entriesChanged && rel != "/" {
		*out = append(*out, Change{Changed, rel})
	}
	return nil
}

func fileChanged(base, top *os.Root, p string, be, te entry) (bool, error) {
	if be.mode != te.mode || be.uid != te.uid || be.gid != te.gid || be.size != te.size || be.link != te.link || be.dev != te.dev {
		return true, nil
	}
	if be.mtime == te.mtime || !te.mode.IsRegular() {
		return false, nil
	}
	bh, err := hashFile(base, p)
	if err != nil {
		return false, err
	}
	th, err := hashFile(top, p)
	if err != nil {
		return false, err
	}
	return bh != th, nil
}

// walkAll records p and, for a directory, everything below it.
func walkAll(root *os.Root, p, kind string, out *[]Change) error {
	*out = append(*out, Change{kind, p})
	e, err := stat(root, p)
	if err != nil || !e.mode.IsDir() {
		return err
	}
	names, err := readNames(root, p)
	if err != nil {
		return err
	}
	for n := range names {
		if err := walkAll(root, path.Join(p, n), kind, out); err != nil {
			return err
		}
	}
	return nil
}

func readNames(root *os.Root, dir string) (map[string]struct{}, error) {
	f, err := root.OpenFile(inRoot(dir), os.O_RDONLY|unix.O_NOFOLLOW|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, fmt.Errorf("read directory %s: %w", dir, err)
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("read directory %s: %w", dir, err)
	}
	m := make(map[string]struct{}, len(names))
	for _, n := range names {
		m[n] = struct{}{}
	}
	return m, nil
}

func stat(root *os.Root, p string) (entry, error) {
	fi, err := root.Lstat(inRoot(p))
	if err != nil {
		return entry{}, fmt.Errorf("stat %s: %w", p, err)
	}
	e := entry{mode: fi.Mode(), size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		e.uid, e.gid, e.dev = st.Uid, st.Gid, uint64(st.Rdev)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		if e.link, err = root.Readlink(inRoot(p)); err != nil {
			return entry{}, fmt.Errorf("read link %s: %w", p, err)
		}
	}
	if fi.IsDir() {
		e.size, e.mtime = 0, 0 // entries decide, not the directory's size or time
	}
	return e, nil
}

func hashFile(root *os.Root, p string) ([32]byte, error) {
	var sum [32]byte
	f, err := root.OpenFile(inRoot(p), os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return sum, fmt.Errorf("open %s: %w", p, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return sum, errors.Join(fmt.Errorf("open %s: not a regular file any more", p), err)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return sum, fmt.Errorf("read %s: %w", p, err)
	}
	copy(sum[:], h.Sum(nil))
	return sum, nil
}
