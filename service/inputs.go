package service

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/manifests"
)

// Inputs computes what each declared Image is made from, the digest the
// reconciler compares with the one recorded on the current image: for a
// tarball its sha256 (declared, or computed from the file and cached by
// path, size and modification time so that a resync does not re-read a
// large archive), for a build the hash of the Zockerfile, the context, the
// args and the base image (engine/build). An image whose inputs cannot be
// computed is left out, and the reconciler waits for it.
type Inputs struct {
	// BuildInputs hashes a build's inputs and names the image it starts
	// FROM; nil when builds are not wired.
	BuildInputs func(img *manifests.Image) (inputs, base string, err error)

	mu    sync.Mutex
	cache map[string]fileDigest
}

type fileDigest struct {
	size    int64
	modTime time.Time
	digest  string
}

// TarballInputs is the inputs digest of a tarball image with this sha256; the
// store records the same value on import (zocker:source).
func TarballInputs(sha string) string { return "sha256:" + sha }

// Compute returns image name -> inputs digest, build image name -> the
// image it starts FROM, and the problems met.
func (in *Inputs) Compute(set *manifests.Set) (inputs, bases map[string]string, errs map[string]error) {
	out := map[string]string{}
	bases = map[string]string{}
	errs = map[string]error{}
	if set == nil {
		return out, bases, errs
	}
	for name, img := range set.Images {
		switch {
		case img.Spec.Tarball != nil:
			t := img.Spec.Tarball
			if t.SHA256 != "" {
				out[name] = TarballInputs(t.SHA256)
				continue
			}
			if t.Path == "" {
				continue
			}
			sum, err := in.fileSHA256(t.Path)
			if err != nil {
				errs[name] = fmt.Errorf("image %s: %w", name, err)
				continue
			}
			out[name] = TarballInputs(sum)
		case img.Spec.Build != nil && in.BuildInputs != nil:
			h, base, err := in.BuildInputs(img)
			if err != nil {
				errs[name] = fmt.Errorf("image %s: %w", name, err)
				continue
			}
			out[name] = h
			bases[name] = base
		}
	}
	return out, bases, errs
}

func (in *Inputs) fileSHA256(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	in.mu.Lock()
	c, ok := in.cache[path]
	in.mu.Unlock()
	if ok && c.size == fi.Size() && c.modTime.Equal(fi.ModTime()) {
		return c.digest, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	in.mu.Lock()
	if in.cache == nil {
		in.cache = map[string]fileDigest{}
	}
	in.cache[path] = fileDigest{size: fi.Size(), modTime: fi.ModTime(), digest: sum}
	in.mu.Unlock()
	return sum, nil
}
