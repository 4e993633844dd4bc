package service

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/manifests"
)

// DefaultPullInterval is how often a pull Image's repository tag is checked
// when the manifests do not change.
const DefaultPullInterval = 5 * time.Minute

// Remotes resolves the repository tags of the Images declared with pull:,
// each at most once per Interval, and again at once when the manifests
// change (a new revision), so that resyncs do not hit the repository every
// 30 seconds.
type Remotes struct {
	Interval time.Duration
	// Resolve reads the ID a pull source's tag points to and, when its
	// signature was verified, who signed it (engine.PullPolicy.Resolver).
	Resolve func(ctx context.Context, src *manifests.PullSource) (id, signer string, err error)

	mu       sync.Mutex
	revision string
	cache    map[string]remote
}

type remote struct {
	source string // repository + tag it was resolved for
	id     string
	signer string
	err    error
	at     time.Time
}

// Compute returns image name -> remote ID for the pull Images it could
// resolve, image name -> signer for those whose tag signature was verified,
// and the errors of those it could not resolve (an unreachable repository,
// a refused signature: the current image and its containers stay as they
// are).
func (r *Remotes) Compute(ctx context.Context, set *manifests.Set) (ids, signers map[string]string, errs map[string]error) {
	ids, signers, errs = map[string]string{}, map[string]string{}, map[string]error{}
	if set == nil {
		return ids, signers, errs
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cache == nil || set.Revision != r.revision {
		r.cache = map[string]remote{}
		r.revision = set.Revision
	}
	interval := r.Interval
	if interval <= 0 {
		interval = DefaultPullInterval
	}
	for name, img := range set.Images {
		p := img.Spec.Pull
		if p == nil {
			continue
		}
		src := p.Repository + "#" + p.Tag + "#" + p.AllowedSigners
		c, ok := r.cache[name]
		if !ok || c.source != src || time.Since(c.at) >= interval {
			rctx, cancel := context.WithTimeout(ctx, time.Minute)
			id, signer, err := r.Resolve(rctx, p)
			cancel()
			if err != nil {
				err = fmt.Errorf("resolve %s in %s: %w", p.Tag, p.Repository, err)
			}
			c = remote{source: src, id: id, signer: signer, err: err, at: time.Now()}
			r.cache[name] = c
		}
		if c.err != nil {
			errs[name] = c.err
			continue
		}
		ids[name] = c.id
		if c.signer != "" {
			signers[name] = c.signer
		}
	}
	return ids, signers, errs
}
