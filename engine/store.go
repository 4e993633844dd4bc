package engine

import (
	"context"

	"github.com/zocker-reconcile/zocker-reconcile/engine/build"
	"github.com/zocker-reconcile/zocker-reconcile/engine/repo"
	"github.com/zocker-reconcile/zocker-reconcile/engine/zfs"
)

// Store is what the engine needs of the ZFS store (*zfs.Store): an
// interface so that Execute's steps are unit-tested against an in-memory
// fake. Builds run on it too (build.Store).
type Store interface {
	build.Store
	repo.ZFSStore // Root, ImageSizeLimit: save and load go through engine/repo
	ImportTarball(ctx context.Context, src zfs.ImportSource, cfg zfs.Config) (id string, err error)
	SetImageProps(ctx context.Context, id string, props map[string]string) error
	CreateContainer(ctx context.Context, name, imageID string, props map[string]string) (*zfs.Container, error)
	SetContainerProps(ctx context.Context, name string, props map[string]string) error
	ClearContainerProps(ctx context.Context, name string, keys ...string) error
	DestroyContainer(ctx context.Context, name string) error
	KeepPrevious(ctx context.Context, name string) (string, error)
	RestorePrevious(ctx context.Context, id string) error
	DestroyPrevious(ctx context.Context, id string) error
	EnsureVolume(ctx context.Context, name string, spec zfs.VolumeSpec, props map[string]string) error
	DestroyVolume(ctx context.Context, name string) error
	Untag(ctx context.Context, tag string) error
	RemoveImage(ctx context.Context, ref string) (removed bool, err error)
	Commit(ctx context.Context, name string, cfg zfs.Config, extra map[string]string) (id string, err error)
	SweepTmp(ctx context.Context) []string
	// ObserveObjects, ContainerValues and ResolveRef are the targeted reads
	// of create, start, replace, run and create: their cost does not grow
	// with the number of datasets (issue 15).
	ObserveObjects(ctx context.Context, o zfs.Objects) (*zfs.State, error)
	// ObserveTree and ObserveTouched are the service's observations: the
	// whole tree at a resync, and after actions only what they touched.
	ObserveTree(ctx context.Context) (*zfs.State, *zfs.Tree, error)
	ObserveTouched(ctx context.Context, base *zfs.Tree, t zfs.Touched) (*zfs.State, *zfs.Tree, error)
	ContainerValues(ctx context.Context, prop string) (map[string]string, error)
	ResolveRef(ctx context.Context, ref string) (string, error)
}

var _ Store = (*zfs.Store)(nil)
