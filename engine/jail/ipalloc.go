package jail

import (
	"errors"
	"fmt"
	"net/netip"
)

// DefaultLoopbackPool is where loopback-mode addresses come from, as in the
// original Zocker: 127.0.1.0/24 on lo0 (or a cloned lo1).
var DefaultLoopbackPool = netip.MustParsePrefix("127.0.1.0/24")

// ErrPoolExhausted is returned when every address of a loopback pool is in use.
var ErrPoolExhausted = errors.New("loopback address pool exhausted")

// AllocateLoopback returns the lowest free address of pool, given the
// addresses already held by containers (addresses outside the pool are
// ignored). It skips the pool's first address (the network address, .0),
// its second (.1, left to the host side: the address an operator gives a
// cloned lo1 that pf NATs for) and, for IPv4, its last (the broadcast
// address, .255). 127.0.1.0/24 thus yields 127.0.1.2 .. 127.0.1.254, 253
// containers. The function is pure: the caller stores the result in the
// container's zocker:ip property, so the address survives restarts and
// re-creation and the next allocation sees it as used.
func AllocateLoopback(pool netip.Prefix, used []netip.Addr) (netip.Addr, error) {
	if !pool.IsValid() {
		return netip.Addr{}, errors.New("allocate loopback address: invalid pool")
	}
	pool = pool.Masked()
	first := pool.Addr()
	hostBits := first.BitLen() - pool.Bits()
	if hostBits < 2 {
		return netip.Addr{}, fmt.Errorf("allocate loopback address: pool %s is too small (at least a /%d)", pool, first.BitLen()-2)
	}
	taken := make(map[netip.Addr]bool, len(used))
	for _, a := range used {
		taken[a.Unmap()] = true
	}
	last := lastAddr(pool)
	for a := first.Next().Next(); a.IsValid() && pool.Contains(a); a = a.Next() {
		if a.Is4() && a == last {
			break
		}
		if !taken[a] {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("allocate loopback address in %s (%d in use): %w", pool, len(taken), ErrPoolExhausted)
}

// lastAddr is the highest address of a masked prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}
