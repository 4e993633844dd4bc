package engine

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/zocker-reconcile/zocker-reconcile/engine/oci"
	"github.com/zocker-reconcile/zocker-reconcile/engine/zfs"
	"github.com/zocker-reconcile/zocker-reconcile/manifests"
)

// ociSource turns a manifest's oci source into the engine's.
func ociSource(o *manifests.OCISource) oci.Source {
	return oci.Source{Ref: o.Ref, Archive: o.Archive, SHA256: o.SHA256, Name: o.Name, Platform: o.Platform, Insecure: o.Insecure}
}

// OCIPuller pulls Images declared with oci: into the store (engine/oci) and
// tags them with the Image's name.
func OCIPuller(store *zfs.Store, log *slog.Logger) Puller {
	return func(ctx context.Context, img *manifests.Image) (string, error) {
		o := img.Spec.OCI
		if o == nil {
			return "", fmt.Errorf("image %s: no oci source", img.Metadata.Name)
		}
		res, err := (&oci.Puller{Store: store, Log: log}).Pull(ctx, ociSource(o))
		if err != nil {
			return "", fmt.Errorf("pull image %s: %w", img.Metadata.Name, err)
		}
		if err := store.Tag(ctx, img.Metadata.Name, res.ID); err != nil {
			return "", fmt.Errorf("tag pulled image %s: %w", img.Metadata.Name, err)
		}
		return res.ID, nil
	}
}

// OCIResolver reads the image ID (config digest) an oci source names now:
// manifests only for a registry; an archive is read whole.
func OCIResolver(log *slog.Logger) func(ctx context.Context, o *manifests.OCISource) (string, error) {
	return func(ctx context.Context, o *manifests.OCISource) (string, error) {
		id, _, err := (&oci.Puller{Log: log}).Resolve(ctx, ociSource(o))
		return id, err
	}
}

// Pullers dispatches an Image to the puller of its source: pull: to the
// zocker repository's, oci: to the registry's.
func Pullers(repoPuller, ociPuller Puller) Puller {
	return func(ctx context.Context, img *manifests.Image) (string, error) {
		if img.Spec.OCI != nil {
			return ociPuller(ctx, img)
		}
		return repoPuller(ctx, img)
	}
}
