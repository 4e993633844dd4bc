package oci

import (
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/ulikunitz/xz"

	"github.com/zocker-reconcile/zocker-reconcile/engine/oci/layer"
)

// unpackArchive unpacks an OCI layout archive (.tar, .tar.gz/.tgz,
// .txz/.tar.xz: recognised by content, not name) into a new private
// directory under tmpDir and returns it. A declared sha256 is checked
// before anything of the archive is parsed. The archive is untrusted: it
// goes through layer.Apply (nothing outside the directory, no devices, at
// most limit bytes unpacked).
func unpackArchive(path, want, tmpDir string, limit int64, log *slog.Logger) (dir string, err error) {
	if want != "" {
		got, err := fileSHA256(path)
		if err != nil {
			return "", err
		}
		if got != strings.ToLower(want) {
			return "", fmt.Errorf("archive %s: sha256 mismatch: the file has %s, %s was declared", path, got, want)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("open archive %s: %w", path, err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	magic, _ := br.Peek(6)
	var r io.Reader = br
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return "", fmt.Errorf("archive %s: %w", path, err)
		}
		r = zr
	case len(magic) >= 6 && string(magic) == "\xfd7zXZ\x00":
		xr, err := xz.NewReader(br)
		if err != nil {
			return "", fmt.Errorf("archive %s: %w", path, err)
		}
		r = xr
	}
	tmp, err := os.MkdirTemp(tmpDir, "zocker-oci-archive-")
	if err != nil {
		return "", fmt.Errorf("unpack archive %s: %w", path, err)
	}
	if _, err := layer.Apply(tmp, capReader{r, &limit}, log); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("unpack archive %s: %w", path, err)
	}
	return tmp, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("open archive %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read archive %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
