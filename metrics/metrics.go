// Package metrics holds the Prometheus metrics of zocker-reconcile
// (ARCHITECTURE section 8). Everything is registered on a registry passed in,
// never on the global one, so that tests and the serve command each own
// theirs.
//
// The values come from what the reconcile loop already knows: the loop calls
// the methods of Metrics as it works, and a scrape only reads what was stored.
// Nothing in a scrape runs a command (no zfs, jls or rctl per scrape); the
// loop samples rctl usage at most once per resync and reports it here.
//
// Per-object series (zocker_object_ready, zocker_dataset_used_bytes and the
// zocker_container_* family) are removed by ForgetObject/ForgetContainer when
// the object is pruned, so a pruned object leaves no series behind.
//
// The HTTP side (/metrics, /healthz, /readyz, /status and the listen-address
// policy) lives in the sub-package metrics/httpapi.
package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Label values the loop uses. They are exported so that the loop and the
// alerting rules in examples/prometheus agree on spelling.
const (
	ResultSuccess = "success"
	ResultError   = "error"

	// Reasons for zocker_prune_blocked_total.
	PruneBlockedMaxPrune       = "max-prune"
	PruneBlockedEmptyManifests = "empty-manifests"

	// Triggers for zocker_resyncs_total.
	TriggerStartup  = "startup"
	TriggerWatch    = "watch"
	TriggerPeriodic = "periodic"
	TriggerSIGHUP   = "sighup"

	// Kinds, spelled as in manifests (manifests.KindImage, ...). They are
	// repeated here so that this package does not depend on manifests.
	KindImage     = "Image"
	KindContainer = "Container"
	KindVolume    = "Volume"
)

// kinds are the object kinds whose per-kind series are pre-created at zero.
var kinds = []string{KindImage, KindContainer, KindVolume}

// kindActions are the actions each kind can take (ARCHITECTURE section 8);
// their success and error counters are pre-created at zero so that an alert
// on increase(...{result="error"}) has a series to look at from the start.
var kindActions = map[string][]string{
	KindImage:     {"import", "build", "pull", "destroy", "prune"},
	KindContainer: {"create", "start", "stop", "restart", "destroy", "prune"},
	KindVolume:    {"create", "destroy", "prune"},
}

// durationBuckets span a no-op pass (milliseconds) to an image build or a
// pull over a slow link (tens of minutes).
var durationBuckets = []float64{.005, .025, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 180, 600, 1800}

// Metrics is the set of zocker_* metrics. Its methods are safe for concurrent
// use by the loop's workers.
type Metrics struct {
	reconcileTotal    *prometheus.CounterVec
	reconcileDuration *prometheus.HistogramVec
	actionsTotal      *prometheus.CounterVec
	actionDuration    *prometheus.HistogramVec

	manifestLoads       *prometheus.CounterVec
	manifestInvalid     prometheus.Gauge
	manifestLastSuccess prometheus.Gauge
	manifestRevision    *prometheus.GaugeVec

	desired     *prometheus.GaugeVec
	managed     *prometheus.GaugeVec
	drifted     *prometheus.GaugeVec
	objectReady *prometheus.GaugeVec
	pruneBlock  *prometheus.CounterVec

	restarts         *restartCollector
	logDropped       *restartCollector
	rollbacks        *prometheus.CounterVec
	containerUp      *prometheus.GaugeVec
	containerHealthy *prometheus.GaugeVec
	containerMemory  *prometheus.GaugeVec
	containerCPU     *prometheus.GaugeVec
	datasetUsed      *prometheus.GaugeVec

	watchEvents  *prometheus.CounterVec
	watchErrors  *prometheus.CounterVec
	resyncs      *prometheus.CounterVec
	queueDepth   prometheus.Gauge
	queueRetries prometheus.Counter
	buildInfo    *prometheus.GaugeVec

	// mu orders the two-step updates (revision and build info swap their
	// single series) against each other.
	mu sync.Mutex
}

// New creates every zocker_* metric on reg, plus the Go and process
// collectors, and pre-creates the label values whose zero is meaningful. It
// panics if reg already holds these metrics (a programming error, as with
// promauto).
func New(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	m := &Metrics{
		reconcileTotal: f.NewCounterVec(prometheus.CounterOpts{
			Name: "zocker_reconcile_total",
			Help: "Reconciles of one object, by kind and result.",
		}, []string{"kind", "result"}),
		reconcileDuration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "zocker_reconcile_duration_seconds",
			Help:    "Time to reconcile one object, by kind.",
			Buckets: durationBuckets,
		}, []string{"kind"}),
		rollbacks: f.NewCounterVec(prometheus.CounterOpts{
			Name: "zocker_rollbacks_total",
			Help: "Health-gated updates of a container rolled back to its previous version.",
		}, []string{"name"}),
		actionsTotal: f.NewCounterVec(prometheus.CounterOpts{
			Name: "zocker_actions_total",
			Help: "Actions taken on objects (import, build, pull, create, start, stop, restart, destroy, prune), by kind and result.",
		}, []string{"kind", "action", "result"}),
		actionDuration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "zocker_action_duration_seconds",
			Help:    "Time an action took, by kind and action.",
			Buckets: durationBuckets,
		}, []string{"kind", "action"}),
		manifestLoads: f.NewCounterVec(prometheus.CounterOpts{
			Name: "zocker_manifest_loads_total",
			Help: "Loads of the manifest directory, by result.",
		}, []string{"result"}),
		manifestInvalid: f.NewGauge(prometheus.GaugeOpts{
			Name: "zocker_manifest_invalid_files",
			Help: "Manifest files that failed to parse or validate at the last load; their objects keep their last applied spec.",
		}),
		manifestLastSuccess: f.NewGauge(prometheus.GaugeOpts{
			Name: "zocker_manifest_last_success_timestamp_seconds",
			Help: "Unix time of the last successful load of the manifest directory (0: none since start).",
		}),
		manifestRevision: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "zocker_manifest_revision_info",
			Help: "The manifest revision loaded last (git hash of the symlink target, else a content digest); always 1.",
		}, []string{"revision"}),
		desired: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "zocker_desired_objects",
			Help: "Objects declared by the loaded manifests, by kind.",
		}, []string{"kind"}),
		managed: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "zocker_managed_objects",
			Help: "Objects that exist and are managed by this service, by kind.",
		}, []string{"kind"}),
		drifted: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "zocker_objects_drifted",
			Help: "Managed objects whose live state differs from their declared state at the last resync, by kind.",
		}, []string{"kind"}),
		objectReady: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "zocker_object_ready",
			Help: "1 when the object's Ready condition is true, else 0.",
		}, []string{"kind", "name"}),
		pruneBlock: f.NewCounterVec(prometheus.CounterOpts{
			Name: "zocker_prune_blocked_total",
			Help: "Passes whose pruning was held back by a guard (max-prune, empty-manifests).",
		}, []string{"reason"}),
		containerUp: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "zocker_container_up",
			Help: "1 when the container's command is running, else 0.",
		}, []string{"name"}),
		containerHealthy: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "zocker_container_healthy",
			Help: "1 when the container is healthy (its health check passes, or it has none and is up), else 0.",
		}, []string{"name"}),
		containerMemory: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "zocker_container_memory_bytes",
			Help: "Memory used by the container's jail (rctl memoryuse), sampled once per resync; FreeBSD with kern.racct.enable=1 only.",
		}, []string{"name"}),
		containerCPU: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "zocker_container_cpu_percent",
			Help: "CPU used by the container's jail in percent of one CPU (rctl pcpu), sampled once per resync; FreeBSD with kern.racct.enable=1 only.",
		}, []string{"name"}),
		datasetUsed: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "zocker_dataset_used_bytes",
			Help: "Space used by the object's ZFS dataset (the used property) at the last resync.",
		}, []string{"kind", "name"}),
		watchEvents: f.NewCounterVec(prometheus.CounterOpts{
			Name: "zocker_watch_events_total",
			Help: "File system events seen on the manifest directory, by operation.",
		}, []string{"op"}),
		watchErrors: f.NewCounterVec(prometheus.CounterOpts{
			Name: "zocker_watch_errors_total",
			Help: "Errors of the manifest directory watcher, by type; each forces a full resync.",
		}, []string{"type"}),
		resyncs: f.NewCounterVec(prometheus.CounterOpts{
			Name: "zocker_resyncs_total",
			Help: "Full re-reads of manifests and live state, by trigger.",
		}, []string{"trigger"}),
		queueDepth: f.NewGauge(prometheus.GaugeOpts{
			Name: "zocker_workqueue_depth",
			Help: "Keys waiting in the work queue.",
		}),
		queueRetries: f.NewCounter(prometheus.CounterOpts{
			Name: "zocker_workqueue_retries_total",
			Help: "Keys put back in the work queue with backoff after a transient error.",
		}),
		buildInfo: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "zocker_build_info",
			Help: "Version of zocker-reconcile and of Go it was built with; always 1.",
		}, []string{"version", "goversion"}),
		restarts:   newRestartCollector(),
		logDropped: newLogDroppedCollector(),
	}
	reg.MustRegister(m.restarts)
	reg.MustRegister(m.logDropped)

	for _, r := range []string{ResultSuccess, ResultError} {
		m.manifestLoads.WithLabelValues(r).Add(0)
		for _, k := range kinds {
			m.reconcileTotal.WithLabelValues(k, r).Add(0)
			for _, a := range kindActions[k] {
				m.actionsTotal.WithLabelValues(k, a, r).Add(0)
			}
		}
	}
	for _, k := range kinds {
		m.desired.WithLabelValues(k).Set(0)
		m.managed.WithLabelValues(k).Set(0)
		m.drifted.WithLabelValues(k).Set(0)
	}
	for _, r := range []string{PruneBlockedMaxPrune, PruneBlockedEmptyManifests} {
		m.pruneBlock.WithLabelValues(r).Add(0)
	}
	for _, t := range []string{TriggerStartup, TriggerWatch, TriggerPeriodic, TriggerSIGHUP} {
		m.resyncs.WithLabelValues(t).Add(0)
	}
	return m
}

// ObserveReconcile records one reconcile of an object of kind: its result
// (ResultSuccess or ResultError) and how long it took.
func (m *Metrics) ObserveReconcile(kind, result string, d time.Duration) {
	m.reconcileTotal.WithLabelValues(kind, result).Inc()
	m.reconcileDuration.WithLabelValues(kind).Observe(d.Seconds())
}

// ObserveAction records one action (import, build, pull, create, start, stop,
// restart, destroy, prune) on an object of kind, its result and duration.
func (m *Metrics) ObserveAction(kind, action, result string, d time.Duration) {
	m.actionsTotal.WithLabelValues(kind, action, result).Inc()
	m.actionDuration.WithLabelValues(kind, action).Observe(d.Seconds())
}

// ManifestLoad records one load of the manifest directory. result is
// ResultSuccess when a set was loaded (possibly with invalidFiles files left
// out and isolated), ResultError when nothing could be loaded (directory
// unreadable, symlink target kept changing). On success the revision info
// moves to revision (the previous revision's series is removed, so there is
// always at most one) and the last-success timestamp to at.
func (m *Metrics) ManifestLoad(result string, invalidFiles int, revision string, at time.Time) {
	m.manifestLoads.WithLabelValues(result).Inc()
	m.manifestInvalid.Set(float64(invalidFiles))
	if result != ResultSuccess {
		return
	}
	m.manifestLastSuccess.Set(float64(at.UnixNano()) / 1e9)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.manifestRevision.Reset()
	m.manifestRevision.WithLabelValues(revision).Set(1)
}

// SetDesired sets how many objects of kind the loaded manifests declare.
func (m *Metrics) SetDesired(kind string, n int) { m.desired.WithLabelValues(kind).Set(float64(n)) }

// SetManaged sets how many managed objects of kind exist.
func (m *Metrics) SetManaged(kind string, n int) { m.managed.WithLabelValues(kind).Set(float64(n)) }

// SetDrifted sets how many managed objects of kind drifted from their
// declared state at the last resync.
func (m *Metrics) SetDrifted(kind string, n int) { m.drifted.WithLabelValues(kind).Set(float64(n)) }

// SetObjectReady records an object's Ready condition.
func (m *Metrics) SetObjectReady(kind, name string, ready bool) {
	m.objectReady.WithLabelValues(kind, name).Set(b2f(ready))
}

// PruneBlocked counts a pass whose pruning a guard held back
// (PruneBlockedMaxPrune, PruneBlockedEmptyManifests).
func (m *Metrics) PruneBlocked(reason string) { m.pruneBlock.WithLabelValues(reason).Inc() }

// ContainerState records what the container's supervisor reports: whether
// its command runs, whether it is healthy, and the supervisor's restart count
// (restarts since that supervisor started). zocker_container_restarts_total
// is derived from the count so that it never goes backwards while this
// process runs; see restartCollector.
func (m *Metrics) ContainerState(name string, up, healthy bool, restarts int) {
	m.containerUp.WithLabelValues(name).Set(b2f(up))
	m.containerHealthy.WithLabelValues(name).Set(b2f(healthy))
	m.restarts.observe(name, restarts)
}

// ContainerLogDropped records the supervisor's count of log lines it
// dropped (the log's disk was full); zocker_log_dropped_lines_total is
// derived from it like the restarts (never backwards while this process runs).
func (m *Metrics) ContainerLogDropped(name string, dropped int64) {
	m.logDropped.observe(name, int(dropped))
}

// ContainerUsage records the container's rctl usage (memoryuse in bytes,
// pcpu in percent; jail.Usage.MemoryBytes and CPUPercent), sampled by the
// loop at most once per resync and cached there. Only call it
// where racct is enabled: on other hosts the series are simply absent.
func (m *Metrics) ContainerUsage(name string, memBytes int64, cpuPct float64) {
	m.containerMemory.WithLabelValues(name).Set(float64(memBytes))
	m.containerCPU.WithLabelValues(name).Set(cpuPct)
}

// DatasetUsed records the space used by an object's dataset.
func (m *Metrics) DatasetUsed(kind, name string, bytes uint64) {
	m.datasetUsed.WithLabelValues(kind, name).Set(float64(bytes))
}

// WatchEvent counts one watcher event on the manifest directory; op is the
// fsnotify operation in lower case (create, write, remove, rename, chmod).
func (m *Metrics) WatchEvent(op string) { m.watchEvents.WithLabelValues(op).Inc() }

// WatchError counts one watcher error; typ names it (e.g. overflow, error).
func (m *Metrics) WatchError(typ string) { m.watchErrors.WithLabelValues(typ).Inc() }

// Resync counts one full resync by its trigger (TriggerStartup, TriggerWatch,
// TriggerPeriodic, TriggerSIGHUP).
func (m *Metrics) Resync(trigger string) { m.resyncs.WithLabelValues(trigger).Inc() }

// QueueDepth sets the number of keys waiting in the work queue.
func (m *Metrics) QueueDepth(n int) { m.queueDepth.Set(float64(n)) }

// QueueRetry counts one key requeued with backoff.
func (m *Metrics) QueueRetry() { m.queueRetries.Inc() }

// BuildInfo sets zocker_build_info to the running version; calling it again
// replaces the series rather than adding one.
func (m *Metrics) BuildInfo(version, goversion string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.buildInfo.Reset()
	m.buildInfo.WithLabelValues(version, goversion).Set(1)
}

// ForgetContainer removes every series of the container: up, healthy,
// restarts, rctl usage, and its object_ready and dataset_used_bytes series.
// Call it when the container is pruned.
func (m *Metrics) ForgetContainer(name string) {
	m.rollbacks.DeleteLabelValues(name)
	m.containerUp.DeleteLabelValues(name)
	m.containerHealthy.DeleteLabelValues(name)
	m.containerMemory.DeleteLabelValues(name)
	m.containerCPU.DeleteLabelValues(name)
	m.restarts.forget(name)
	m.logDropped.forget(name)
	m.objectReady.DeleteLabelValues(KindContainer, name)
	m.datasetUsed.DeleteLabelValues(KindContainer, name)
}

// Rollback counts a container's update rolled back to its previous version.
func (m *Metrics) Rollback(name string) { m.rollbacks.WithLabelValues(name).Inc() }

// ForgetObject removes every series of the object (for a Container, the same
// as ForgetContainer). Call it when the object is pruned or its manifest and
// dataset are both gone.
func (m *Metrics) ForgetObject(kind, name string) {
	if kind == KindContainer {
		m.ForgetContainer(name)
		return
	}
	m.objectReady.DeleteLabelValues(kind, name)
	m.datasetUsed.DeleteLabelValues(kind, name)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
