package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func newTest(t *testing.T) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	return New(reg), reg
}

func compare(t *testing.T, reg *prometheus.Registry, want string, names ...string) {
	t.Helper()
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
}

func TestPreCreatedZeros(t *testing.T) {
	_, reg := newTest(t)
	compare(t, reg, `
# HELP zocker_prune_blocked_total Passes whose pruning was held back by a guard (max-prune, empty-manifests).
# TYPE zocker_prune_blocked_total counter
zocker_prune_blocked_total{reason="empty-manifests"} 0
zocker_prune_blocked_total{reason="max-prune"} 0
# HELP zocker_resyncs_total Full re-reads of manifests and live state, by trigger.
# TYPE zocker_resyncs_total counter
zocker_resyncs_total{trigger="periodic"} 0
zocker_resyncs_total{trigger="sighup"} 0
zocker_resyncs_total{trigger="startup"} 0
zocker_resyncs_total{trigger="watch"} 0
# HELP zocker_manifest_loads_total Loads of the manifest directory, by result.
# TYPE zocker_manifest_loads_total counter
zocker_manifest_loads_total{result="error"} 0
zocker_manifest_loads_total{result="success"} 0
# HELP zocker_managed_objects Objects that exist and are managed by this service, by kind.
# TYPE zocker_managed_objects gauge
zocker_managed_objects{kind="Container"} 0
zocker_managed_objects{kind="Image"} 0
zocker_managed_objects{kind="Volume"} 0
# HELP zocker_reconcile_total Reconciles of one object, by kind and result.
# TYPE zocker_reconcile_total counter
zocker_reconcile_total{kind="Container",result="error"} 0
zocker_reconcile_total{kind="Container",result="success"} 0
zocker_reconcile_total{kind="Image",result="error"} 0
zocker_reconcile_total{kind="Image",result="success"} 0
zocker_reconcile_total{kind="Volume",result="error"} 0
zocker_reconcile_total{kind="Volume",result="success"} 0
`, "zocker_prune_blocked_total", "zocker_resyncs_total", "zocker_manifest_loads_total",
		"zocker_managed_objects", "zocker_reconcile_total")

	// Every pre-created action pair exists at zero, for both results.
	n := 0
	for _, acts := range kindActions {
		n += 2 * len(acts)
	}
	if got, err := testutil.GatherAndCount(reg, "zocker_actions_total"); err != nil || got != n {
		t.Errorf("zocker_actions_total series = %d (%v), want %d", got, err, n)
	}
}

func TestObserveAndGauges(t *testing.T) {
	m, reg := newTest(t)
	m.ObserveReconcile(KindContainer, ResultSuccess, 20*time.Millisecond)
	m.ObserveReconcile(KindContainer, ResultError, time.Second)
	m.ObserveAction(KindContainer, "start", ResultSuccess, 300*time.Millisecond)
	m.ObserveAction(KindContainer, "start", ResultSuccess, 400*time.Millisecond)
	m.SetDesired(KindContainer, 3)
	m.SetManaged(KindContainer, 2)
	m.SetDrifted(KindContainer, 1)
	m.SetObjectReady(KindContainer, "web", true)
	m.SetObjectReady(KindImage, "base", false)
	m.PruneBlocked(PruneBlockedMaxPrune)
	m.WatchEvent("write")
	m.WatchEvent("write")
	m.WatchError("overflow")
	m.Resync(TriggerSIGHUP)
	m.QueueDepth(4)
	m.QueueRetry()
	m.DatasetUsed(KindVolume, "weblogs", 1<<20)
	m.ContainerUsage("web", 64<<20, 12.5)

	compare(t, reg, `
# HELP zocker_reconcile_total Reconciles of one object, by kind and result.
# TYPE zocker_reconcile_total counter
zocker_reconcile_total{kind="Container",result="error"} 1
zocker_reconcile_total{kind="Container",result="success"} 1
zocker_reconcile_total{kind="Image",result="error"} 0
zocker_reconcile_total{kind="Image",result="success"} 0
zocker_reconcile_total{kind="Volume",result="error"} 0
zocker_reconcile_total{kind="Volume",result="success"} 0
# HELP zocker_action_duration_seconds Time an action took, by kind and action.
# TYPE zocker_action_duration_seconds histogram
zocker_action_duration_seconds_bucket{action="start",kind="Container",le="0.005"} 0
zocker_action_duration_seconds_bucket{action="start",kind="Container",le="0.025"} 0
zocker_action_duration_seconds_bucket{action="start",kind="Container",le="0.1"} 0
zocker_action_duration_seconds_bucket{action="start",kind="Container",le="0.25"} 0
zocker_action_duration_seconds_bucket{action="start",kind="Container",le="0.5"} 2
zocker_action_duration_seconds_bucket{action="start",kind="Container",le="1"} 2
zocker_action_duration_seconds_bucket{action="start",kind="Container",le="2.5"} 2
zocker_action_duration_seconds_bucket{action="start",kind="Container",le="5"} 2
zocker_action_duration_seconds_bucket{action="start",kind="Container",le="10"} 2
zocker_action_duration_seconds_bucket{action="start",kind="Container",le="30"} 2
zocker_action_duration_seconds_bucket{action="start",kind="Container",le="60"} 2
zocker_action_duration_seconds_bucket{action="start",kind="Container",le="180"} 2
zocker_action_duration_seconds_bucket{action="start",kind="Container",le="600"} 2
zocker_action_duration_seconds_bucket{action="start",kind="Container",le="1800"} 2
zocker_action_duration_seconds_bucket{action="start",kind="Container",le="+Inf"} 2
zocker_action_duration_seconds_sum{action="start",kind="Container"} 0.7
zocker_action_duration_seconds_count{action="start",kind="Container"} 2
# HELP zocker_desired_objects Objects declared by the loaded manifests, by kind.
# TYPE zocker_desired_objects gauge
zocker_desired_objects{kind="Container"} 3
zocker_desired_objects{kind="Image"} 0
zocker_desired_objects{kind="Volume"} 0
# HELP zocker_objects_drifted Managed objects whose live state differs from their declared state at the last resync, by kind.
# TYPE zocker_objects_drifted gauge
zocker_objects_drifted{kind="Container"} 1
zocker_objects_drifted{kind="Image"} 0
zocker_objects_drifted{kind="Volume"} 0
# HELP zocker_object_ready 1 when the object's Ready condition is true, else 0.
# TYPE zocker_object_ready gauge
zocker_object_ready{kind="Container",name="web"} 1
zocker_object_ready{kind="Image",name="base"} 0
# HELP zocker_prune_blocked_total Passes whose pruning was held back by a guard (max-prune, empty-manifests).
# TYPE zocker_prune_blocked_total counter
zocker_prune_blocked_total{reason="empty-manifests"} 0
zocker_prune_blocked_total{reason="max-prune"} 1
# HELP zocker_watch_events_total File system events seen on the manifest directory, by operation.
# TYPE zocker_watch_events_total counter
zocker_watch_events_total{op="write"} 2
# HELP zocker_watch_errors_total Errors of the manifest directory watcher, by type; each forces a full resync.
# TYPE zocker_watch_errors_total counter
zocker_watch_errors_total{type="overflow"} 1
# HELP zocker_workqueue_depth Keys waiting in the work queue.
# TYPE zocker_workqueue_depth gauge
zocker_workqueue_depth 4
# HELP zocker_workqueue_retries_total Keys put back in the work queue with backoff after a transient error.
# TYPE zocker_workqueue_retries_total counter
zocker_workqueue_retries_total 1
# HELP zocker_dataset_used_bytes Space used by the object's ZFS dataset (the used property) at the last resync.
# TYPE zocker_dataset_used_bytes gauge
zocker_dataset_used_bytes{kind="Volume",name="weblogs"} 1.048576e+06
# HELP zocker_container_memory_bytes Memory used by the container's jail (rctl memoryuse), sampled once per resync; FreeBSD with kern.racct.enable=1 only.
# TYPE zocker_container_memory_bytes gauge
zocker_container_memory_bytes{name="web"} 6.7108864e+07
# HELP zocker_container_cpu_percent CPU used by the container's jail in percent of one CPU (rctl pcpu), sampled once per resync; FreeBSD with kern.racct.enable=1 only.
# TYPE zocker_container_cpu_percent gauge
zocker_container_cpu_percent{name="web"} 12.5
`, "zocker_reconcile_total", "zocker_action_duration_seconds", "zocker_desired_objects",
		"zocker_objects_drifted", "zocker_object_ready", "zocker_prune_blocked_total",
		"zocker_watch_events_total", "zocker_watch_errors_total", "zocker_workqueue_depth",
		"zocker_workqueue_retries_total", "zocker_dataset_used_bytes",
		"zocker_container_memory_bytes", "zocker_container_cpu_percent")

	if got := testutil.ToFloat64(m.actionsTotal.WithLabelValues(KindContainer, "start", ResultSuccess)); got != 2 {
		t.Errorf("zocker_actions_total{Container,start,success} = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.resyncs.WithLabelValues(TriggerSIGHUP)); got != 1 {
		t.Errorf("zocker_resyncs_total{sighup} = %v, want 1", got)
	}
}

func TestManifestLoadKeepsOneRevision(t *testing.T) {
	m, reg := newTest(t)
	at := time.Unix(1700000000, 500_000_000)
	m.ManifestLoad(ResultSuccess, 0, "abc123", at)
	m.ManifestLoad(ResultSuccess, 2, "def456", at.Add(time.Minute))
	// A failed load changes neither the revision nor the timestamp.
	m.ManifestLoad(ResultError, 2, "", at.Add(2*time.Minute))

	compare(t, reg, `
# HELP zocker_manifest_revision_info The manifest revision loaded last (git hash of the symlink target, else a content digest); always 1.
# TYPE zocker_manifest_revision_info gauge
zocker_manifest_revision_info{revision="def456"} 1
# HELP zocker_manifest_last_success_timestamp_seconds Unix time of the last successful load of the manifest directory (0: none since start).
# TYPE zocker_manifest_last_success_timestamp_seconds gauge
zocker_manifest_last_success_timestamp_seconds 1.7000000605e+09
# HELP zocker_manifest_invalid_files Manifest files that failed to parse or validate at the last load; their objects keep their last applied spec.
# TYPE zocker_manifest_invalid_files gauge
zocker_manifest_invalid_files 2
# HELP zocker_manifest_loads_total Loads of the manifest directory, by result.
# TYPE zocker_manifest_loads_total counter
zocker_manifest_loads_total{result="error"} 1
zocker_manifest_loads_total{result="success"} 2
`, "zocker_manifest_revision_info", "zocker_manifest_last_success_timestamp_seconds",
		"zocker_manifest_invalid_files", "zocker_manifest_loads_total")
}

func TestBuildInfoOneSeries(t *testing.T) {
	m, reg := newTest(t)
	m.BuildInfo("v0.1.0", "go1.26.8")
	m.BuildInfo("v0.2.0", "go1.26.8")
	compare(t, reg, `
# HELP zocker_build_info Version of zocker-reconcile and of Go it was built with; always 1.
# TYPE zocker_build_info gauge
zocker_build_info{goversion="go1.26.8",version="v0.2.0"} 1
`, "zocker_build_info")
}

func TestRestartsNeverGoBackwards(t *testing.T) {
	m, reg := newTest(t)
	steps := []struct {
		count int
		want  float64
	}{
		{3, 3}, // first sight after a reconciler restart: continue at the supervisor's count
		{3, 3}, // nothing new
		{5, 5}, // two more restarts
		{0, 5}, // container replaced: a new supervisor starts at 0
		{2, 7}, // its two restarts are new
		{-1, 7},
	}
	for i, s := range steps {
		m.ContainerState("web", true, true, s.count)
		got := gatherValue(t, reg, "zocker_container_restarts_total", "web")
		if got != s.want {
			t.Fatalf("step %d (count %d): restarts_total = %v, want %v", i, s.count, got, s.want)
		}
	}
}

func gatherValue(t *testing.T, reg *prometheus.Registry, family, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != family {
			continue
		}
		for _, mt := range mf.GetMetric() {
			for _, l := range mt.GetLabel() {
				if l.GetName() == "name" && l.GetValue() == name {
					switch {
					case mt.Counter != nil:
						return mt.GetCounter().GetValue()
					case mt.Gauge != nil:
						return mt.GetGauge().GetValue()
					}
				}
			}
		}
	}
	t.Fatalf("%s{name=%q} not found", family, name)
	return 0
}

func TestForgetContainerRemovesEverySeries(t *testing.T) {
	m, reg := newTest(t)
	for _, name := range []string{"web", "worker"} {
		m.ContainerState(name, true, false, 1)
		m.ContainerUsage(name, 1024, 1)
		m.ContainerLogDropped(name, 7)
		m.SetObjectReady(KindContainer, name, true)
		m.DatasetUsed(KindContainer, name, 4096)
	}
	m.ForgetContainer("worker")

	compare(t, reg, `
# HELP zocker_container_up 1 when the container's command is running, else 0.
# TYPE zocker_container_up gauge
zocker_container_up{name="web"} 1
# HELP zocker_container_healthy 1 when the container is healthy (its health check passes, or it has none and is up), else 0.
# TYPE zocker_container_healthy gauge
zocker_container_healthy{name="web"} 0
# HELP zocker_container_restarts_total Restarts of the container's command by its supervisor, never decreasing while the service runs.
# TYPE zocker_container_restarts_total counter
zocker_container_restarts_total{name="web"} 1
# HELP zocker_log_dropped_lines_total Output lines of the container's command its supervisor could not write to the log (full disk) and dropped.
# TYPE zocker_log_dropped_lines_total counter
zocker_log_dropped_lines_total{name="web"} 7
# HELP zocker_container_memory_bytes Memory used by the container's jail (rctl memoryuse), sampled once per resync; FreeBSD with kern.racct.enable=1 only.
# TYPE zocker_container_memory_bytes gauge
zocker_container_memory_bytes{name="web"} 1024
# HELP zocker_container_cpu_percent CPU used by the container's jail in percent of one CPU (rctl pcpu), sampled once per resync; FreeBSD with kern.racct.enable=1 only.
# TYPE zocker_container_cpu_percent gauge
zocker_container_cpu_percent{name="web"} 1
# HELP zocker_object_ready 1 when the object's Ready condition is true, else 0.
# TYPE zocker_object_ready gauge
zocker_object_ready{kind="Container",name="web"} 1
# HELP zocker_dataset_used_bytes Space used by the object's ZFS dataset (the used property) at the last resync.
# TYPE zocker_dataset_used_bytes gauge
zocker_dataset_used_bytes{kind="Container",name="web"} 4096
`, "zocker_container_up", "zocker_container_healthy", "zocker_container_restarts_total",
		"zocker_log_dropped_lines_total", "zocker_container_memory_bytes", "zocker_container_cpu_percent",
		"zocker_object_ready", "zocker_dataset_used_bytes")

	// A re-created container of the same name starts its restart count afresh.
	m.ContainerState("worker", true, true, 0)
	if got := gatherValue(t, reg, "zocker_container_restarts_total", "worker"); got != 0 {
		t.Errorf("restarts after forget and re-create = %v, want 0", got)
	}
}

func TestForgetObject(t *testing.T) {
	m, reg := newTest(t)
	m.SetObjectReady(KindVolume, "data", true)
	m.DatasetUsed(KindVolume, "data", 10)
	m.SetObjectReady(KindImage, "base", true)
	m.SetObjectReady(KindContainer, "web", true)
	m.ContainerState("web", true, true, 0)
	m.ForgetObject(KindVolume, "data")
	m.ForgetObject(KindContainer, "web")

	compare(t, reg, `
# HELP zocker_object_ready 1 when the object's Ready condition is true, else 0.
# TYPE zocker_object_ready gauge
zocker_object_ready{kind="Image",name="base"} 1
`, "zocker_object_ready", "zocker_dataset_used_bytes", "zocker_container_up")
}

// TestRegistryIsolation checks that nothing is registered globally: two
// registries can each hold a full set.
func TestRegistryIsolation(t *testing.T) {
	a, ra := newTest(t)
	_, rb := newTest(t)
	a.QueueRetry()
	if n, err := testutil.GatherAndCount(rb, "zocker_workqueue_retries_total"); err != nil || n != 1 {
		t.Fatalf("registry b: %d series, %v", n, err)
	}
	compare(t, rb, `
# HELP zocker_workqueue_retries_total Keys put back in the work queue with backoff after a transient error.
# TYPE zocker_workqueue_retries_total counter
zocker_workqueue_retries_total 0
`, "zocker_workqueue_retries_total")
	compare(t, ra, `
# HELP zocker_workqueue_retries_total Keys put back in the work queue with backoff after a transient error.
# TYPE zocker_workqueue_retries_total counter
zocker_workqueue_retries_total 1
`, "zocker_workqueue_retries_total")
	// The Go collector is there.
	if n, err := testutil.GatherAndCount(ra, "go_goroutines"); err != nil || n != 1 {
		t.Errorf("go_goroutines: %d series, %v", n, err)
	}
}

// TestEveryArchitectureMetricExists pins the exact names of ARCHITECTURE
// section 8 after one call of each method.
func TestEveryArchitectureMetricExists(t *testing.T) {
	m, reg := newTest(t)
	m.ObserveReconcile(KindContainer, ResultSuccess, time.Millisecond)
	m.ObserveAction(KindContainer, "create", ResultSuccess, time.Millisecond)
	m.ManifestLoad(ResultSuccess, 0, "r", time.Now())
	m.SetObjectReady(KindContainer, "a", true)
	m.ContainerState("a", true, true, 0)
	m.ContainerUsage("a", 1, 1)
	m.DatasetUsed(KindContainer, "a", 1)
	m.WatchEvent("create")
	m.WatchError("error")
	m.BuildInfo("v", "go")
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, mf := range mfs {
		have[mf.GetName()] = true
	}
	for _, name := range []string{
		"zocker_reconcile_total", "zocker_reconcile_duration_seconds", "zocker_actions_total",
		"zocker_action_duration_seconds", "zocker_manifest_loads_total", "zocker_manifest_invalid_files",
		"zocker_manifest_last_success_timestamp_seconds", "zocker_manifest_revision_info",
		"zocker_desired_objects", "zocker_managed_objects", "zocker_objects_drifted",
		"zocker_object_ready", "zocker_prune_blocked_total", "zocker_container_restarts_total",
		"zocker_container_up", "zocker_container_healthy", "zocker_dataset_used_bytes",
		"zocker_watch_events_total", "zocker_watch_errors_total", "zocker_resyncs_total",
		"zocker_workqueue_depth", "zocker_workqueue_retries_total", "zocker_build_info",
		"zocker_container_memory_bytes", "zocker_container_cpu_percent",
	} {
		if !have[name] {
			t.Errorf("metric %s missing", name)
		}
	}
}

func TestRollbacksCountedAndForgotten(t *testing.T) {
	m, reg := newTest(t)
	m.Rollback("web")
	m.Rollback("web")
	compare(t, reg, `
# HELP zocker_rollbacks_total Health-gated updates of a container rolled back to its previous version.
# TYPE zocker_rollbacks_total counter
zocker_rollbacks_total{name="web"} 2
`, "zocker_rollbacks_total")
	m.ForgetContainer("web")
	if n, err := testutil.GatherAndCount(reg, "zocker_rollbacks_total"); err != nil || n != 0 {
		t.Errorf("after ForgetContainer: %d series (%v), want 0", n, err)
	}
}
