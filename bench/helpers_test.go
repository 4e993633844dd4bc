//go:build linux

package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/engine/jail"
	"github.com/zocker-reconcile/zocker-reconcile/engine/supervisor"
	"github.com/zocker-reconcile/zocker-reconcile/internal/testenv"
)

// BenchmarkHelperPSS starts N (ZOCKER_BENCH_PSS_N, 60) sleeping busybox
// containers through the lean supervisor (zocker-supervise, whose jail
// init is the same binary) on one prepared root directory, without ZFS, and
// as many `podman run -d`, and reports the Pss per container of our
// helpers (supervisor + init; the supervisor alone) against conmon's, at
// once and in steady state (steadyAfter), and
// the p50 of supervisor.Start against `podman run -d`. Without a clone and
// without the CLI process that time is a lower bound of a real start (see
// BenchmarkVsPodman for run -d and apply on ZFS).
// steadyAfter is how long BenchmarkHelperPSS waits after the last start:
// past the Go runtime's forced collection (every 2 minutes).
const steadyAfter = 125 * time.Second

func BenchmarkHelperPSS(b *testing.B) {
	testenv.RequireRoot(b)
	n := envInt("ZOCKER_BENCH_PSS_N", 60)
	for i := 0; i < b.N; i++ {
		root := filepath.Join(b.TempDir(), "rootfs")
		if out, err := exec.Command("cp", "-a", testenv.BusyboxRootfs(b), root).CombinedOutput(); err != nil {
			b.Fatalf("copy rootfs: %v: %s", err, out)
		}
		state := b.TempDir()
		b.Cleanup(func() { stopSupervisors(b, state) })
		self := []string{filepath.Join(filepath.Dir(binary(b)), "zocker-supervise")}
		p := newPodman(b)
		p.runD(b, "warmup")
		var ours, theirs []time.Duration
		for j := 0; j < n; j++ {
			name := fmt.Sprintf("p%03d", j)
			cfg := supervisor.Config{
				Jail:          jail.Spec{Name: name, Root: root, Network: jail.Network{Mode: jail.NetNone}},
				Process:       jail.Process{Argv: []string{"/bin/sleep", "100000"}, Env: []string{"PATH=/bin"}},
				RestartPolicy: supervisor.RestartNever,
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			start := time.Now()
			_, err := supervisor.Start(ctx, state, name, self, cfg)
			cancel()
			if err != nil {
				b.Fatalf("start %s: %v", name, err)
			}
			ours = append(ours, time.Since(start))
			theirs = append(theirs, p.runD(b, name))
		}
		sup0, init0, _ := helperPSS(b, state)
		// Steady state: a Go process that is idle is still collected every
		// two minutes (the runtime's forced GC), and that first cycle maps
		// GC metadata a process measured at once has not touched yet. The
		// figures against the targets are taken after it.
		time.Sleep(steadyAfter)
		sup, init, got := helperPSS(b, state)
		conmon, m := p.conmonPSS(b)
		fmt.Fprintf(os.Stderr, "Pss at once: %d supervisors %d kB, their inits %d kB; after %v: %d kB, %d kB; %d conmons %d kB\n",
			got, sup0, init0, steadyAfter, sup, init, m, conmon)
		if got != n {
			b.Fatalf("%d of %d supervisors alive", got, n)
		}
		op, pp := percentile(ours, 0.5), percentile(theirs, 0.5)
		report(b, float64(sup0+init0)/float64(n)/1024, "helper-pss-at-start-MB/container")
		report(b, float64(sup+init)/float64(n)/1024, "helper-pss-MB/container")
		report(b, float64(sup)/float64(n)/1024, "supervisor-pss-MB/container")
		report(b, float64(conmon)/float64(m)/1024, "conmon-pss-MB/container")
		report(b, ms(op), "supervisor-start-p50-ms")
		report(b, ms(pp), "podman-run-d-p50-ms")
	}
}
