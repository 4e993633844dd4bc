package service

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zocker-reconcile/zocker-reconcile/engine/sign"
	"github.com/zocker-reconcile/zocker-reconcile/metrics"
	"github.com/zocker-reconcile/zocker-reconcile/reconcile"
)

// revisionGate applies a manifest revision only when its HEAD commit is
// verified (serve --verify-commits); otherwise the last verified revision
// stays in force, the status says which commit was refused and why, and
// zocker_manifest_revision_verified is 0.
type revisionGate struct {
	v     *CommitVerifier
	gauge *metrics.RevisionVerification

	mu sync.Mutex
	// lastDir and lastCommit are the last verified revision; last is what
	// was loaded from it.
	lastDir, lastCommit string
	last                reconcile.Desired
	hasLast             bool
	// refused remembers refused commits: logged once, with their first time.
	refused map[string]RevisionUnverified
}

func newRevisionGate(v *CommitVerifier, reg prometheus.Registerer) *revisionGate {
	return &revisionGate{v: v, gauge: metrics.NewRevisionVerification(reg), refused: map[string]RevisionUnverified{}}
}

// load is Service.load behind the gate.
func (g *revisionGate) load(ctx context.Context, s *Service, root, dir string) (reconcile.Desired, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	commit, err := g.v.Head(ctx, dir)
	if err == nil && commit == g.lastCommit && dir == g.lastDir {
		return g.loadVerified(ctx, s, root, dir)
	}
	var signer sign.Signer
	if err == nil {
		signer, err = g.v.Verify(ctx, dir, commit)
	}
	if err == nil {
		g.lastDir, g.lastCommit = dir, commit
		g.gauge.Set(true)
		s.book.SetRevisionUnverified(nil)
		s.log.Info("manifest revision verified", "commit", commit, "signer", signer.String())
		return g.loadVerified(ctx, s, root, dir)
	}
	g.gauge.Set(false)
	ru, seen := g.refused[commit]
	if !seen {
		ru = RevisionUnverified{Commit: commit, Reason: sign.ReasonOf(err), Message: err.Error(), Since: time.Now().UTC()}
		if ru.Reason == "" {
			ru.Reason = ReasonVerificationFailed
		}
		g.refused[commit] = ru
		s.log.Warn("manifest revision not verified: the last verified revision stays in force",
			"commit", commit, "reason", ru.Reason, "kept", g.lastCommit, "err", err)
	}
	s.book.SetRevisionUnverified(&ru)
	if !g.hasLast {
		s.m.ManifestLoad(metrics.ResultError, 0, "", time.Now())
		return reconcile.Desired{}, fmt.Errorf("manifest revision %s is not verified and no verified revision was loaded yet, so nothing is applied: %w", commit, err)
	}
	// Read the verified revision again where it still is unchanged (a
	// git-sync worktree of its own), so that its images' remote tags and
	// inputs stay current; else replay what was loaded from it.
	if g.lastDir != dir {
		if _, serr := os.Stat(g.lastDir); serr == nil {
			if head, herr := g.v.Head(ctx, g.lastDir); herr == nil && head == g.lastCommit {
				return g.loadVerified(ctx, s, root, g.lastDir)
			}
		}
	}
	return g.last, nil
}

func (g *revisionGate) loadVerified(ctx context.Context, s *Service, root, dir string) (reconcile.Desired, error) {
	d, err := s.loadDir(ctx, root, dir)
	if err == nil {
		g.last, g.hasLast = d, true
	}
	return d, err
}

// SetRevisionUnverified records the refused newest revision (nil: the
// newest is verified).
func (b *StatusBook) SetRevisionUnverified(ru *RevisionUnverified) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ru == nil && b.unverified == nil {
		return
	}
	if ru != nil {
		c := *ru
		ru = &c
	}
	b.unverified = ru
	b.updated = b.now().UTC()
}
