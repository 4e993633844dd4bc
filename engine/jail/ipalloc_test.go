package jail

import (
	"errors"
	"net/netip"
	"testing"
)

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func TestLoopbackAllocate(t *testing.T) {
	cases := []struct {
		name string
		pool string
		used []netip.Addr
		want string
	}{
		{"empty pool starts at .2", "127.0.1.0/24", nil, "127.0.1.2"},
		{"first gap", "127.0.1.0/24", addrs("127.0.1.2", "127.0.1.3", "127.0.1.5"), "127.0.1.4"},
		{"addresses outside the pool do not count", "127.0.1.0/24", addrs("127.0.2.2", "10.0.0.2"), "127.0.1.2"},
		{"unmasked pool", "127.0.1.77/24", nil, "127.0.1.2"},
		{"small pool", "127.0.3.8/30", nil, "127.0.3.10"},
		{"ipv6", "fd00::/120", addrs("fd00::2"), "fd00::3"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := AllocateLoopback(netip.MustParsePrefix(c.pool), c.used)
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != c.want {
				t.Errorf("got %s want %s", got, c.want)
			}
		})
	}
}

func TestLoopbackExhausted(t *testing.T) {
	pool := DefaultLoopbackPool
	var used []netip.Addr
	for i := 0; i < 253; i++ {
		a, err := AllocateLoopback(pool, used)
		if err != nil {
			t.Fatalf("allocation %d: %v", i, err)
		}
		if a.String() == "127.0.1.255" || a.String() == "127.0.1.1" || a.String() == "127.0.1.0" {
			t.Fatalf("allocated reserved address %s", a)
		}
		used = append(used, a)
	}
	if last := used[len(used)-1].String(); last != "127.0.1.254" {
		t.Errorf("last address %s, want 127.0.1.254", last)
	}
	_, err := AllocateLoopback(pool, used)
	if !errors.Is(err, ErrPoolExhausted) {
		t.Fatalf("got %v, want ErrPoolExhausted", err)
	}
	if want := "allocate loopback address in 127.0.1.0/24 (253 in use): loopback address pool exhausted"; err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
	if _, err := AllocateLoopback(netip.MustParsePrefix("127.0.1.0/31"), nil); err == nil {
		t.Error("a /31 pool was accepted")
	}
	if _, err := AllocateLoopback(netip.Prefix{}, nil); err == nil {
		t.Error("an invalid pool was accepted")
	}
}

func BenchmarkLoopbackAllocate(b *testing.B) {
	var used []netip.Addr
	for i := 0; i < 250; i++ {
		a, _ := AllocateLoopback(DefaultLoopbackPool, used)
		used = append(used, a)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := AllocateLoopback(DefaultLoopbackPool, used); err != nil {
			b.Fatal(err)
		}
	}
}
