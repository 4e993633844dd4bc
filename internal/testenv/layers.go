package testenv

import (
	"archive/tar"
	"bytes"
	"os"
	"path"
	"testing"
	"time"
)

// TarEntry is one entry of a test layer.
type TarEntry struct {
	Name, Body, Link string
	Type             byte
	Mode             int64
	UID, GID         int
	PAX              map[string]string
}

// Dir, File, Symlink, Hardlink, Whiteout and Opaque make TarEntries.
func Dir(name string, mode int64) TarEntry {
	return TarEntry{Name: name, Type: tar.TypeDir, Mode: mode}
}

// File is a regular file, mode 0644.
func File(name, body string) TarEntry {
	return TarEntry{Name: name, Body: body, Type: tar.TypeReg, Mode: 0o644}
}

// Symlink is a symbolic link to target.
func Symlink(name, target string) TarEntry {
	return TarEntry{Name: name, Link: target, Type: tar.TypeSymlink, Mode: 0o777}
}

// Hardlink is a hard link to target (a path of the image).
func Hardlink(name, target string) TarEntry {
	return TarEntry{Name: name, Link: target, Type: tar.TypeLink, Mode: 0o644}
}

// Whiteout hides dir/name of the lower layers.
func Whiteout(dir, name string) TarEntry { return File(path.Join(dir, ".wh."+name), "") }

// Opaque hides every lower-layer entry of dir.
func Opaque(dir string) TarEntry { return File(path.Join(dir, ".wh..wh..opq"), "") }

// WithMode and WithOwner change an entry.
func WithMode(e TarEntry, mode int64) TarEntry { e.Mode = mode; return e }

// WithOwner sets an entry's owner.
func WithOwner(e TarEntry, uid, gid int) TarEntry { e.UID, e.GID = uid, gid; return e }

// LayerTime is the mtime of every TarEntry.
var LayerTime = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

// Tar writes the files of base (a directory, or "") and then entries as an
// uncompressed tar.
func Tar(t testing.TB, base string, entries []TarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if base != "" {
		if err := tw.AddFS(os.DirFS(base)); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range entries {
		h := &tar.Header{Name: e.Name, Typeflag: e.Type, Mode: e.Mode, Uid: e.UID, Gid: e.GID,
			Linkname: e.Link, Size: int64(len(e.Body)), ModTime: LayerTime, PAXRecords: e.PAX, Format: tar.FormatPAX}
		if e.Type != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			if _, err := tw.Write([]byte(e.Body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// SpecLayers are the three uncompressed layers of the OCI spec test image
// (issue 13): 1 adds (after the files of base, e.g. a busybox root), 2
// modifies, deletes with a whiteout, hard-links to a lower-layer file and
// replaces a directory by a file, 3 places an opaque marker after new
// entries of the same directory, whites out a directory, and has a symlink
// `evil -> ../../..` followed by an entry `evil/pwned`.
func SpecLayers(t testing.TB, base string) [][]byte {
	l1 := []TarEntry{
		Dir("data", 0o755),
		File("data/a.txt", "alpha\n"),
		File("data/mod.txt", "version 1\n"),
		File("data/del.txt", "deleted in layer 2\n"),
		Dir("data/old", 0o750),
		File("data/old/x", "old dir\n"),
		Dir("data/sub", 0o755),
		File("data/sub/lower.txt", "hidden by the opaque marker\n"),
		WithMode(File("data/suid", "setuid\n"), 0o4755),
		WithMode(File("data/sgid", "setgid\n"), 0o2750),
		WithOwner(File("data/owned", "owned by 1000\n"), 1000, 1001),
		Dir("data/replace", 0o755),
		File("data/replace/child", "dir replaced by a file\n"),
	}
	l2 := []TarEntry{
		WithMode(File("data/mod.txt", "version 2, modified\n"), 0o600),
		Whiteout("data", "del.txt"),
		Hardlink("data/hardlink", "data/a.txt"),
		Symlink("data/link", "a.txt"),
		File("data/replace", "now a file\n"),
	}
	l3 := []TarEntry{
		File("data/sub/new.txt", "new in layer 3\n"),
		Dir("data/sub/newdir", 0o711),
		Opaque("data/sub"),
		Whiteout("data", "old"),
		Symlink("evil", "../../.."),
		File("evil/pwned", "must stay inside\n"),
	}
	return [][]byte{Tar(t, base, l1), Tar(t, "", l2), Tar(t, "", l3)}
}
