package owner

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// props is the root's zocker:* properties in memory.
type props map[string]string

func (p props) SetRootProp(_ context.Context, k, v string) error { p[k] = v; return nil }
func (p props) ClearRootProp(_ context.Context, k string) error  { delete(p, k); return nil }

func TestAcquire(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p := props{}
	me := Self("serve", "127.0.0.1:9847")
	l, err := Acquire(ctx, dir, "tank/zocker", p, p, me)
	if err != nil {
		t.Fatal(err)
	}
	if p[propOwner] != me.String() {
		t.Fatalf("zocker:owner = %q, want %q", p[propOwner], me.String())
	}
	// A second writer with the same state directory: refused by the lock
	// file, naming the holder.
	_, err = Acquire(ctx, dir, "tank/zocker", props{}, props{}, Holder{Host: me.Host, PID: me.PID + 1, What: "apply"})
	var he *HeldError
	if !errors.As(err, &he) || he.Holder.PID != me.PID || !strings.Contains(err.Error(), "listening on 127.0.0.1:9847") {
		t.Fatalf("second Acquire: %v", err)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := p[propOwner]; ok {
		t.Errorf("zocker:owner left after Release: %v", p)
	}

	// Another state directory: the root's property names a live holder
	// (our parent, the test binary's runner, on this host).
	live := Holder{Host: me.Host, PID: os.Getppid(), What: "serve", Addr: "127.0.0.1:1"}
	_, err = Acquire(ctx, t.TempDir(), "tank/zocker", props{propOwner: live.String()}, props{}, me)
	if !errors.As(err, &he) || he.Holder.PID != live.PID {
		t.Fatalf("Acquire beside a live holder named by the root: %v", err)
	}
	// A holder that is gone is taken over.
	dead := Holder{Host: me.Host, PID: 1 << 30, What: "serve"}
	p2 := props{propOwner: dead.String()}
	l, err = Acquire(ctx, t.TempDir(), "tank/zocker", p2, p2, me)
	if err != nil {
		t.Fatalf("Acquire over a dead holder: %v", err)
	}
	l.Release(ctx)
}

func TestStateDirBinding(t *testing.T) {
	ctx := context.Background()
	a, b := t.TempDir(), t.TempDir()
	p := props{}
	if err := CheckStateDir(a, "tank/zocker", p); err != nil {
		t.Fatalf("a fresh state dir: %v", err)
	}
	if err := BindStateDir(ctx, a, "tank/zocker", p, p); err != nil {
		t.Fatal(err)
	}
	if p[propStateDir] != a {
		t.Fatalf("zocker:state-dir = %q", p[propStateDir])
	}
	// Another state directory for the same root, while the bound one exists.
	if err := CheckStateDir(b, "tank/zocker", p); err == nil || !strings.Contains(err.Error(), "give --state-dir "+a) {
		t.Errorf("another state dir: %v", err)
	}
	// The bound state directory for another root.
	if err := CheckStateDir(a, "tank/other", props{}); err == nil || !strings.Contains(err.Error(), "belongs to root tank/zocker") {
		t.Errorf("state dir of another root: %v", err)
	}
	// After a reboot (the recorded directory is gone), any is fine.
	if err := os.RemoveAll(filepath.Join(a, rootFile)); err != nil {
		t.Fatal(err)
	}
	if err := CheckStateDir(b, "tank/zocker", p); err != nil {
		t.Errorf("the recorded state dir is gone: %v", err)
	}
}
