package zfs

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// PropOrigin records on an image where it came from. Image IDs are content
// addresses only for what this host computed itself (an import's archive
// digest, a build step's inputs); an image from elsewhere carries whatever
// ID its source gave it, so a pulled image must never be taken for a local
// build step or import with the same ID (review H2).
const PropOrigin = "zocker:origin"

// Origins stored in zocker:origin. On a container dataset it is OriginCLI
// for the ad-hoc containers of run and create (declared containers carry
// zocker:manifest instead and no origin); on an image, its source.
const (
	OriginCLI    = "cli"    // a container made by run or create: the reconciler never touches it
	OriginImport = "import" // a root filesystem archive, ID = its digest
	OriginBuild  = "build"  // a Zockerfile step, ID = its inputs
	OriginPull   = "pull"   // a zocker repository stream, ID = the repository's word
	OriginCommit = "commit" // a container's file system
	OriginLoad   = "load"   // a saved archive, ID = the archive's word
	OriginOCI    = "oci"    // an OCI registry or layout
)

// ErrOriginConflict is returned (wrapped) when an image of one origin would
// be taken for, or replaced by, an image of another with the same ID.
var ErrOriginConflict = errors.New("image ID already used by an image of another origin")

// Provenance says where an image came from: its zocker:origin, or for images
// published before that property existed, what zocker:source says (a
// pulled image was marked "pull", an import "sha256:..."), else a build.
func (im Image) Provenance() string {
	if o := im.Props[PropOrigin]; o != "" {
		return o
	}
	switch src := im.Props[PropSource]; {
	case src == "pull":
		return OriginPull
	case strings.HasPrefix(src, "sha256:"):
		return OriginImport
	}
	return OriginBuild
}

// Local reports whether the image's ID was computed on this host from its
// content (import, build, commit) rather than taken from its source.
func (im Image) Local() bool {
	switch im.Provenance() {
	case OriginImport, OriginBuild, OriginCommit:
		return true
	}
	return false
}

// imageOrigin returns the origin of image id, "" when there is none (one
// zfs get of the dataset and its @image snapshot).
func (s *Store) imageOrigin(ctx context.Context, id string) (string, error) {
	ds := s.imageDS(id)
	recs, err := s.get(ctx, strings.Join([]string{"type", PropManaged, PropKind, PropOrigin, PropSource}, ","), ds, true)
	if errors.Is(err, ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	rec := recs[ds]
	if rec == nil || recs[ds+"@"+ImageSnapshot] == nil || rec.own[PropManaged] != "true" || rec.own[PropKind] != KindImage {
		return "", nil
	}
	return Image{Dataset: Dataset{Props: rec.own}}.Provenance(), nil
}

// requireOrigin checks that image id, if it exists, has origin want.
func (s *Store) requireOrigin(ctx context.Context, id, want string) (exists bool, err error) {
	got, err := s.imageOrigin(ctx, id)
	if err != nil || got == "" {
		return false, err
	}
	if got != want {
		return true, fmt.Errorf("image %s exists with origin %s, not %s: remove it (rmi) to make it here: %w", id, got, want, ErrOriginConflict)
	}
	return true, nil
}
