#!/usr/bin/env bash
# make bench: the benchmarks of ARCHITECTURE section 10 and of the issues,
# run one package after the other (never two at once: they share the pool
# and the cores), then ONE table: benchmark, figure, target, ok/over.
#
# As root with no ZOCKER_TEST_POOL it brings the substrate up itself, like
# scripts/test.sh (an 8G file-backed zfs-fuse pool: the clone benchmark
# writes a 512 MB image), and removes it at exit. The raw `go test -bench -v`
# output (with each benchmark's log: the per-run phases, the no-op pass's
# command line) is kept in $BENCH_OUT (default: a new file under /tmp,
# named at the end) for BENCHMARKS.md.
#
# BenchmarkVsPodman needs Debian's podman and runc; they are installed here
# when missing (as root). Podman runs with --runtime /usr/sbin/runc, its
# default overlay storage in a private directory under /var/tmp, and a
# containers.conf with default_ulimits = [] (its default ulimits are refused
# in this VM).
#
# Environment: ZOCKER_BENCH_IDLE_N (containers of the idle benchmark, 200),
# ZOCKER_BENCH_SCALE_N (the large N of the convergence benchmark, 200),
# ZOCKER_BENCH_IDLE_WINDOW (60s), ZOCKER_BENCH_BIG_MB (512), BENCH_ONLY (a
# regular expression of package paths to run, e.g. 'reconcile|manifests').
set -euo pipefail
cd "$(dirname "$0")/.."

pool_made=""
if [ -z "${ZOCKER_TEST_POOL:-}" ] && [ "$(id -u)" = 0 ]; then
	pool=zockerbench$$
	eval "$(scripts/substrate.sh up "$pool" 8G)"
	pool_made=$pool
	trap 'scripts/substrate.sh down "$pool_made"' EXIT
fi
if [ -z "${ZOCKER_TEST_POOL:-}" ]; then
	echo "bench: ZOCKER_TEST_POOL is unset and not root: only the pure benchmarks will run (the others skip)" >&2
fi

if [ "$(id -u)" = 0 ] && { ! command -v podman >/dev/null 2>&1 || ! [ -x /usr/sbin/runc ]; }; then
	echo "bench: installing podman and runc for BenchmarkVsPodman" >&2
	apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc >&2
fi

out=${BENCH_OUT:-$(mktemp /tmp/zocker-bench.XXXXXX)}
: >"$out"
started=$(date +%s)

# package | -bench pattern | -benchtime. Long ones run a fixed count.
runs=(
	"./manifests|^BenchmarkLoad1000$|1s"
	"./reconcile|^BenchmarkPlan1000$|1s"
	"./controller|^BenchmarkQueuePass1000$|1s"
	"./engine/zfs|^BenchmarkObserveCanned$|1s"
	"./engine/zfs|^BenchmarkObserveRealPool$|20x"
	"./engine/zfs|^BenchmarkClone$|10x"
	"./engine/jail|^BenchmarkLoopbackAllocate$|1s"
	"./engine/jail/linuxns|^BenchmarkStart$|50x"
	"./engine/build|^BenchmarkRebuildUnchanged$|5x"
	"./engine/build|^BenchmarkRunTrueStep$|5x"
	"./engine/oci|^BenchmarkPullVsSkopeo$|2x"
	"./bench|^BenchmarkPass1000$|20x"
	"./bench|^BenchmarkManifestToRunning$|1x"
	"./bench|^BenchmarkHelperPSS$|1x"
	"./bench|^BenchmarkVsPodman$|1x"
	"./bench|^BenchmarkConvergeScale$|1x"
	"./bench|^BenchmarkServeIdle$|1x"
)
failed=0
for r in "${runs[@]}"; do
	IFS='|' read -r pkg pat bt <<<"$r"
	if [ -n "${BENCH_ONLY:-}" ] && ! [[ $pkg =~ $BENCH_ONLY ]]; then
		continue
	fi
	if ! ls "$pkg"/*_test.go >/dev/null 2>&1 || ! grep -qs "func ${pat:1:-1}(" "$pkg"/*_test.go; then
		echo "bench: $pkg has no ${pat:1:-1}; skipped" >&2
		continue
	fi
	echo "== $pkg ${pat} (benchtime $bt; load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
	if ! go test -v -run '^$' -bench "$pat" -benchmem -benchtime "$bt" -timeout 30m -count 1 "$pkg" 2>&1 | tee -a "$out" >&2; then
		failed=1
		echo "bench: $pkg $pat FAILED" >&2
	fi
done
took=$(($(date +%s) - started))

# The table. Each benchmark line gives rows: ns/op (with B/op and
# allocs/op) and every custom metric; targets come from ARCHITECTURE
# section 10 and the issues.
awk -v took="$took" -v out="$out" -v load="$(cut -d' ' -f1-3 /proc/loadavg)" '
function fmtns(ns) {
	if (ns >= 1e9) return sprintf("%.2f s", ns / 1e9)
	if (ns >= 1e6) return sprintf("%.2f ms", ns / 1e6)
	if (ns >= 1e3) return sprintf("%.1f µs", ns / 1e3)
	return sprintf("%.0f ns", ns)
}
function row(name, fig, target, verdict) {
	printf "%-44s %-42s %-26s %s\n", name, fig, target, verdict
}
# A custom metric (b.ReportMetric) with its target, where one is set.
function metricrow(name, u, v,    target, verdict) {
	target = "-"; verdict = ""
	if (u == "commands/op") { target = "1 (one zfs get)"; verdict = (v == 1) ? "ok" : "over" }
	if (u == "steps-run/op") { target = "0"; verdict = (v == 0) ? "ok" : "over" }
	if (u == "total-p50-ms") { target = "< 1000 ms"; verdict = (v < 1000) ? "ok" : "over" }
	if (u ~ /^cmds\/noop-pass-/) { target = "<= 2, same for any N"; verdict = (v <= 2) ? "ok" : "over"; noop[u] = v }
	if (u == "idle-cpu-%") { target = "~0 % (< 1 %)"; verdict = (v < 1) ? "ok" : "over" }
	if (u == "pull/skopeo") { target = "~1x of skopeo copy (figure)" }
	if (u == "rss-MB") { target = "< 50 MB"; verdict = (v < 50) ? "ok" : "over" }
	if (u == "single-ratio" || u == "bulk-ratio") { target = "<= 1.0 (podman = 1)"; verdict = (v <= 1) ? "ok" : "over" }
	if (u == "helper-pss-MB/container") { target = "<= 2.5 MB"; verdict = (v <= 2.5) ? "ok" : "over" }
	if (u == "supervisor-pss-MB/container") { target = "<= 1.5 MB"; verdict = (v <= 1.5) ? "ok" : "over" }
	if (u == "per-container-ratio") { target = "<= 1.3 (N=200 vs N=20)"; verdict = (v <= 1.3) ? "ok" : "over" }
	if (u == "bare-zfs-clone-ratio") { target = "control: zfs-fuse alone, N=200 vs 20" }
	if (u == "cpu-ms/pass") { target = "< 100 ms (quiet machine)"; verdict = (v < 100) ? "ok" : "over" }
	if (u == "files-decoded/resync") { target = "0"; verdict = (v == 0) ? "ok" : "over" }
	row("  " name, sprintf("%g %s", v, u), target, verdict)
}
BEGIN { row("BENCHMARK", "FIGURE", "TARGET", "OK/OVER") }
/^Benchmark/ && $3 ~ /^[0-9.]+$/ {
	name = $1; sub(/-[0-9]+$/, "", name)
	ns = ""; mem = ""; n = 0
	for (i = 3; i < NF; i += 2) {
		v = $i; u = $(i + 1)
		if (u == "ns/op") { ns = v; continue }
		if (u == "B/op") { mem = mem sprintf("%.0f B", v); continue }
		if (u == "allocs/op") { mem = mem sprintf(", %d allocs", v); continue }
		mu[++n] = u; mv[n] = v
	}
	fig = fmtns(ns) "/op"
	if (mem != "") fig = fig " (" mem ")"
	target = "-"; verdict = ""
	if (name == "BenchmarkPlan1000") { target = "< 5 ms"; verdict = (ns < 5e6) ? "ok" : "over" }
	if (name ~ /^BenchmarkClone\/(small|large)$/) { split(name, p, "/"); clone[p[2]] = ns }
	if (name ~ /^Benchmark(ManifestToRunning|ServeIdle)$/) fig = fmtns(ns) " (whole run)"
	row(name, fig, target, verdict)
	for (k = 1; k <= n; k++) metricrow(name, mu[k], mv[k])
}
END {
	if (("small" in clone) && ("large" in clone) && clone["small"] > 0) {
		r = clone["large"] / clone["small"]
		row("BenchmarkClone large/small", sprintf("%.2fx", r), "<= 1.5x", (r <= 1.5) ? "ok" : "over")
	}
	if (("cmds/noop-pass-10" in noop) && ("cmds/noop-pass-100" in noop)) {
		same = (noop["cmds/noop-pass-10"] == noop["cmds/noop-pass-100"])
		row("no-op pass commands, 10 vs 100 objects", sprintf("%g vs %g", noop["cmds/noop-pass-10"], noop["cmds/noop-pass-100"]), "equal", same ? "ok" : "over")
	}
	printf "(benchmarks took %d s; load average at the end: %s; raw output in %s)\n", took, load, out
}
' <(grep '^Benchmark' "$out" || true)
exit "$failed"
