package httpapi

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Heartbeat tells whether the reconcile loop is stuck. The loop calls Beat
// each time round its select (a wake-up by an event, a timer or the periodic
// resync, and after each pass), so an idle loop still beats at least once per
// resync interval; /healthz fails when the last beat is older than MaxAge.
// Choose MaxAge above the resync interval plus the longest pass the loop may
// legitimately take (e.g. 3 x resync + the per-command timeout).
type Heartbeat struct {
	// MaxAge is how old the last beat may be before the loop counts as stuck.
	MaxAge time.Duration
	// Now is the clock; nil means time.Now (tests replace it).
	Now func() time.Time

	last atomic.Int64 // unix nanoseconds of the last beat; 0 = none yet
}

// NewHeartbeat returns a Heartbeat that counts as fresh from now on, so that
// /healthz is 200 during start-up for MaxAge.
func NewHeartbeat(maxAge time.Duration) *Heartbeat {
	h := &Heartbeat{MaxAge: maxAge}
	h.Beat()
	return h
}

func (h *Heartbeat) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

// Beat records that the loop is alive now.
func (h *Heartbeat) Beat() { h.last.Store(h.now().UnixNano()) }

// Last returns the time of the last beat (zero if none).
func (h *Heartbeat) Last() time.Time {
	n := h.last.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// Check returns nil while the last beat is at most MaxAge old, else an error
// saying how long the loop has been silent. It fits Options.Live.
func (h *Heartbeat) Check() error {
	last := h.Last()
	if last.IsZero() {
		return errors.New("reconcile loop has not started")
	}
	age := h.now().Sub(last)
	if age > h.MaxAge {
		return fmt.Errorf("reconcile loop stuck: last heartbeat %s ago (max %s)",
			age.Round(time.Second), h.MaxAge)
	}
	return nil
}

// Gate is the readiness of the service: not ready, with a reason, until the
// loop calls Open (after the manifests were loaded and the first full pass
// finished). It stays open afterwards: a later failing pass shows in /status
// and the metrics, and taking the endpoint down would only hide them.
type Gate struct {
	mu     sync.Mutex
	open   bool
	reason string
}

// NewGate returns a closed gate.
func NewGate() *Gate { return &Gate{reason: "manifests not loaded yet"} }

// Wait sets the reason the gate is still closed (e.g. "first pass running");
// it does nothing once the gate is open.
func (g *Gate) Wait(reason string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.open {
		g.reason = reason
	}
}

// Open marks the service ready.
func (g *Gate) Open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open = true
}

// Check returns nil once the gate is open, else why it is not. It fits
// Options.Ready.
func (g *Gate) Check() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.open {
		return nil
	}
	return fmt.Errorf("not ready: %s", g.reason)
}
