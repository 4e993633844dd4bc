package engine

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/zocker-reconcile/zocker-reconcile/engine/zfs"
	"github.com/zocker-reconcile/zocker-reconcile/internal/testenv"
	"github.com/zocker-reconcile/zocker-reconcile/manifests"
	"github.com/zocker-reconcile/zocker-reconcile/reconcile"
)

// TestLoopbackTwoAllocatorsNeverShareAnAddress: two engines on one root and
// state directory (the service and a `run` beside it: each its own open of
// the lock file, each its own cache of the addresses in use) create
// containers at the same time on the real pool; every address is given
// once. Without the generation in the lock file, each engine's cache would
// miss the other's allocations.
func TestLoopbackTwoAllocatorsNeverShareAnAddress(t *testing.T) {
	a := newTestEngine(t)
	b := &Engine{Store: a.Store, Driver: a.Driver, StateDir: a.StateDir, Self: a.Self, Log: a.Log}
	ctx := context.Background()
	img := &manifests.Image{Metadata: manifests.ObjectMeta{Name: "busybox"},
		Spec: manifests.ImageSpec{Tarball: &manifests.TarballSource{Path: testenv.BusyboxTarball(t)}}}
	converge(t, a, img)
	id, err := a.Store.ResolveRef(ctx, "busybox")
	if err != nil {
		t.Fatal(err)
	}
	const per = 6
	var wg sync.WaitGroup
	errs := make(chan error, 2*per)
	for i, e := range []*Engine{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range per {
				name := fmt.Sprintf("e%d-%d", i, j)
				c := stopped(name, func(c *manifests.Container) { c.Spec.Network.Mode = manifests.NetLoopback })
				if err := e.Execute(ctx, reconcile.Action{Kind: manifests.KindContainer, Name: name, Op: reconcile.OpCreate, Container: c, ImageID: id}); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	ips, err := a.Store.(*zfs.Store).ContainerValues(ctx, PropIP)
	if err != nil {
		t.Fatal(err)
	}
	holder := map[string]string{}
	for name, ip := range ips {
		if other, ok := holder[ip]; ok {
			t.Errorf("%s and %s both have %s", name, other, ip)
		}
		holder[ip] = name
	}
	if len(ips) != 2*per {
		t.Errorf("%d addresses for %d containers: %v", len(ips), 2*per, ips)
	}
}
