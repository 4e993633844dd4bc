package zfs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkObserveRealPool measures Observe on the zfs-fuse pool with 10 and
// 100 containers (plus the tree, one image and its snapshot): one command.
func BenchmarkObserveRealPool(b *testing.B) {
	ts := openTest(b)
	s, ctx := ts.Store, context.Background()
	id, err := s.ImportTarball(ctx, ImportSource{Path: makeTar(b, map[string]string{"bin/x": "x"})}, Config{})
	if err != nil {
		b.Fatal(err)
	}
	made := 0
	// The engine (which retries on busy) removes the clones before the
	// test environment destroys the root (cleanups run last-in first-out).
	b.Cleanup(func() {
		for i := 0; i < made; i++ {
			if err := s.DestroyContainer(ctx, fmt.Sprintf("c%d", i)); err != nil {
				b.Error(err)
			}
		}
	})
	for _, n := range []int{10, 100} {
		for ; made < n; made++ {
			if _, err := s.CreateContainer(ctx, fmt.Sprintf("c%d", made), id, map[string]string{PropSpecHash: "h"}); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			start := ts.exec.Count.Load()
			for i := 0; i < b.N; i++ {
				st, err := s.Observe(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if len(st.Containers) != n {
					b.Fatalf("%d containers, want %d", len(st.Containers), n)
				}
			}
			b.ReportMetric(float64(ts.exec.Count.Load()-start)/float64(b.N), "commands/op")
		})
	}
}

// BenchmarkClone compares creating a container from a small image (a few
// files) and from a large one (ZOCKER_BENCH_BIG_MB, default 512 MB of random
// data): a ZFS clone is O(1), so the two must stay within 1.5x.
func BenchmarkClone(b *testing.B) {
	ts := openTest(b)
	s, ctx := ts.Store, context.Background()
	small, err := s.ImportTarball(ctx, ImportSource{Path: makeTar(b, map[string]string{"bin/x": "x"})}, Config{})
	if err != nil {
		b.Fatal(err)
	}
	mb := 512
	if v := os.Getenv("ZOCKER_BENCH_BIG_MB"); v != "" {
		fmt.Sscan(v, &mb)
	}
	// The big image is made with the builder's primitives (work dataset,
	// files, publish): no 512 MB tarball on disk.
	w, err := s.NewWork(ctx, "")
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	for i := 0; i < mb/8; i++ {
		if err := writeRandom(filepath.Join(w.Mountpoint, fmt.Sprintf("blob%03d", i)), 8<<20); err != nil {
			b.Fatal(err)
		}
	}
	big := TarballID(fmt.Sprintf("%064x", time.Now().UnixNano()))
	if err := s.Publish(ctx, w, big, Config{}, nil); err != nil {
		b.Fatal(err)
	}
	st := mustObserve(b, s)
	im, _ := st.Image(big)
	if im.Referenced < uint64(mb)*9/10<<20 {
		b.Fatalf("big image references only %d MB, want about %d", im.Referenced>>20, mb)
	}
	b.Logf("big image: %d MB referenced, made in %s", im.Referenced>>20, time.Since(start).Round(time.Second))
	for _, c := range []struct{ name, id string }{{"small", small}, {"large", big}} {
		b.Run(c.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				name := fmt.Sprintf("%s-%d", c.name, i)
				if _, err := s.CreateContainer(ctx, name, c.id, nil); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := s.DestroyContainer(ctx, name); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}
