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

// Remotes resolves the repository tags of the Images declared with pull:
// and the registry tags (or archives) of those declared with oci:,
// each at most once per Interval, and again at once when the manifests
// change (a new revision), so that resyncs do not hit the repository every
// 30 seconds.
type Remotes struct {
	Interval time.Duration
	// Resolve reads the ID a repository tag points to (repo.Resolve).
	Resolve func(ctx context.Context, url, tag string) (string, error)
	// ResolveOCI reads the image ID (config digest) an oci source names
	// now; nil leaves oci Images out (they are pulled when not present).
	ResolveOCI func(ctx context.Context, src *manifests.OCISource) (string, error)

	mu       sync.Mutex
	revision string
	cache    map[string]remote
	// pinned are oci digest references resolved once: they never move, so
	// they survive new revisions and are not asked again.
	pinned map[string]string
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
		var src string
		var resolve func(context.Context) (string, error)
		switch p, o := img.Spec.Pull, img.Spec.OCI; {
		case p != nil:
			src = p.Repository + "#" + p.Tag
			resolve = func(ctx context.Context) (string, error) {
				id, err := r.Resolve(ctx, p.Repository, p.Tag)
				if err != nil {
					err = fmt.Errorf("resolve %s in %s: %w", p.Tag, p.Repository, err)
				}
				return id, err
			}
		case o != nil && r.ResolveOCI != nil:
			src = fmt.Sprintf("oci %s|%s|%s|%s|%s|%t", o.Ref, o.Archive, o.SHA256, o.Name, o.Platform, o.Insecure)
			if id, ok := r.pinned[src]; ok {
				ids[name] = id
				continue
			}
			resolve = func(ctx context.Context) (string, error) {
				id, err := r.ResolveOCI(ctx, o)
				if err == nil && manifests.OCIRefIsDigest(o.Ref) {
					if r.pinned == nil {
						r.pinned = map[string]string{}
					}
					r.pinned[src] = id
				}
				return id, err
			}
		default:
			continue
		}
		c, ok := r.cache[name]
		if !ok || c.source != src || time.Since(c.at) >= interval {
			rctx, cancel := context.WithTimeout(ctx, time.Minute)
			id, err := resolve(rctx)
			cancel()
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
