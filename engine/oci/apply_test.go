package oci

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

func requireRootUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("applying ownership needs root")
	}
}

// TestApplyMatchesExtract applies the spec image's layers one by one onto a
// directory and compares the tree with mutate.Extract's flattening of the
// same image; nothing may appear outside the directory.
func TestApplyMatchesExtract(t *testing.T) {
	requireRootUser(t)
	outer := t.TempDir()
	dir := filepath.Join(outer, "a", "b", "rootfs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var layers []v1.Layer
	for i, tb := range specLayers(t, "") {
		layers = append(layers, layerOf(t, tb))
		st, err := Apply(dir, bytes.NewReader(tb), nil)
		if err != nil {
			t.Fatalf("layer %d: %v", i+1, err)
		}
		if i == 2 && (st.Skipped != 1 || st.Whiteouts != 2) {
			t.Errorf("layer 3 stats = %+v, want 1 skipped (evil symlink), 2 whiteouts", st)
		}
	}
	img := imageOf(t, "linux", "amd64", v1.Config{}, layers...)
	compareTrees(t, treeOfDir(t, dir), treeOfExtract(t, img))
	// Spot checks that say what the comparison means.
	got := treeOfDir(t, dir)
	for _, p := range []string{"data/sub/lower.txt", "data/del.txt", "data/old", "data/old/x", "data/replace/child"} {
		if _, ok := got[p]; ok {
			t.Errorf("%s should be gone", p)
		}
	}
	for _, p := range []string{"data/sub/new.txt", "data/sub/newdir", "evil/pwned"} {
		if _, ok := got[p]; !ok {
			t.Errorf("%s should exist", p)
		}
	}
	if got["data/suid"].Mode&os.ModeSetuid == 0 || got["data/sgid"].Mode&os.ModeSetgid == 0 || got["data/owned"].UID != 1000 {
		t.Errorf("setuid/setgid/owner lost: %v %v %v", got["data/suid"], got["data/sgid"], got["data/owned"])
	}
	var sa, sh unix.Stat_t
	_ = unix.Stat(filepath.Join(dir, "data/a.txt"), &sa)
	_ = unix.Stat(filepath.Join(dir, "data/hardlink"), &sh)
	if sa.Ino != sh.Ino {
		t.Errorf("data/hardlink is not a hard link of data/a.txt")
	}
	fi, err := os.Stat(filepath.Join(dir, "data/mod.txt"))
	if err != nil || !fi.ModTime().Equal(testTime) {
		t.Errorf("mtime of data/mod.txt = %v, want %v (%v)", fi.ModTime(), testTime, err)
	}
	// Nothing outside: outer holds only a/b/rootfs.
	_ = filepath.Walk(outer, func(p string, info os.FileInfo, err error) error {
		if err == nil && !strings.HasPrefix(p, dir) && p != outer && p != filepath.Join(outer, "a") && p != filepath.Join(outer, "a", "b") {
			t.Errorf("written outside the root: %s", p)
		}
		return nil
	})
}

// TestApplyThroughLowerSymlink: a lower layer's symlink to the host's /etc
// must not lead a later entry there: the entry is skipped, the host untouched.
func TestApplyThroughLowerSymlink(t *testing.T) {
	requireRootUser(t)
	outer := t.TempDir()
	dir := filepath.Join(outer, "rootfs")
	os.Mkdir(dir, 0o755)
	victim := filepath.Join(outer, "victim")
	os.Mkdir(victim, 0o755)
	l1 := tarOf(t, "", []entry{symE("etc", victim), symE("up", "../victim"), fileE("plain", "x")})
	l2 := tarOf(t, "", []entry{fileE("etc/passwd", "root::0:0::/:/bin/sh\n"), fileE("up/file", "no"), symE("plain", victim+"/x"), fileE("plain", "replaced, not written through")})
	for _, l := range [][]byte{l1, l2} {
		if _, err := Apply(dir, bytes.NewReader(l), nil); err != nil {
			t.Fatal(err)
		}
	}
	entries, _ := os.ReadDir(victim)
	if len(entries) != 0 {
		t.Fatalf("a layer wrote outside its root, into %s: %v", victim, entries)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "plain")); string(b) != "replaced, not written through" {
		t.Errorf("plain = %q", b)
	}
}

// TestApplyRefusesUnsafeNames: absolute and `..` names fail the layer.
func TestApplyRefusesUnsafeNames(t *testing.T) {
	for _, name := range []string{"/etc/passwd", "../escape", "a/../../escape"} {
		dir := t.TempDir()
		_, err := Apply(dir, bytes.NewReader(tarOf(t, "", []entry{fileE(name, "x")})), nil)
		if err == nil || !strings.Contains(err.Error(), "unsafe path") {
			t.Errorf("%s: err = %v, want unsafe path", name, err)
		}
	}
}

// TestApplySkipsDevices: device nodes and FIFOs are not created.
func TestApplySkipsDevices(t *testing.T) {
	dir := t.TempDir()
	st, err := Apply(dir, bytes.NewReader(tarOf(t, "", []entry{
		{Name: "null", Type: '3', Mode: 0o666}, {Name: "fifo", Type: '6', Mode: 0o644}, fileE("ok", "y"),
	})), nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Skipped != 2 {
		t.Errorf("skipped = %d, want 2", st.Skipped)
	}
	if _, err := os.Lstat(filepath.Join(dir, "null")); !os.IsNotExist(err) {
		t.Errorf("device node created: %v", err)
	}
}

// TestApplyXattrs: SCHILY.xattr records become extended attributes.
func TestApplyXattrs(t *testing.T) {
	requireRootUser(t)
	dir := t.TempDir()
	e := fileE("f", "x")
	e.PAX = map[string]string{"SCHILY.xattr.user.zocker": "yes", paxFflags: "uchg"}
	if _, err := Apply(dir, bytes.NewReader(tarOf(t, "", []entry{e})), nil); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	n, err := unix.Getxattr(filepath.Join(dir, "f"), "user.zocker", buf)
	if err != nil {
		t.Skipf("the temporary directory has no user xattrs: %v", err)
	}
	if string(buf[:n]) != "yes" {
		t.Errorf("xattr = %q", buf[:n])
	}
}

// TestParseFileFlags: chflags(1) names, as bsdtar records them.
func TestParseFileFlags(t *testing.T) {
	for _, c := range []struct {
		in   string
		want uint32
		err  bool
	}{
		{"schg", 0x20000, false},
		{"schg,uarch", 0x20800, false},
		{"uchg nodump", 0x3, false},
		{"sunlnk,sappnd", 0x140000, false},
		{"dump", 0, false},
		{"noschg", 0, false},
		{"bogus,schg", 0x20000, true},
	} {
		got, err := parseFileFlags(c.in)
		if got != c.want || (err != nil) != c.err {
			t.Errorf("parseFileFlags(%q) = %#x, %v; want %#x, error %v", c.in, got, err, c.want, c.err)
		}
	}
}

// TestFormatFileFlags: the names bsdtar writes, and they parse back.
func TestFormatFileFlags(t *testing.T) {
	for _, bits := range []uint32{0x20000, 0x20800, 0x3, 0x140000, 0} {
		s := formatFileFlags(bits)
		back, err := parseFileFlags(s)
		if err != nil || back != bits {
			t.Errorf("formatFileFlags(%#x) = %q, parses back to %#x, %v", bits, s, back, err)
		}
	}
	if got := formatFileFlags(0x20802); got != "schg,uarch,uchg" {
		t.Errorf("formatFileFlags(schg|uarch|uchg) = %q", got)
	}
}
