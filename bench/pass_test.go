//go:build linux

package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/controller"
	"github.com/zocker-reconcile/zocker-reconcile/engine"
	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
	"github.com/zocker-reconcile/zocker-reconcile/engine/supervisor"
	"github.com/zocker-reconcile/zocker-reconcile/engine/zfs"
	"github.com/zocker-reconcile/zocker-reconcile/manifests"
	"github.com/zocker-reconcile/zocker-reconcile/reconcile"
)

// cannedRunner answers every command with the same canned output.
type cannedRunner struct{ out []byte }

func (r cannedRunner) Run(context.Context, runner.Cmd) ([]byte, error) { return r.out, nil }

// BenchmarkPass1000 is one resync pass of the service over 1,000 declared
// containers, all converged, without a pool: the load of 1,000 unchanged
// manifest files (through the cache, as serve keeps it), the parse of a
// canned `zfs get -r all` of the tree, the conversion with 1,000 live
// supervisors, the plan, and the work queue. It reports the process CPU
// time per pass (cpu-ms/pass, target < 100 ms on a quiet machine) and
// checks that no file is decoded and nothing is planned.
func BenchmarkPass1000(b *testing.B) {
	const n, root, id = 1000, "tank/zocker", "0c54081be0b2c0f0eafc1d3ad5329bea15d082179296556750587b92773d506f"
	dir := filepath.Join(b.TempDir(), "zocker.d")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	write("busybox.yaml", "apiVersion: zocker/v1\nkind: Image\nmetadata: {name: busybox}\nspec:\n  tarball: {path: /srv/busybox.tar}\n")
	for i := range n {
		write(fmt.Sprintf("c%04d.yaml", i), container(fmt.Sprintf("c%04d", i)))
	}
	// Written just now: make them older than the cache's racy window, as
	// the files of a host whose manifests last changed a while ago.
	old := time.Now().Add(-time.Hour)
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		_ = os.Chtimes(filepath.Join(dir, e.Name()), old, old)
	}
	cache := manifests.NewCache()
	set, err := manifests.Load(dir, manifests.LoadOptions{Insecure: true, Cache: cache})
	if err != nil || len(set.Containers) != n {
		b.Fatalf("load: %v, %d containers", err, len(set.Containers))
	}
	inputs := map[string]string{"busybox": "sha256:in"}

	// The canned observation: the tree as serve left it.
	var out strings.Builder
	ds := func(name, typ string, own map[string]string) {
		fmt.Fprintf(&out, "%s\ttype\t%s\t-\n%s\tcreation\t1795836118\t-\n%s\tused\t4096\t-\n%s\treferenced\t1024\t-\n", name, typ, name, name, name)
		fmt.Fprintf(&out, "%s\tquota\t0\tdefault\n%s\tmountpoint\t/%s\tdefault\n%s\torigin\t-\t-\n", name, name, name, name)
		for k, v := range own {
			fmt.Fprintf(&out, "%s\t%s\t%s\tlocal\n", name, k, v)
		}
	}
	ds(root, "filesystem", map[string]string{zfs.PropManaged: "true", zfs.PropKind: zfs.KindRoot})
	for _, d := range []string{"images", "containers", "volumes", "tmp"} {
		own := map[string]string{zfs.PropManaged: "true", zfs.PropKind: zfs.KindDir, zfs.PropName: d}
		if d == "images" {
			own[zfs.PropTagPrefix+"busybox"] = id
		}
		ds(root+"/"+d, "filesystem", own)
	}
	ds(root+"/images/"+id, "filesystem", map[string]string{zfs.PropManaged: "true", zfs.PropKind: zfs.KindImage,
		zfs.PropConfig: `{"cmd":["/bin/sh"]}`, zfs.PropInputs: inputs["busybox"]})
	ds(root+"/images/"+id+"@image", "snapshot", nil)
	var sups []supervisor.Status
	for name, c := range set.Containers {
		spec, err := reconcile.AppliedSpec(c)
		if err != nil {
			b.Fatal(err)
		}
		ds(root+"/containers/"+name, "filesystem", map[string]string{zfs.PropManaged: "true", zfs.PropKind: zfs.KindContainer,
			zfs.PropName: name, zfs.PropImage: id, zfs.PropSpecHash: reconcile.SpecHash(c, id), zfs.PropSpec: spec,
			zfs.PropManifest: reconcile.ManifestRef(set, set.Sources[reconcile.Key(manifests.KindContainer, name)].File)})
		sups = append(sups, supervisor.Status{Name: name, State: supervisor.StateRunning, Alive: true, Health: supervisor.Health{Status: supervisor.HealthNone}})
	}
	store, err := zfs.Attach(root, cannedRunner{[]byte(out.String())}, nil)
	if err != nil {
		b.Fatal(err)
	}
	q := &controller.Queue{ClassLimits: controller.DefaultClassLimits}
	pass := func() (reconcile.Plan, manifests.CacheStats) {
		set, err := manifests.Load(dir, manifests.LoadOptions{Insecure: true, Cache: cache})
		if err != nil {
			b.Fatal(err)
		}
		st, err := store.Observe(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		o := engine.Convert(st, sups, nil)
		p := reconcile.Diff(reconcile.Desired{Set: set, ImageInputs: inputs}, o, reconcile.Options{})
		q.Replace(controller.Items(p, nil), time.Now())
		return p, cache.Stats()
	}
	p, stats := pass()
	if len(p.Actions) != 0 || stats.Decoded != 0 {
		b.Fatalf("a converged resync planned %d actions (first: %v) and decoded %d files", len(p.Actions), p.Actions[:min(1, len(p.Actions))], stats.Decoded)
	}
	b.ReportAllocs()
	cpu0 := cpuNow()
	b.ResetTimer()
	for b.Loop() {
		pass()
	}
	b.StopTimer()
	b.ReportMetric(float64((cpuNow()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/pass")
	b.ReportMetric(float64(cache.Stats().Decoded), "files-decoded/resync")
}

// cpuNow is this process's user+system CPU time.
func cpuNow() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
