//go:build linux

package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/engine/supervisor"
	"github.com/zocker-reconcile/zocker-reconcile/internal/testenv"
)

// applyHost is a root dataset, a state directory and a manifest directory
// that `zocker-reconcile apply` converges, as an administrator runs it.
type applyHost struct {
	bin, root, state, manifests string
}

func newApplyHost(b *testing.B) *applyHost {
	b.Helper()
	base := b.TempDir()
	h := &applyHost{bin: binary(b), root: testenv.Dataset(b), state: filepath.Join(base, "state"), manifests: filepath.Join(base, "m")}
	if err := os.MkdirAll(h.manifests, 0o755); err != nil {
		b.Fatal(err)
	}
	h.write(b, "image", fmt.Sprintf("apiVersion: zocker/v1\nkind: Image\nmetadata: {name: busybox}\nspec:\n  tarball: {path: %s}\n", testenv.BusyboxTarball(b)))
	b.Cleanup(func() { h.clear(b) })
	return h
}

func (h *applyHost) write(b *testing.B, name, text string) {
	if err := os.WriteFile(filepath.Join(h.manifests, name+".yaml"), []byte(text), 0o644); err != nil {
		b.Fatal(err)
	}
}

// apply runs apply once and returns its wall time.
func (h *applyHost) apply(b *testing.B, extra ...string) time.Duration {
	b.Helper()
	args := append([]string{"apply", "--init", "--root", h.root, "--state-dir", h.state, "--manifests", h.manifests, "--max-prune", "-1"}, extra...)
	cmd := exec.Command(h.bin, args...)
	cmd.Env = append(os.Environ(), "ZOCKER_LOG_LEVEL=warn")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	if err != nil {
		b.Fatalf("apply: %v\n%s", err, tail(out, 20))
	}
	return took
}

// runD is `zocker-reconcile run -d` of a sleeping busybox without network
// (the counterpart of `podman run -d`), timed until it returns: the
// container's command then runs.
func (h *applyHost) runD(b *testing.B, name string) time.Duration {
	b.Helper()
	cmd := exec.Command(h.bin, "run", "-d", "--root", h.root, "--state-dir", h.state, "-n", name, "--network", "none", "busybox", "/bin/sleep", "100000")
	cmd.Env = append(os.Environ(), "ZOCKER_LOG_LEVEL=warn")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	if err != nil {
		b.Fatalf("run -d: %v\n%s", err, tail(out, 20))
	}
	return took
}

// clear stops every container's supervisor (which removes its jail); the
// clones go with testenv's one recursive destroy of the root, which costs
// zfs-fuse far less than destroying them one by one.
func (h *applyHost) clear(b *testing.B) { stopSupervisors(b, h.state) }

// report prints a figure at once (b.Logf shows only at the end, and a
// long run cut short would lose it) and reports it.
func report(b *testing.B, v float64, unit string) {
	fmt.Fprintf(os.Stderr, "%s: %g %s\n", b.Name(), v, unit)
	b.ReportMetric(v, unit)
}

// helperPSS sums Pss (kB, /proc/PID/smaps_rollup) of the supervisors of the
// state directory and of their jails' inits.
func helperPSS(b *testing.B, state string) (sup, init, n int) {
	b.Helper()
	sts, err := supervisor.List(state)
	if err != nil {
		b.Fatal(err)
	}
	for _, st := range sts {
		if !st.Alive {
			continue
		}
		n++
		sup += pssKB(b, st.SupervisorPID)
	}
	pids, _ := filepath.Glob(filepath.Join(state, "jails", "*.pid"))
	for _, p := range pids {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err == nil {
			init += pssKB(b, pid)
		}
	}
	return sup, init, n
}

func pssKB(b *testing.B, pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		b.Logf("pss of %d: %v", pid, err)
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "Pss:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return kb
		}
	}
	return 0
}

// podman runs Debian's podman with runc and private storage: overlay (its
// default here) under /var/tmp, and a containers.conf without
// default_ulimits (the ones it sets by default are refused in this VM).
type podman struct {
	dir   string
	image string
}

func newPodman(b *testing.B) *podman {
	b.Helper()
	for _, tool := range []string{"podman", "/usr/sbin/runc"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				b.Fatalf("%s is needed (apt-get install podman runc): %v", tool, err)
			}
			b.Skipf("%s not installed (apt-get install podman runc): %v", tool, err)
		}
	}
	dir, err := os.MkdirTemp("/var/tmp", "zocker-bench-podman-")
	if err != nil {
		b.Fatal(err)
	}
	p := &podman{dir: dir, image: "localhost/zocker-bench-busybox"}
	if err := os.WriteFile(filepath.Join(dir, "containers.conf"), []byte("[containers]\ndefault_ulimits = []\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		p.run(b, "rm", "-a", "-f", "-t", "0")
		p.run(b, "rmi", "-a", "-f")
		p.run(b, "system", "reset", "-f")
		if err := os.RemoveAll(dir); err != nil {
			b.Logf("remove %s: %v", dir, err)
		}
	})
	if _, err := p.run(b, "import", testenv.BusyboxTarball(b), p.image); err != nil {
		b.Fatal(err)
	}
	return p
}

func (p *podman) run(b *testing.B, args ...string) (string, error) {
	full := append([]string{"--root", filepath.Join(p.dir, "storage"), "--runroot", filepath.Join(p.dir, "run"), "--runtime", "/usr/sbin/runc"}, args...)
	cmd := exec.Command("podman", full...)
	cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+filepath.Join(p.dir, "containers.conf"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("podman %s: %v: %s", strings.Join(args, " "), err, tail(out, 5))
	}
	return string(out), nil
}

// runD is `podman run -d` of a sleeping busybox without network, timed.
func (p *podman) runD(b *testing.B, name string) time.Duration {
	start := time.Now()
	if _, err := p.run(b, "run", "-d", "--name", name, "--network", "none", p.image, "/bin/sleep", "100000"); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

// conmonPSS sums the Pss of the conmon of every running container.
func (p *podman) conmonPSS(b *testing.B) (kb, n int) {
	out, err := p.run(b, "ps", "-q")
	if err != nil {
		b.Fatal(err)
	}
	for _, id := range strings.Fields(out) {
		s, err := p.run(b, "inspect", "--format", "{{.State.ConmonPid}}", id)
		if err != nil {
			b.Fatal(err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			b.Fatalf("conmon pid of %s: %q", id, s)
		}
		kb += pssKB(b, pid)
		n++
	}
	return kb, n
}

// BenchmarkVsPodman measures, in one run on the same machine, against
// `podman run -d` (Debian's podman with runc, overlay storage):
//   - single start: p50 of 20 `zocker-reconcile run -d` (it returns once
//     the command runs), against 20 `podman run -d`;
//   - bulk start: one `apply` of 60 new manifests, against 60 `podman run -d`
//     one after the other (podman has no bulk form);
//   - memory: the Pss of every helper process per container (supervisor
//     and jail init; the supervisor alone), against conmon's.
//
// The ratios are ours over podman's: <= 1 means as fast or faster.
func BenchmarkVsPodman(b *testing.B) {
	const single, bulk = 20, 60
	for i := 0; i < b.N; i++ {
		h := newApplyHost(b)
		p := newPodman(b)
		h.apply(b) // the image import, outside the measurement
		p.runD(b, "warmup")

		var ours, theirs []time.Duration
		for j := 0; j < single; j++ {
			name := fmt.Sprintf("one%02d", j)
			ours = append(ours, h.runD(b, name))
			theirs = append(theirs, p.runD(b, name))
		}
		op, pp := percentile(ours, 0.5), percentile(theirs, 0.5)
		fmt.Fprintf(os.Stderr, "single start: ours %v, podman %v\n", ours, theirs)

		for j := 0; j < bulk; j++ {
			name := fmt.Sprintf("bulk%02d", j)
			h.write(b, name, container(name))
		}
		ob := h.apply(b)
		start := time.Now()
		for j := 0; j < bulk; j++ {
			p.runD(b, fmt.Sprintf("bulk%02d", j))
		}
		pb := time.Since(start)

		sup, init, n := helperPSS(b, h.state)
		conmon, m := p.conmonPSS(b)
		fmt.Fprintf(os.Stderr, "Pss: %d supervisors %d kB, their inits %d kB; %d conmons %d kB\n", n, sup, init, m, conmon)
		if n == 0 || m == 0 {
			b.Fatalf("no running containers to measure (%d ours, %d podman's)", n, m)
		}
		report(b, ms(op), "single-p50-ms")
		report(b, ms(pp), "podman-single-p50-ms")
		report(b, op.Seconds()/pp.Seconds(), "single-ratio")
		report(b, ob.Seconds(), "bulk60-s")
		report(b, pb.Seconds(), "podman-bulk60-s")
		report(b, ob.Seconds()/pb.Seconds(), "bulk-ratio")
		// Measured at once after the bulk start; BenchmarkHelperPSS gives
		// the steady-state figures judged against the targets.
		report(b, float64(sup+init)/float64(n)/1024, "helper-pss-after-bulk-MB/container")
		report(b, float64(conmon)/float64(m)/1024, "conmon-pss-after-bulk-MB/container")
	}
}

// BenchmarkConvergeScale converges N containers from an empty root with one
// `apply` (default workers), at N=20 and at ZOCKER_BENCH_SCALE_N (200),
// each on a fresh root, and reports the wall time per container at each
// and their ratio (target: within 1.3x), and, as the substrate's control,
// the time of a bare `zfs clone` with the N containers in place.
func BenchmarkConvergeScale(b *testing.B) {
	big := envInt("ZOCKER_BENCH_SCALE_N", 200)
	for i := 0; i < b.N; i++ {
		per, bare := map[int]time.Duration{}, map[int]time.Duration{}
		for _, n := range []int{20, big} {
			h := newApplyHost(b)
			h.apply(b) // the image import, outside the measurement
			for j := 0; j < n; j++ {
				name := fmt.Sprintf("s%03d", j)
				h.write(b, name, container(name))
			}
			took := h.apply(b)
			per[n] = took / time.Duration(n)
			fmt.Fprintf(os.Stderr, "%d containers from empty: %s, %s per container\n", n, took.Round(time.Millisecond), per[n].Round(time.Millisecond))
			report(b, ms(per[n]), fmt.Sprintf("ms/container-at-%d", n))
			// The control: a bare `zfs clone` of the image, no zocker code,
			// with the n containers in place. Its growth with n is the
			// substrate's (zfs-fuse mounts every clone through FUSE).
			bare[n] = bareClone(b, h.root, 5)
			report(b, ms(bare[n]), fmt.Sprintf("bare-zfs-clone-ms-at-%d", n))
		}
		report(b, per[big].Seconds()/per[20].Seconds(), "per-container-ratio")
		report(b, bare[big].Seconds()/bare[20].Seconds(), "bare-zfs-clone-ratio")
	}
}

// bareClone returns the mean time of k `zfs clone` of root's first image
// snapshot, run directly (the clones stay under root for its cleanup).
func bareClone(b *testing.B, root string, k int) time.Duration {
	b.Helper()
	out, err := exec.Command("zfs", "list", "-H", "-o", "name", "-t", "snapshot", "-r", root+"/images").Output()
	if err != nil {
		b.Fatalf("list image snapshots: %v", err)
	}
	snap := ""
	for _, l := range strings.Fields(string(out)) {
		if strings.HasSuffix(l, "@image") {
			snap = l
			break
		}
	}
	if snap == "" {
		b.Fatalf("no image snapshot under %s: %s", root, out)
	}
	start := time.Now()
	for i := range k {
		if out, err := exec.Command("zfs", "clone", snap, fmt.Sprintf("%s/bare%d", root, i)).CombinedOutput(); err != nil {
			b.Fatalf("zfs clone: %v: %s", err, out)
		}
	}
	return time.Since(start) / time.Duration(k)
}
