package engine

import (
	"context"
	"fmt"

	"github.com/zocker-reconcile/zocker-reconcile/engine/repo"
	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
	"github.com/zocker-reconcile/zocker-reconcile/engine/zfs"
	"github.com/zocker-reconcile/zocker-reconcile/manifests"
)

// RepoPuller pulls pull Images through engine/repo into the store and tags
// them with the Image's name. With a policy in force (policy), nothing is
// received unless the tag and every image record are signed by an allowed
// signer.
func RepoPuller(store *zfs.Store, r runner.Runner, opts repo.Options, policy PullPolicy) Puller {
	return func(ctx context.Context, img *manifests.Image) (string, error) {
		p := img.Spec.Pull
		if p == nil {
			return "", fmt.Errorf("image %s: no pull source", img.Metadata.Name)
		}
		opts, err := policy.policyOptions(opts, p)
		if err != nil {
			return "", fmt.Errorf("pull image %s: %w", img.Metadata.Name, err)
		}
		rp, err := repo.Open(ctx, p.Repository, opts)
		if err != nil {
			return "", fmt.Errorf("pull image %s: %w", img.Metadata.Name, err)
		}
		defer rp.Close()
		res, err := rp.Pull(ctx, repo.NewZFSLocal(store, r, opts.Log), p.Tag)
		if err != nil {
			return "", fmt.Errorf("pull image %s: %w", img.Metadata.Name, err)
		}
		if err := store.Tag(ctx, img.Metadata.Name, res.ID); err != nil {
			return "", fmt.Errorf("tag pulled image %s: %w", img.Metadata.Name, err)
		}
		return res.ID, nil
	}
}
