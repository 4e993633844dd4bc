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
// directory under tmpDir and returns it. The archive is untrusted: it goes
// through Apply (nothing outside the directory, no devices), and its sha256,
// when want is set, is checked before the directory is returned.
func unpackArchive(path, want, tmpDir string, log *slog.Logger) (dir string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("open archive %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	br := bufio.NewReader(io.TeeReader(f, h))
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
	dir, err = os.MkdirTemp(tmpDir, "zocker-oci-archive-")
	if err != nil {
		return "", fmt.Errorf("unpack archive %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	if _, err = layer.Apply(dir, r, log); err != nil {
		return "", fmt.Errorf("unpack archive %s: %w", path, err)
	}
	if _, err = io.Copy(io.Discard, br); err != nil {
		return "", fmt.Errorf("read archive %s: %w", path, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); want != "" && got != strings.ToLower(want) {
		return "", fmt.Errorf("archive %s: sha256 mismatch: the file has %s, %s was declared", path, got, want)
	}
	return dir, nil
}
