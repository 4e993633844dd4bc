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

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/zocker-reconcile/zocker-reconcile/internal/testenv"
)

type entry = testenv.TarEntry

var (
	dirE     = testenv.Dir
	fileE    = testenv.File
	symE     = testenv.Symlink
	withMode = testenv.WithMode
	tarOf    = testenv.Tar
	testTime = testenv.LayerTime
)

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

func specLayers(t testing.TB, base string) [][]byte { return testenv.SpecLayers(t, base) }

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
