package smoke

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func listTar(t *testing.T, files []ImageFile) map[string]string {
	t.Helper()
	var b bytes.Buffer
	if err := WriteImageTar(&b, files); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	tr := tar.NewReader(&b)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			out[h.Name] = fmt.Sprintf("dir %o", h.Mode)
		case tar.TypeSymlink:
			out[h.Name] = "-> " + h.Linkname
		default:
			data, _ := io.ReadAll(tr)
			out[h.Name] = "file " + string(data)
		}
	}
}

// TestRescueImage: the FreeBSD image from a /rescue-like directory: sh
// copied once, every other name a link to it, /bin links for the
// applets, /usr/bin/env from /rescue when it has one, else the host's with
// the libraries that exist.
func TestRescueImage(t *testing.T) {
	rescue := t.TempDir()
	for _, n := range append(Applets, "ls", "zfs") {
		if n == "env" {
			continue
		}
		os.WriteFile(filepath.Join(rescue, n), []byte("crunched"), 0o555)
	}
	lib := filepath.Join(t.TempDir(), "libc.so.7")
	os.WriteFile(lib, []byte("libc"), 0o444)
	env := filepath.Join(t.TempDir(), "env")
	os.WriteFile(env, []byte("env-binary"), 0o555)
	files, err := RescueImage(rescue, env, []string{lib, "/nonexistent/libsys.so.7"})
	if err != nil {
		t.Fatal(err)
	}
	got := listTar(t, files)
	for name, want := range map[string]string{
		"./rescue/sh":   "file crunched",
		"./rescue/ls":   "-> sh",
		"./bin/sh":      "-> /rescue/sh",
		"./bin/sleep":   "-> /rescue/sleep",
		"./usr/bin/env": "file env-binary",
		"." + lib:       "file libc",
		"./tmp/":        "dir 1777",
		"./etc/passwd":  "file root:x:0:0:root:/root:/bin/sh\n",
	} {
		if got[name] != want {
			t.Errorf("%s: %q, want %q", name, got[name], want)
		}
	}
	if _, ok := got["./nonexistent/libsys.so.7"]; ok {
		t.Error("a missing library was added")
	}
	os.WriteFile(filepath.Join(rescue, "env"), []byte("crunched"), 0o555)
	files, _ = RescueImage(rescue, env, nil)
	if got := listTar(t, files); got["./usr/bin/env"] != "-> /rescue/env" {
		t.Errorf("/rescue/env not used: %q", got["./usr/bin/env"])
	}
	os.Remove(filepath.Join(rescue, "sleep"))
	if _, err := RescueImage(rescue, env, nil); err == nil || !strings.Contains(err.Error(), "no sleep") {
		t.Errorf("missing applet: %v", err)
	}
}

func TestBusyboxImage(t *testing.T) {
	bb := filepath.Join(t.TempDir(), "busybox")
	os.WriteFile(bb, []byte("bb"), 0o755)
	got := listTar(t, BusyboxImage(bb))
	for name, want := range map[string]string{"./bin/busybox": "file bb", "./bin/sh": "-> /bin/busybox", "./usr/bin/env": "-> /bin/busybox", "./data/": "dir 755"} {
		if got[name] != want {
			t.Errorf("%s: %q, want %q", name, got[name], want)
		}
	}
}
