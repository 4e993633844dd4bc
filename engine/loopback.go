package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/zocker-reconcile/zocker-reconcile/engine/jail"
	"github.com/zocker-reconcile/zocker-reconcile/manifests"
	"github.com/zocker-reconcile/zocker-reconcile/reconcile"
)

// Loopback addresses come from one pool for the service and the ad-hoc
// commands (run, create): an allocation and the clone that records it (its
// zocker:ip) are one step under an flock of STATE/loopback.lock, and the
// addresses in use are every container's zocker:ip.
//
// Reading them is one `zfs get -r zocker:ip ROOT/containers`, whose cost
// grows with the number of containers: once per create, a bulk start of N
// containers would be quadratic (issue 15). So an engine keeps what it read
// and what it allocated since, and the lock file holds a generation, a
// random token each allocator writes before its clone: the same token
// under the lock means no other process allocated since, and the kept
// addresses are still the whole truth. Addresses freed since (a pruned
// container) stay marked used in the cache, which only picks a higher
// address; a full pool, or a whole observation, reads them again.

// cloneWithAddress allocates a loopback address for c and clones with it,
// as one step for this engine's workers and for other processes.
func (e *Engine) cloneWithAddress(ctx context.Context, c *manifests.Container, imageID string, props map[string]string) error {
	name := c.Metadata.Name
	e.allocMu.Lock()
	defer e.allocMu.Unlock()
	lock, err := lockFile(filepath.Join(e.StateDir, "loopback.lock"))
	if err != nil {
		return fmt.Errorf("container %s: %w", name, err)
	}
	defer lock.Close()
	gen, err := lock.generation()
	if err != nil {
		return fmt.Errorf("container %s: %w", name, err)
	}
	if e.ipsDrop.Swap(false) || gen != e.ipsGen {
		e.ips = nil
	}
	cached := e.ips != nil
	address, err := e.allocate(ctx)
	if errors.Is(err, jail.ErrPoolExhausted) && cached {
		// The cache may hold addresses freed since it was read.
		e.ips = nil
		address, err = e.allocate(ctx)
	}
	if err != nil {
		if errors.Is(err, jail.ErrPoolExhausted) {
			err = reconcile.Terminal(err)
		}
		return fmt.Errorf("container %s: %w", name, err)
	}
	// The new generation is written before the clone: whatever happens
	// next, another process reads the addresses again.
	next := newGeneration()
	if err := lock.setGeneration(next); err != nil {
		e.ips = nil
		return fmt.Errorf("container %s: %w", name, err)
	}
	e.ipsGen = next
	props[PropIP] = address
	if err := e.clone(ctx, name, imageID, props); err != nil {
		e.ips = nil // did the clone happen? Read again next time.
		return err
	}
	e.ips[name] = address
	return nil
}

// allocate picks the lowest free address of the pool, reading the
// addresses in use when e.ips is not known (allocMu held).
func (e *Engine) allocate(ctx context.Context) (string, error) {
	if e.ips == nil {
		ips, err := e.Store.ContainerValues(ctx, PropIP)
		if err != nil {
			return "", err
		}
		e.ips = ips
	}
	var used []netip.Addr
	for _, ip := range e.ips {
		if a, err := netip.ParseAddr(ip); err == nil {
			used = append(used, a)
		}
	}
	pool := e.LoopbackPool
	if !pool.IsValid() {
		pool = jail.DefaultLoopbackPool
	}
	addr, err := jail.AllocateLoopback(pool, used)
	if err != nil {
		return "", err
	}
	return addr.String(), nil
}

func newGeneration() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// lockedFile is a file held under an exclusive flock until Close.
type lockedFile struct{ f *os.File }

// lockFile takes an exclusive flock on path (created if needed).
func lockFile(path string) (*lockedFile, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return &lockedFile{f}, nil
}

// generation is what the file holds ("" when empty).
func (l *lockedFile) generation() (string, error) {
	b, err := io.ReadAll(io.NewSectionReader(l.f, 0, 64))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", l.f.Name(), err)
	}
	return string(b), nil
}

func (l *lockedFile) setGeneration(gen string) error {
	if err := l.f.Truncate(0); err != nil {
		return fmt.Errorf("write %s: %w", l.f.Name(), err)
	}
	if _, err := l.f.WriteAt([]byte(gen), 0); err != nil {
		return fmt.Errorf("write %s: %w", l.f.Name(), err)
	}
	return nil
}

func (l *lockedFile) Close() error { return l.f.Close() }
