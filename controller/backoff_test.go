package controller

import (
	"testing"
	"time"
)

func TestBackoffDelay(t *testing.T) {
	want := []time.Duration{0, 1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second,
		16 * time.Second, 32 * time.Second, 64 * time.Second, 128 * time.Second, 256 * time.Second,
		5 * time.Minute, 5 * time.Minute}
	var b Backoff // zero value: the defaults
	for n, w := range want {
		if got := b.Delay(n); got != w {
			t.Errorf("Delay(%d) = %v, want %v", n, got, w)
		}
	}
	if got := b.Delay(1 << 20); got != 5*time.Minute {
		t.Errorf("Delay(huge) = %v, want the 5m cap", got)
	}
	custom := Backoff{Base: 100 * time.Millisecond, Max: time.Second}
	for n, w := range map[int]time.Duration{1: 100 * time.Millisecond, 3: 400 * time.Millisecond, 5: time.Second} {
		if got := custom.Delay(n); got != w {
			t.Errorf("custom Delay(%d) = %v, want %v", n, got, w)
		}
	}
}

func TestJitter(t *testing.T) {
	p := 30 * time.Second
	cases := map[float64]time.Duration{0: 27 * time.Second, 0.5: 30 * time.Second, 0.999999: 33 * time.Second}
	for r, want := range cases {
		got := Jitter(p, 0.1, func() float64 { return r })
		if d := got - want; d < -time.Millisecond || d > time.Millisecond {
			t.Errorf("Jitter(r=%v) = %v, want %v", r, got, want)
		}
	}
	for range 1000 {
		if got := Jitter(p, 0.1, nil); got < 27*time.Second || got > 33*time.Second {
			t.Fatalf("Jitter = %v, outside ±10%% of %v", got, p)
		}
	}
	if got := Jitter(p, 0, nil); got != p {
		t.Errorf("Jitter without fraction = %v, want %v", got, p)
	}
}
