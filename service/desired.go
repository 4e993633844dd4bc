package service

import (
	"context"
	"log/slog"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/engine/build"
	"github.com/zocker-reconcile/zocker-reconcile/manifests"
	"github.com/zocker-reconcile/zocker-reconcile/reconcile"
)

// LoaderOptions configure a Loader.
type LoaderOptions struct {
	// Insecure accepts manifest files and directories writable by others
	// or owned by another user (--insecure-manifests).
	Insecure bool
	// PullInterval is how often the repository tags of pull Images are
	// checked (default DefaultPullInterval).
	PullInterval time.Duration
	// Tags resolves an image tag as last observed, for the base image of a
	// build; nil leaves builds out of the inputs (their containers wait).
	Tags func(ref string) (string, bool)
	// Resolve reads the ID a repository tag points to (repo.Resolve).
	Resolve func(ctx context.Context, url, tag string) (string, error)
	// ResolveOCI reads the image ID an oci source names now.
	ResolveOCI func(ctx context.Context, src *manifests.OCISource) (string, error)
	// Log defaults to slog.Default().
	Log *slog.Logger
}

// Loader loads the desired state: the manifests, and what needs I/O to know
// about their images (tarball digests, build inputs, remote tags).
type Loader struct {
	opts    LoaderOptions
	inputs  *Inputs
	remotes *Remotes
	log     *slog.Logger
	// remoteErrs are the pull Images whose repository could not be read at
	// the last load; they stay as they are and are reported not Ready.
	remoteErrs map[string]error
}

// NewLoader makes a Loader.
func NewLoader(opts LoaderOptions) *Loader {
	in := &Inputs{}
	if tags := opts.Tags; tags != nil {
		in.BuildInputs = func(img *manifests.Image) (string, string, error) {
			return build.Inputs(img.Spec.Build, tags)
		}
	}
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	return &Loader{
		opts:    opts,
		inputs:  in,
		remotes: &Remotes{Interval: opts.PullInterval, Resolve: opts.Resolve, ResolveOCI: opts.ResolveOCI},
		log:     log,
	}
}

// Load reads the manifests in dir and computes their images' inputs and
// remote IDs. Images whose inputs or repository cannot be read are logged
// and left out: their containers wait, and the current image stays.
func (l *Loader) Load(ctx context.Context, dir string) (reconcile.Desired, error) {
	set, err := manifests.Load(dir, manifests.LoadOptions{Insecure: l.opts.Insecure})
	if err != nil {
		return reconcile.Desired{}, err
	}
	in, bases, errs := l.inputs.Compute(set)
	for name, err := range errs {
		l.log.Warn("cannot compute image inputs; its containers wait", "image", name, "err", err)
	}
	ids, rerrs := l.remotes.Compute(ctx, set)
	for name, err := range rerrs {
		l.log.Warn("cannot read the repository; the image stays as it is", "image", name, "err", err)
	}
	l.remoteErrs = rerrs
	return reconcile.Desired{Set: set, ImageInputs: in, RemoteIDs: ids, BuildBases: bases}, nil
}

// RemoteErrors are the pull Images whose repository could not be read at
// the last Load.
func (l *Loader) RemoteErrors() map[string]error { return l.remoteErrs }
