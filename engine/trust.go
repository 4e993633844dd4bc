package engine

import (
	"context"
	"fmt"

	"github.com/zocker-reconcile/zocker-reconcile/engine/repo"
	"github.com/zocker-reconcile/zocker-reconcile/engine/sign"
	"github.com/zocker-reconcile/zocker-reconcile/manifests"
)

// PullPolicy is the signature policy of pulls: the service's
// --allowed-signers and --revoked-keys, with an Image's
// spec.pull.allowedSigners in place of the former.
type PullPolicy struct {
	Files sign.Files
}

// For returns the policy a pull from src must satisfy, nil when none is in
// force. The files are read at every call, so that an edited
// allowed_signers applies at the next pull without a restart; a file that
// cannot be read or parsed refuses the pull (it never falls back to
// "unverified").
func (p PullPolicy) For(src *manifests.PullSource) (*sign.Policy, error) {
	f := p.Files
	if src != nil && src.AllowedSigners != "" {
		f.AllowedSigners = src.AllowedSigners
	}
	if !f.Enabled() {
		return nil, nil
	}
	pol, err := f.Load()
	if err != nil {
		return nil, &sign.Error{Reason: sign.ReasonPolicyBroken, Msg: err.Error()}
	}
	return pol, nil
}

// Verified reports whether pulls from src are verified.
func (p PullPolicy) Verified(src *manifests.PullSource) bool {
	return p.Files.Enabled() || src != nil && src.AllowedSigners != ""
}

// Resolver returns the function that reads the image ID a pull Image's
// tag points at, with the signer of the tag under the policy ("" without
// one): what plan shows before pulling.
func (p PullPolicy) Resolver(opts repo.Options) func(ctx context.Context, src *manifests.PullSource) (string, string, error) {
	return func(ctx context.Context, src *manifests.PullSource) (string, string, error) {
		pol, err := p.For(src)
		if err != nil {
			return "", "", err
		}
		o := opts
		o.Policy = pol
		id, signer, err := repo.ResolveSigned(ctx, src.Repository, src.Tag, o)
		if err != nil {
			return "", "", err
		}
		return id, signer.String(), nil
	}
}

// policyOptions returns opts with the policy for src.
func (p PullPolicy) policyOptions(opts repo.Options, src *manifests.PullSource) (repo.Options, error) {
	pol, err := p.For(src)
	if err != nil {
		return opts, fmt.Errorf("signature policy: %w", err)
	}
	opts.Policy = pol
	return opts, nil
}
