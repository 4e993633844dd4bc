package service

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"slices"
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
	// Resolve reads the ID a pull source's tag points to, and its signer
	// when verified (engine.PullPolicy.Resolver).
	Resolve func(ctx context.Context, src *manifests.PullSource) (id, signer string, err error)
	// Verified reports whether pulls from a source are signature-checked
	// (engine.PullPolicy.Verified); nil means none is.
	Verified func(src *manifests.PullSource) bool
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
	// cache keeps the decoded manifest files: a resync decodes only the
	// files that changed.
	cache *manifests.Cache
	log   *slog.Logger
	// remoteErrs are the pull Images whose repository could not be read at
	// the last load; they stay as they are and are reported not Ready.
	remoteErrs map[string]error
	// warnedUnverified is set once the "pulls are unverified" warning is out.
	warnedUnverified bool
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
		cache:   manifests.NewCache(),
		log:     log,
	}
}

// Load reads the manifests at root (resolving it once, manifests.Load)
// and computes their images' inputs and remote IDs. Images whose inputs or
// repository cannot be read are logged and left out: their containers wait,
// and the current image stays.
func (l *Loader) Load(ctx context.Context, root string) (reconcile.Desired, error) {
	set, err := manifests.Load(root, l.loadOptions())
	if err != nil {
		return reconcile.Desired{}, err
	}
	return l.complete(ctx, set), nil
}

// LoadResolved is Load of root already resolved to dir by the caller
// (controller.LoadSettled, whose signature it has).
func (l *Loader) LoadResolved(ctx context.Context, root, dir string) (reconcile.Desired, error) {
	set, err := manifests.LoadResolved(root, dir, l.loadOptions())
	if err != nil {
		return reconcile.Desired{}, err
	}
	return l.complete(ctx, set), nil
}

func (l *Loader) loadOptions() manifests.LoadOptions {
	return manifests.LoadOptions{Insecure: l.opts.Insecure, Cache: l.cache}
}

// complete adds to a loaded set what the plan needs beside it.
func (l *Loader) complete(ctx context.Context, set *manifests.Set) reconcile.Desired {
	in, bases, errs := l.inputs.Compute(set)
	for name, err := range errs {
		l.log.Warn("cannot compute image inputs; its containers wait", "image", name, "err", err)
	}
	ids, signers, rerrs := l.remotes.Compute(ctx, set)
	for name, err := range rerrs {
		l.log.Warn("cannot read the repository, or its signature is refused; the image stays as it is", "image", name, "err", err)
	}
	l.remoteErrs = rerrs
	l.warnUnverified(set)
	d := reconcile.Desired{Set: set, ImageInputs: in, RemoteIDs: ids, RemoteSigners: signers, BuildBases: bases,
		MissingInputs: map[string]string{}, MissingHostPaths: missingHostPaths(set)}
	for name, err := range errs {
		if img := set.Images[name]; img != nil && img.Spec.Tarball != nil {
			d.MissingInputs[name] = err.Error()
		}
	}
	return d
}

// missingHostPaths finds, per container, a hostPath volume source that does
// not exist, so that plan shows the container held (F13) rather than a
// create that apply would see fail.
func missingHostPaths(set *manifests.Set) map[string]string {
	out := map[string]string{}
	for name, c := range set.Containers {
		for _, m := range c.Spec.Volumes {
			if m.HostPath == "" {
				continue
			}
			if _, err := os.Stat(m.HostPath); errors.Is(err, fs.ErrNotExist) {
				out[name] = fmt.Sprintf("hostPath %s does not exist", m.HostPath)
				break
			}
		}
	}
	return out
}

// RemoteErrors are the pull Images whose repository could not be read at
// the last Load.
func (l *Loader) RemoteErrors() map[string]error { return l.remoteErrs }

// warnUnverified logs once, at the first load declaring a pull Image that no
// signature policy covers, that such pulls are not verified.
func (l *Loader) warnUnverified(set *manifests.Set) {
	if l.warnedUnverified || set == nil {
		return
	}
	for _, name := range slices.Sorted(maps.Keys(set.Images)) {
		p := set.Images[name].Spec.Pull
		if p != nil && (l.opts.Verified == nil || !l.opts.Verified(p)) {
			l.warnedUnverified = true
			l.log.Warn("pulls are unverified: no --allowed-signers (or spec.pull.allowedSigners) is in force, so anyone who can write the repository decides what runs", "image", name)
			return
		}
	}
}
