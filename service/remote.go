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
	// Resolve reads the ID a repository tag points to (repo.Resolve).
	Resolve func(ctx context.Context, url, tag string) (string, error)

	mu       sync.Mutex
	revision string
	cache    map[string]remote
}

type remote struct {
	source string // repository + tag it was resolved for
	id     string
	err    error
	at     time.Time
}

// Compute returns image name -> remote ID for the pull Images it could
// resolve, and the errors of those it could not (an unreachable repository:
// the current image and its containers stay as they are).
func (r *Remotes) Compute(ctx context.Context, set *manifests.Set) (map[string]string, map[string]error) {
	ids, errs := map[string]string{}, map[string]error{}
	if set == nil {
		return ids, errs
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
		src := p.Repository + "#" + p.Tag
		c, ok := r.cache[name]
		if !ok || c.source != src || time.Since(c.at) >= interval {
			rctx, cancel := context.WithTimeout(ctx, time.Minute)
			id, err := r.Resolve(rctx, p.Repository, p.Tag)
			cancel()
			if err != nil {
				err = fmt.Errorf("resolve %s in %s: %w", p.Tag, p.Repository, err)
			}
			c = remote{source: src, id: id, err: err, at: time.Now()}
			r.cache[name] = c
		}
		if c.err != nil {
			errs[name] = c.err
			continue
		}
		ids[name] = c.id
	}
	return ids, errs
}
