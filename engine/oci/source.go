// Package oci brings OCI images into the ZFS store and sends local images to
// OCI registries. A pulled image becomes a chain of datasets, one per layer,
// named by the layer's ChainID, each a clone of the snapshot below it; two
// images sharing layers share those datasets. The image itself is a clone of
// its top layer named by its config digest, so the same OCI image has the
// same ID on every host.
//
// Registries, archives, manifests, configs and layers are all untrusted:
// every blob is verified against its digest while it streams, every layer
// is applied inside an os.Root (see layer.Apply), and nothing is published before
// it is complete.
package oci

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Source is where an OCI image comes from: a registry Ref or an Archive
// (an OCI image layout directory, .tar, .tar.gz/.tgz or .txz/.tar.xz).
type Source struct {
	// Ref is REGISTRY/REPO:TAG or REGISTRY/REPO@sha256:DIGEST.
	Ref string
	// Archive is the path of an OCI image layout.
	Archive string
	// SHA256 is the archive file's expected digest (hex), optional.
	SHA256 string
	// Name picks one image of the layout's index by its
	// org.opencontainers.image.ref.name annotation.
	Name string
	// Platform is OS/ARCH[/VARIANT]; "" means the host's (DefaultPlatform).
	Platform string
	// Insecure allows plain HTTP (a registry on loopback).
	Insecure bool
}

// String names the source for messages.
func (s Source) String() string {
	if s.Archive != "" {
		if s.Name != "" {
			return "oci-archive:" + s.Archive + ":" + s.Name
		}
		return "oci-archive:" + s.Archive
	}
	return "docker://" + s.Ref
}

// DefaultPlatform is the host's own platform: freebsd/amd64 on FreeBSD,
// linux/amd64 on this Linux test machine.
func DefaultPlatform() string {
	return runtime.GOOS + "/" + runtime.GOARCH
}

// ParsePlatform checks OS/ARCH[/VARIANT]; "" is the host's.
func ParsePlatform(s string) (v1.Platform, error) {
	if s == "" {
		s = DefaultPlatform()
	}
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 {
		return v1.Platform{}, fmt.Errorf("platform %q: want OS/ARCH or OS/ARCH/VARIANT", s)
	}
	for _, p := range parts {
		if p == "" || strings.Trim(p, "abcdefghijklmnopqrstuvwxyz0123456789_-.") != "" {
			return v1.Platform{}, fmt.Errorf("platform %q: want OS/ARCH or OS/ARCH/VARIANT in lowercase letters and digits", s)
		}
	}
	p := v1.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

// ParseRef checks a registry reference; a reference without a tag or digest
// is refused (an implicit :latest moves under the administrator's feet).
func ParseRef(ref string, insecure bool) (name.Reference, error) {
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	r, err := name.ParseReference(ref, append(opts, name.StrictValidation)...)
	if err != nil {
		return nil, fmt.Errorf("image reference %q: want REGISTRY/REPO:TAG or REGISTRY/REPO@sha256:DIGEST: %w", ref, err)
	}
	return r, nil
}

// remoteOptions are the options of every registry call: the caller's
// context, the platform, and credentials from the Docker config
// ($DOCKER_CONFIG, ~/.docker/config.json, $REGISTRY_AUTH_FILE) as podman and
// crane read them.
func remoteOptions(ctx context.Context, p v1.Platform, extra ...remote.Option) []remote.Option {
	return append([]remote.Option{
		remote.WithContext(ctx),
		remote.WithPlatform(p),
		remote.WithAuthFromKeychain(authn.DefaultKeychain),
	}, extra...)
}

// ErrPlatform is returned (wrapped) when an index has no image for the
// wanted platform; the message names the platforms it has.
var ErrPlatform = errors.New("no image for platform")

// platformString prints a platform as OS/ARCH[/VARIANT].
func platformString(p v1.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// pickManifest chooses the manifest of an index for platform (and, when
// refName is set, by its ref.name annotation), or says which platforms (or
// names) the index has.
func pickManifest(im *v1.IndexManifest, want v1.Platform, refName, what string) (v1.Descriptor, error) {
	var have []string
	var names []string
	for _, d := range im.Manifests {
		if refName != "" {
			n := d.Annotations["org.opencontainers.image.ref.name"]
			names = append(names, n)
			if n != refName {
				continue
			}
		}
		if d.MediaType != "" && !d.MediaType.IsImage() && !d.MediaType.IsIndex() {
			continue
		}
		if d.Platform == nil {
			// An index entry without a platform (an archive's single image):
			// its config says what it is, checked by the caller.
			if refName != "" || len(im.Manifests) == 1 {
				return d, nil
			}
			continue
		}
		have = append(have, platformString(*d.Platform))
		if platformMatches(*d.Platform, want) {
			return d, nil
		}
	}
	if refName != "" && !contains(names, refName) {
		sort.Strings(names)
		return v1.Descriptor{}, fmt.Errorf("%s: no image named %q (it has %s)", what, refName, listOrNone(names))
	}
	sort.Strings(have)
	return v1.Descriptor{}, fmt.Errorf("%s: %w %s (it has %s)", what, ErrPlatform, platformString(want), listOrNone(have))
}

func platformMatches(have, want v1.Platform) bool {
	return have.OS == want.OS && have.Architecture == want.Architecture &&
		(want.Variant == "" || have.Variant == want.Variant)
}

// checkConfigPlatform refuses an image whose config says another platform.
func checkConfigPlatform(cf *v1.ConfigFile, want v1.Platform, what string) error {
	if cf.OS == "" && cf.Architecture == "" {
		return nil
	}
	have := v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}
	if !platformMatches(have, want) {
		return fmt.Errorf("%s: %w %s (it is %s)", what, ErrPlatform, platformString(want), platformString(have))
	}
	return nil
}

func listOrNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ", ")
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// isIndex says whether a media type is an index or manifest list.
func isIndex(mt types.MediaType) bool { return mt.IsIndex() }
