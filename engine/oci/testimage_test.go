package oci

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// entry is one tar entry of a test layer.
type entry struct {
	name, body, link string
	typ              byte
	mode             int64
	uid, gid         int
	pax              map[string]string
}

func dirE(name string, mode int64) entry { return entry{name: name, typ: tar.TypeDir, mode: mode} }
func fileE(name, body string) entry {
	return entry{name: name, body: body, typ: tar.TypeReg, mode: 0o644}
}
func symE(name, target string) entry {
	return entry{name: name, link: target, typ: tar.TypeSymlink, mode: 0o777}
}
func hardE(name, target string) entry {
	return entry{name: name, link: target, typ: tar.TypeLink, mode: 0o644}
}
func whiteoutE(dir, name string) entry      { return fileE(path.Join(dir, ".wh."+name), "") }
func opaqueE(dir string) entry              { return fileE(path.Join(dir, ".wh..wh..opq"), "") }
func withMode(e entry, mode int64) entry    { e.mode = mode; return e }
func withOwner(e entry, uid, gid int) entry { e.uid, e.gid = uid, gid; return e }

var testTime = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

// tarOf writes entries (after the files of base, when base is a directory).
func tarOf(t testing.TB, base string, entries []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if base != "" {
		if err := tw.AddFS(os.DirFS(base)); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Uid: e.uid, Gid: e.gid,
			Linkname: e.link, Size: int64(len(e.body)), ModTime: testTime, PAXRecords: e.pax, Format: tar.FormatPAX}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// layerOf makes a gzip layer of uncompressed tar bytes.
func layerOf(t testing.TB, tarBytes []byte) v1.Layer {
	t.Helper()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(tarBytes)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// imageOf makes an image of layers with a config for platform os/arch.
func imageOf(t testing.TB, osName, arch string, cfg v1.Config, layers ...v1.Layer) v1.Image {
	t.Helper()
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.AppendLayers(base, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Config = osName, arch, cfg
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// specLayers are the three layers of the spec test image: add; modify and
// delete; opaque directory after new entries, a hard link to a lower-layer
// file and a symlink climbing out followed by an entry through it.
func specLayers(t testing.TB, base string) [][]byte {
	l1 := []entry{
		dirE("data", 0o755),
		fileE("data/a.txt", "alpha\n"),
		fileE("data/mod.txt", "version 1\n"),
		fileE("data/del.txt", "deleted in layer 2\n"),
		dirE("data/old", 0o750),
		fileE("data/old/x", "old dir\n"),
		dirE("data/sub", 0o755),
		fileE("data/sub/lower.txt", "hidden by the opaque marker\n"),
		withMode(fileE("data/suid", "setuid\n"), 0o4755),
		withMode(fileE("data/sgid", "setgid\n"), 0o2750),
		withOwner(fileE("data/owned", "owned by 1000\n"), 1000, 1001),
		dirE("data/replace", 0o755),
		fileE("data/replace/child", "dir replaced by a file\n"),
	}
	l2 := []entry{
		withMode(fileE("data/mod.txt", "version 2, modified\n"), 0o600),
		whiteoutE("data", "del.txt"),
		hardE("data/hardlink", "data/a.txt"),
		symE("data/link", "a.txt"),
		fileE("data/replace", "now a file\n"),
	}
	l3 := []entry{
		fileE("data/sub/new.txt", "new in layer 3\n"),
		dirE("data/sub/newdir", 0o711),
		opaqueE("data/sub"),
		whiteoutE("data", "old"),
		symE("evil", "../../.."),
		fileE("evil/pwned", "must stay inside\n"),
	}
	return [][]byte{tarOf(t, base, l1), tarOf(t, "", l2), tarOf(t, "", l3)}
}

// node is what the tree comparison looks at.
type node struct {
	Type     string
	Mode     fs.FileMode
	UID, GID int
	Size     int64
	SHA256   string
	Link     string
}

func (n node) String() string {
	return fmt.Sprintf("%s %v %d:%d size=%d sha=%.12s link=%q", n.Type, n.Mode, n.UID, n.GID, n.Size, n.SHA256, n.Link)
}

// treeOfDir walks a directory without following symlinks.
func treeOfDir(t testing.TB, dir string) map[string]node {
	t.Helper()
	out := map[string]node{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		n := node{Mode: fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky), UID: int(st.Uid), GID: int(st.Gid)}
		switch {
		case fi.IsDir():
			n.Type = "dir"
		case fi.Mode()&fs.ModeSymlink != 0:
			n.Type, n.Mode = "symlink", 0
			n.Link, _ = os.Readlink(p)
		case fi.Mode().IsRegular():
			n.Type, n.Size = "file", fi.Size()
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			n.SHA256 = sum(b)
		default:
			n.Type = "other"
		}
		out[filepath.ToSlash(rel)] = n
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// treeOfExtract is the tree go-containerregistry's mutate.Extract gives for
// img: hard links take their target's attributes, implicit parent
// directories are 0755 root:root.
func treeOfExtract(t testing.TB, img v1.Image) map[string]node {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	out := map[string]node{}
	links := map[string]string{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := path.Clean(h.Name)
		if name == "." {
			continue
		}
		if _, seen := out[name]; seen {
			continue
		}
		n := node{Mode: h.FileInfo().Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky), UID: h.Uid, GID: h.Gid}
		switch h.Typeflag {
		case tar.TypeDir:
			n.Type = "dir"
		case tar.TypeSymlink:
			n.Type, n.Mode, n.Link = "symlink", 0, h.Linkname
		case tar.TypeLink:
			links[name] = path.Clean(h.Linkname)
			continue
		case tar.TypeReg:
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			n.Type, n.Size, n.SHA256 = "file", int64(len(b)), sum(b)
		default:
			n.Type = "other"
		}
		out[name] = n
	}
	for name, target := range links {
		out[name] = out[target]
	}
	for name := range out {
		for d := path.Dir(name); d != "."; d = path.Dir(d) {
			if _, ok := out[d]; !ok {
				out[d] = node{Type: "dir", Mode: 0o755}
			}
		}
	}
	return out
}

// compareTrees reports every difference, sorted.
func compareTrees(t testing.TB, got, want map[string]node) {
	t.Helper()
	var diffs []string
	for p, w := range want {
		g, ok := got[p]
		switch {
		case !ok:
			diffs = append(diffs, "missing "+p+": want "+w.String())
		case g != w:
			diffs = append(diffs, "differs "+p+":\n   got  "+g.String()+"\n   want "+w.String())
		}
	}
	for p, g := range got {
		if _, ok := want[p]; !ok {
			diffs = append(diffs, "extra "+p+": "+g.String())
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		t.Errorf("applied tree differs from mutate.Extract:\n%s", strings.Join(diffs, "\n"))
	}
}
