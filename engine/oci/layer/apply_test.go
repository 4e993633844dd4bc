package layer

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/zocker-reconcile/zocker-reconcile/internal/testenv"
)

func requireRootUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("applying ownership needs root")
	}
}

type entry = testenv.TarEntry

var (
	fileE = testenv.File
	symE  = testenv.Symlink
	tarOf = testenv.Tar
)

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

// TestApplyHardLinks: a hard link to a lower-layer file, written with or
// without a leading slash, shares its inode; one climbing out is skipped.
func TestApplyHardLinks(t *testing.T) {
	requireRootUser(t)
	dir := t.TempDir()
	for _, l := range [][]byte{
		tarOf(t, "", []entry{fileE("etc/passwd", "root::0:0\n")}),
		tarOf(t, "", []entry{testenv.Hardlink("a", "etc/passwd"), testenv.Hardlink("b", "/etc/passwd"), testenv.Hardlink("c", "../../etc/passwd")}),
	} {
		if _, err := Apply(dir, bytes.NewReader(l), nil); err != nil {
			t.Fatal(err)
		}
	}
	var want unix.Stat_t
	if err := unix.Lstat(filepath.Join(dir, "etc/passwd"), &want); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a", "b"} {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(dir, n), &st); err != nil || st.Ino != want.Ino {
			t.Errorf("%s is not a hard link of etc/passwd: %v", n, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, "c")); !os.IsNotExist(err) {
		t.Errorf("a hard link to ../../etc/passwd was made: %v", err)
	}
}
