package engine

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/zocker-reconcile/zocker-reconcile/engine/zfs"
	"github.com/zocker-reconcile/zocker-reconcile/manifests"
	"github.com/zocker-reconcile/zocker-reconcile/reconcile"
)

// A bulk create reads the addresses in use once, not once per container
// (that read grows with the number of containers); an allocation by
// another process (a new generation in the lock file), a whole observation
// or a full pool make it read them again.
func TestLoopbackAddressesReadOncePerBulk(t *testing.T) {
	e, s, _ := newFakeEngine(t)
	ctx := context.Background()
	e.LoopbackPool = netip.MustParsePrefix("127.0.1.0/29") // .2 to .6
	create := func(name string) string {
		t.Helper()
		c := stopped(name, func(c *manifests.Container) { c.Spec.Network.Mode = manifests.NetLoopback })
		if err := e.Execute(ctx, reconcile.Action{Kind: manifests.KindContainer, Name: name, Op: reconcile.OpCreate, Container: c, ImageID: imageID}); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		for _, sc := range s.st.Containers {
			if sc.ContainerName == name {
				return sc.Props[PropIP]
			}
		}
		t.Fatalf("%s not created", name)
		return ""
	}
	expect := func(step string, got, want string, reads int) {
		t.Helper()
		if got != want || s.valueReads != reads {
			t.Errorf("%s: address %s after %d reads, want %s after %d", step, got, s.valueReads, want, reads)
		}
	}
	expect("first", create("a"), "127.0.1.2", 1)
	expect("second", create("b"), "127.0.1.3", 1)

	// Another process allocated .4 (its clone is there, the generation moved).
	s.st.Containers = append(s.st.Containers, zfs.Container{ContainerName: "other", Dataset: zfs.Dataset{Props: map[string]string{PropIP: "127.0.1.4"}}})
	if err := os.WriteFile(filepath.Join(e.StateDir, "loopback.lock"), []byte("elsewhere"), 0o600); err != nil {
		t.Fatal(err)
	}
	expect("after another process", create("c"), "127.0.1.5", 2)

	// A whole observation reads them again at the next allocation.
	if _, err := e.ObserveDetail(ctx); err != nil {
		t.Fatal(err)
	}
	expect("after a whole observation", create("d"), "127.0.1.6", 3)

	// The pool is full as far as the cache knows; a and b are gone since:
	// read again, take the lowest free.
	if err := e.Execute(ctx, reconcile.Action{Kind: manifests.KindContainer, Name: "a", Op: reconcile.OpPrune}); err != nil {
		t.Fatal(err)
	}
	expect("with a stale cache", create("f"), "127.0.1.2", 4)
	c := stopped("g", func(c *manifests.Container) { c.Spec.Network.Mode = manifests.NetLoopback })
	err := e.Execute(ctx, reconcile.Action{Kind: manifests.KindContainer, Name: "g", Op: reconcile.OpCreate, Container: c, ImageID: imageID})
	if !reconcile.IsTerminal(err) {
		t.Errorf("full pool: %v, want a terminal error", err)
	}
}
