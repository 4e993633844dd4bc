package oci

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUnpackArchive: sha256 checked, size bounded, nothing kept on failure.
func TestUnpackArchive(t *testing.T) {
	requireRootUser(t)
	tmp := t.TempDir()
	arch := filepath.Join(t.TempDir(), "layout.tar")
	body := strings.Repeat("x", 64<<10)
	if err := os.WriteFile(arch, tarOf(t, "", []entry{fileE("oci-layout", `{"imageLayoutVersion":"1.0.0"}`), fileE("blobs/big", body)}), 0o644); err != nil {
		t.Fatal(err)
	}
	sha := sum(must(os.ReadFile(arch)))
	if _, err := unpackArchive(arch, strings.Repeat("1", 64), tmp, 1<<20, nil); err == nil || !strings.Contains(err.Error(), "sha256 mismatch") {
		t.Errorf("wrong sha256: %v", err)
	}
	if _, err := unpackArchive(arch, sha, tmp, 32<<10, nil); !errors.Is(err, ErrTooLarge) {
		t.Errorf("over the limit: %v, want ErrTooLarge", err)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("left behind after failures: %v", left)
	}
	dir, err := unpackArchive(arch, sha, tmp, 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "blobs/big")); err != nil || string(b) != body {
		t.Errorf("blobs/big: %d bytes, %v", len(b), err)
	}
}
