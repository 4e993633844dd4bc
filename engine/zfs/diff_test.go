package zfs

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// testdata/zfs-diff-FH.txt is `zfs diff -FH` output written from
// zfs-diff(8) (no OpenZFS here to record it): change, type, path, and for a
// rename the new path; \ooo escapes; the clone's root is reported changed.
func TestParseZFSDiff(t *testing.T) {
	out, err := os.ReadFile("testdata/zfs-diff-FH.txt")
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseZFSDiff(out, "/tank/zocker/containers/web")
	if err != nil {
		t.Fatal(err)
	}
	want := []Change{
		{Changed, "/bin"}, {Deleted, "/bin/vi"}, {Changed, "/etc"}, {Changed, "/etc/passwd"},
		{Added, "/file"}, {Added, "/new"}, {Deleted, "/old name"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
	for _, bad := range []string{"X\tF\t/tank/zocker/containers/web/a\n", "+\tF\t/elsewhere/a\n", "+\tF\n", "R\tF\t/tank/zocker/containers/web/a\n", "+\tF\t/tank/zocker/containers/web/a\\9\n"} {
		if _, err := ParseZFSDiff([]byte(bad), "/tank/zocker/containers/web"); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestCompareTrees(t *testing.T) {
	base, top := t.TempDir(), t.TempDir()
	old := time.Now().Add(-time.Hour)
	for _, root := range []string{base, top} {
		for _, d := range []string{"bin", "etc", "gone"} {
			mustDo(t, os.Mkdir(filepath.Join(root, d), 0o755))
		}
		write(t, filepath.Join(root, "etc/passwd"), "root:x:0:0::/root:/bin/sh\n", old)
		write(t, filepath.Join(root, "etc/touched"), "same\n", old)
		write(t, filepath.Join(root, "etc/samesize"), "aaaa\n", old)
		write(t, filepath.Join(root, "bin/vi"), "vi\n", old)
		write(t, filepath.Join(root, "gone/f"), "f\n", old)
		mustDo(t, os.Symlink("/bin/vi", filepath.Join(root, "bin/link")))
		mustDo(t, unix.Mkfifo(filepath.Join(root, "etc/fifo"), 0o644))
	}
	// A FIFO whose time changed is compared, never opened (that would block).
	mustDo(t, os.Chtimes(filepath.Join(top, "etc/fifo"), time.Now(), time.Now()))
	// In the container: one added, one appended, one removed, a touch
	// (mtime only: same content), a same-size rewrite, a retargeted link,
	// a removed directory, a chmod, a FIFO.
	write(t, filepath.Join(top, "file"), "new\n", time.Now())
	write(t, filepath.Join(top, "etc/passwd"), "root:x:0:0::/root:/bin/sh\nx\n", time.Now())
	mustDo(t, os.Remove(filepath.Join(top, "bin/vi")))
	mustDo(t, os.Chtimes(filepath.Join(top, "etc/touched"), time.Now(), time.Now()))
	write(t, filepath.Join(top, "etc/samesize"), "bbbb\n", time.Now())
	mustDo(t, os.Remove(filepath.Join(top, "bin/link")))
	mustDo(t, os.Symlink("/etc/passwd", filepath.Join(top, "bin/link")))
	mustDo(t, os.RemoveAll(filepath.Join(top, "gone")))
	mustDo(t, os.Chmod(filepath.Join(top, "etc"), 0o700))

	got, err := CompareTrees(base, top)
	if err != nil {
		t.Fatal(err)
	}
	want := []Change{
		{Changed, "/bin"}, {Changed, "/bin/link"}, {Deleted, "/bin/vi"},
		{Changed, "/etc"}, {Changed, "/etc/passwd"}, {Changed, "/etc/samesize"},
		{Added, "/file"}, {Deleted, "/gone"}, {Deleted, "/gone/f"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
	again, err := CompareTrees(base, top)
	if err != nil || !reflect.DeepEqual(again, got) {
		t.Errorf("a second comparison differs: %v %v", again, err)
	}
}

func write(t *testing.T, p, content string, mtime time.Time) {
	t.Helper()
	mustDo(t, os.WriteFile(p, []byte(content), 0o644))
	mustDo(t, os.Chtimes(p, mtime, mtime))
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
