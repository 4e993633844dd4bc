package controller

import (
	"math/rand/v2"
	"time"
)

// Backoff computes per-key retry delays: Base after the first failure,
// doubling with each further consecutive failure, never above Max. The zero
// value uses DefaultBackoff's bounds.
type Backoff struct {
	// Base is the delay after the first failure (default 1 s).
	Base time.Duration
	// Max caps the delay (default 5 min).
	Max time.Duration
}

// DefaultBackoff is 1 s doubling to 5 min, as ARCHITECTURE section 6 fixes.
var DefaultBackoff = Backoff{Base: time.Second, Max: 5 * time.Minute}

// Delay returns how long to wait before the next attempt after failures
// consecutive failures (failures <= 0 means no failure: no delay).
func (b Backoff) Delay(failures int) time.Duration {
	if failures <= 0 {
		return 0
	}
	base, limit := b.Base, b.Max
	if base <= 0 {
		base = DefaultBackoff.Base
	}
	if limit <= 0 {
		limit = DefaultBackoff.Max
	}
	d := base
	// Doubling stops at the cap, so a key failing for days never overflows.
	for i := 1; i < failures && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// Jitter spreads period by up to ±frac (0.1 = ±10%), with r a uniform
// sample in [0, 1) (nil uses math/rand). Services started together by the
// same rc.d boot then do not resync in lockstep.
func Jitter(period time.Duration, frac float64, r func() float64) time.Duration {
	if period <= 0 || frac <= 0 {
		return period
	}
	if r == nil {
		r = rand.Float64
	}
	delta := (r()*2 - 1) * frac * float64(period)
	return period + time.Duration(delta)
}
