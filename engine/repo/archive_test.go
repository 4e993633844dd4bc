package repo

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const archID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func repoDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range map[string]string{
		"images/" + archID + "/stream":    "stream bytes",
		"images/" + archID + "/meta.json": `{"id":"` + archID + `"}`,
		"tags/base":                       archID + "\n",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestArchiveRoundTrip(t *testing.T) {
	src := repoDir(t)
	var a, b bytes.Buffer
	if err := WriteArchive(src, &a); err != nil {
		t.Fatal(err)
	}
	if err := WriteArchive(src, &b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Errorf("the same repository gives different archives")
	}
	dst := t.TempDir()
	if err := ReadArchive(bytes.NewReader(a.Bytes()), dst); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dst, "images", archID, "stream"))
	if err != nil || string(got) != "stream bytes" {
		t.Errorf("stream: %q %v", got, err)
	}
	tags, err := ArchiveTags(dst)
	if err != nil || !reflect.DeepEqual(tags, []string{"base"}) {
		t.Errorf("tags %v %v", tags, err)
	}
}

// entries builds a tar from (name, typeflag, body) triples.
func entries(t *testing.T, end bool, es ...tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range es {
		body := h.Linkname
		if h.Typeflag == tar.TypeReg {
			h.Linkname, h.Size = "", int64(len(body))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write([]byte(body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Flush(); err != nil {
		t.Fatal(err)
	}
	if end {
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func TestReadArchiveRefuses(t *testing.T) {
	reg := func(name, body string) tar.Header {
		return tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Linkname: body}
	}
	tag := reg("tags/base", archID)
	var full bytes.Buffer
	if err := WriteArchive(repoDir(t), &full); err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"escape":    entries(t, true, reg("../../etc/passwd", "x"), tag),
		"absolute":  entries(t, true, reg("/etc/passwd", "x"), tag),
		"other":     entries(t, true, reg("images/"+archID+"/evil", "x"), tag),
		"symlink":   entries(t, true, tar.Header{Name: "tags/base", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}),
		"hardlink":  entries(t, true, tar.Header{Name: "tags/base", Typeflag: tar.TypeLink, Linkname: "/etc/passwd"}),
		"device":    entries(t, true, tar.Header{Name: "tags/base", Typeflag: tar.TypeChar}),
		"twice":     entries(t, true, tag, tag),
		"bad tag":   entries(t, true, reg("tags/Bad_Tag", archID)),
		"big meta":  entries(t, true, reg("images/"+archID+"/meta.json", strings.Repeat("x", maxArchiveSmallFile+1))),
		"no end":    entries(t, false, tag),
		"truncated": full.Bytes()[:full.Len()-1500],
		"empty":     entries(t, true),
	}
	for name, data := range cases {
		dst := t.TempDir()
		err := ReadArchive(bytes.NewReader(data), dst)
		if !errors.Is(err, ErrBadArchive) {
			t.Errorf("%s: error %v, want ErrBadArchive", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(t.TempDir()), "etc")); err == nil {
		t.Errorf("something was written outside the directory")
	}
}
