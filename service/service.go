// Package service is what `zocker-reconcile serve` runs: the controller loop
// wired to the manifest loader, the engine and the planner, the policy of
// follow-up passes, the executor that records every action in the metrics,
// the logs and the status book, and the HTTP endpoints. It is just over the
// house's 1,500 lines; the status book (status.go) is the part that could
// stand alone.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zocker-reconcile/zocker-reconcile/controller"
	"github.com/zocker-reconcile/zocker-reconcile/engine"
	"github.com/zocker-reconcile/zocker-reconcile/engine/jail"
	"github.com/zocker-reconcile/zocker-reconcile/engine/sign"
	"github.com/zocker-reconcile/zocker-reconcile/engine/supervisor"
	"github.com/zocker-reconcile/zocker-reconcile/engine/zfs"
	"github.com/zocker-reconcile/zocker-reconcile/manifests"
	"github.com/zocker-reconcile/zocker-reconcile/metrics"
	"github.com/zocker-reconcile/zocker-reconcile/metrics/httpapi"
	"github.com/zocker-reconcile/zocker-reconcile/reconcile"
)

// Engine is what the service observes and acts through (*engine.Engine).
type Engine interface {
	ObserveDetail(ctx context.Context) (engine.Detail, error)
	// ObserveTouched is ObserveDetail reading again only what the actions
	// since the last observation touched (engine.TouchedBy).
	ObserveTouched(ctx context.Context, t zfs.Touched) (engine.Detail, error)
	Execute(ctx context.Context, a reconcile.Action) error
}

// UsageReader is what a driver that can report resource usage offers (the
// FreeBSD driver, through rctl -u).
type UsageReader interface {
	Usage(ctx context.Context, name string) (jail.Usage, error)
}

// Config is what Run needs; Manifests, Engine, Loader, Metrics and
// Registry are required.
type Config struct {
	// Manifests is the manifest directory as configured (--manifests); it
	// may be a symlink that git-sync swaps.
	Manifests string
	Engine    Engine
	// Usage, when set, samples the running containers' resource usage once
	// per resync period.
	Usage  UsageReader
	Loader *Loader
	// Options are the planner's guards (--allow-empty, --max-prune).
	Options  reconcile.Options
	Metrics  *metrics.Metrics
	Registry *prometheus.Registry
	// Workers bounds the actions run at once; Resync is the period of the
	// full passes (see controller.Controller).
	Workers int
	Resync  time.Duration
	Log     *slog.Logger
	// Deadlines bound each action (--action-timeout).
	Deadlines Deadlines
	// Supervisors, when set, reads the supervisors' reports (a directory
	// listing, no command) every second between passes, so that a crash
	// loop or a failing health check shows at once.
	Supervisors func() ([]supervisor.Status, error)
	// Commits, when set, applies a manifest revision only when its git HEAD
	// commit is signed by an allowed signer (serve --verify-commits).
	Commits *CommitVerifier
}

// Service runs the reconcile loop and serves its state.
type Service struct {
	cfg  Config
	m    *metrics.Metrics
	log  *slog.Logger
	book *StatusBook
	ctrl *controller.Controller[reconcile.Desired, engine.Detail]
	gate *revisionGate // nil without --verify-commits

	flights inFlight

	mu          sync.Mutex
	problems    []string // the manifest problems last logged
	revision    string
	known       map[string]bool // object keys with per-object series
	lastSampled time.Time
	acted       bool // an action of the current pass succeeded
	followUps   int  // consecutive follow-up passes
	// touched is what the actions since the last observation may have
	// changed; wholeWanted is set by every trigger but a follow-up, and
	// lastWhole is when the whole tree was last read (see observe).
	touched     zfs.Touched
	wholeWanted bool
	lastWhole   time.Time
}

// New wires a Service from cfg.
func New(cfg Config) *Service {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	s := &Service{cfg: cfg, m: cfg.Metrics, log: cfg.Log, book: NewStatusBook(time.Now), flights: inFlight{now: time.Now}}
	m, log := cfg.Metrics, cfg.Log
	if cfg.Commits != nil {
		s.gate = newRevisionGate(cfg.Commits, cfg.Registry)
	}
	s.ctrl = &controller.Controller[reconcile.Desired, engine.Detail]{
		Root:    cfg.Manifests,
		Load:    s.load,
		Observe: s.observe,
		Plan:    s.plan,
		Watcher: &controller.Watcher{Root: cfg.Manifests, Logger: log},
		Workers: cfg.Workers,
		Resync:  cfg.Resync,
		Logger:  log,
		Hooks: controller.Hooks{
			OnResync:     s.resync,
			OnWatchEvent: m.WatchEvent,
			OnWatchError: m.WatchError,
			OnQueueDepth: m.QueueDepth,
			OnPhase: func(phase string, d time.Duration) {
				log.Debug("pass phase", "phase", phase, "duration", d)
			},
			OnRetry: func(string, time.Duration) { m.QueueRetry() },
			OnResult: func(key, _ string, err error, d time.Duration) {
				kind, _, _ := strings.Cut(key, "/")
				result := metrics.ResultSuccess
				if err != nil && !reconcile.IsWait(err) {
					result = metrics.ResultError
				}
				m.ObserveReconcile(kind, result, d)
			},
			OnPassDone: s.passDone,
		},
	}
	return s
}

// Status is the status book's current document (GET /status).
func (s *Service) Status() Status { return s.book.Snapshot() }

// Reload asks for a full pass now, for reason ("sighup").
func (s *Service) Reload(reason string) {
	s.m.Resync(reason)
	s.ctrl.Trigger(reason)
}

// Handler serves /metrics, /healthz, /readyz and /status. /healthz fails
// when the loop has not gone round for a few resync periods, or while an
// action runs past its deadline (its context was cancelled and it did not
// stop: a pinned worker).
func (s *Service) Handler() httpapi.Options {
	maxAge := 3*s.cfg.Resync + 2*time.Minute
	return httpapi.Options{
		Registry: s.cfg.Registry,
		Live: func() error {
			if age := time.Since(s.ctrl.LastProgress()); age > maxAge {
				return fmt.Errorf("the reconcile loop has not progressed for %s", age.Round(time.Second))
			}
			if late := s.flights.overdue(); late != "" {
				return fmt.Errorf("an action ignores its deadline: %s", late)
			}
			return nil
		},
		Ready: func() error {
			if !s.ctrl.Ready() {
				return errors.New("manifests not loaded or first pass not done")
			}
			return nil
		},
		Status: func() any { return s.book.Snapshot() },
		Logger: s.log,
	}
}

// Run serves the HTTP endpoints on ln and runs the loop until ctx is
// cancelled; the actions in flight then finish (within the controller's
// drain timeout) and containers keep running.
func (s *Service) Run(ctx context.Context, ln net.Listener) error {
	// Prime the engine's view of the image tags before the first load: a
	// build's inputs include its base image's ID.
	if _, err := s.cfg.Engine.ObserveDetail(ctx); err != nil {
		ln.Close()
		return err
	}
	httpDone := make(chan error, 1)
	go func() { httpDone <- httpapi.Serve(ctx, ln, httpapi.NewHandler(s.Handler())) }()
	if s.cfg.Supervisors != nil {
		go s.watchRuntime(ctx)
	}
	runErr := s.ctrl.Run(ctx)
	return errors.Join(runErr, <-httpDone)
}

// resync counts a pass trigger; any trigger but a follow-up asks for an
// observation of the whole tree.
func (s *Service) resync(trigger string) {
	s.m.Resync(trigger)
	if trigger != triggerFollowUp {
		s.mu.Lock()
		s.wholeWanted = true
		s.mu.Unlock()
	}
}

// observe is the pass's observation, plus the rctl usage of the running
// containers at most once per resync period: one command per container, so
// it is kept out of the frequent passes and cached in the gauges.
//
// A pass that only follows actions (no other trigger since the last pass)
// reads again only what those actions touched, when the whole tree was
// read less than a resync period ago: the cost of the passes that follow a
// bulk start does not grow with the number of containers (issue 15). Every
// other pass (start-up, periodic, watch, SIGHUP, retry) reads the whole
// tree, which is where changes made by other hands are seen.
func (s *Service) observe(ctx context.Context) (engine.Detail, error) {
	s.mu.Lock()
	touched, whole := s.touched, s.wholeWanted || time.Since(s.lastWhole) >= s.cfg.Resync
	s.touched, s.wholeWanted = zfs.Touched{}, false
	s.mu.Unlock()
	var d engine.Detail
	var err error
	if whole {
		start := time.Now()
		if d, err = s.cfg.Engine.ObserveDetail(ctx); err == nil {
			s.mu.Lock()
			s.lastWhole = start
			s.mu.Unlock()
		}
	} else {
		s.log.Debug("observe what the last actions touched", "action", "observe", "containers", len(touched.Containers),
			"volumes", len(touched.Volumes), "images", touched.Images, "previous", touched.Previous)
		d, err = s.cfg.Engine.ObserveTouched(ctx, touched)
	}
	if err != nil {
		// What was touched is read again by the next pass, whole or not.
		s.mu.Lock()
		s.touched.Merge(touched)
		s.wholeWanted = true
		s.mu.Unlock()
		return d, err
	}
	u := s.cfg.Usage
	if u == nil || time.Since(s.lastSampled) < s.cfg.Resync {
		return d, nil
	}
	s.lastSampled = time.Now()
	for _, st := range d.Supervisors {
		if !st.Running() {
			continue
		}
		usage, err := u.Usage(ctx, st.Name)
		if err != nil {
			s.log.Debug("rctl usage", "container", st.Name, "err", err)
			continue
		}
		s.m.ContainerUsage(st.Name, usage.MemoryBytes, float64(usage.CPUPercent))
	}
	return d, nil
}

// load is the controller's Load: root as configured, dir the worktree it
// resolved to for this pass (the revision gate verifies that one).
func (s *Service) load(ctx context.Context, root, dir string) (reconcile.Desired, error) {
	if s.gate != nil {
		return s.gate.load(ctx, s, root, dir)
	}
	return s.loadDir(ctx, root, dir)
}

// loadDir loads the manifests in dir (root resolved) and records the load.
func (s *Service) loadDir(ctx context.Context, root, dir string) (reconcile.Desired, error) {
	d, err := s.cfg.Loader.LoadResolved(ctx, root, dir)
	now := time.Now()
	if err != nil {
		s.m.ManifestLoad(metrics.ResultError, 0, "", now)
		s.log.Error("load manifests", "dir", dir, "err", err)
		return d, err
	}
	set := d.Set
	invalid := set.InvalidFiles()
	// Problems are logged when they change, not on every pass (F30); a
	// missing directory at every load, as it may be a misspelt path.
	var problems []string
	for _, p := range set.Problems {
		problems = append(problems, p.String())
	}
	s.mu.Lock()
	changed := !slices.Equal(problems, s.problems)
	s.problems = problems
	s.mu.Unlock()
	if changed {
		for _, p := range problems {
			s.log.Warn("manifest problem", "problem", p)
		}
	}
	if set.Missing {
		s.log.Warn("the manifest directory does not exist; nothing is pruned without --allow-empty", "dir", dir)
	}
	s.m.ManifestLoad(metrics.ResultSuccess, invalid, set.Revision, now)
	s.m.SetDesired(metrics.KindImage, len(set.Images))
	s.m.SetDesired(metrics.KindContainer, len(set.Containers))
	s.m.SetDesired(metrics.KindVolume, len(set.Volumes))
	s.book.LoadedManifests(set)
	s.mu.Lock()
	s.revision = set.Revision
	s.mu.Unlock()
	return d, nil
}

// plan decides a pass (pure) and records its result; the I/O-free rule of
// the controller's Plan holds: it only updates in-memory books.
func (s *Service) plan(d reconcile.Desired, o engine.Detail) []controller.Item {
	opts := s.cfg.Options
	opts.Now = time.Now()
	p := reconcile.Diff(d, o.Observed, opts)
	s.book.Planned(p, d, o.Observed)
	ReportRemoteErrors(s.book, d, s.cfg.Loader.RemoteErrors())
	s.recordObserved(p, o)
	s.mu.Lock()
	s.acted = false
	s.mu.Unlock()
	for _, b := range p.Blocked {
		if b.Guard() && (b.Reason == reconcile.BlockedMaxPrune || b.Reason == reconcile.BlockedEmptyManifests) {
			s.m.PruneBlocked(b.Reason)
			s.log.Warn("prune blocked", reconcile.ObjectAttr(b.Kind, b.Name), "reason", b.Reason, "msg", b.Message)
		}
	}
	return controller.Items(p, &recorder{s: s})
}

// recordObserved refreshes the gauges from one observation.
func (s *Service) recordObserved(p reconcile.Plan, o engine.Detail) {
	managed := map[string]int{}
	for _, c := range o.Containers {
		if c.Managed {
			managed[metrics.KindContainer]++
		}
	}
	for _, v := range o.Volumes {
		if v.Managed {
			managed[metrics.KindVolume]++
		}
	}
	managed[metrics.KindImage] = len(o.Images)
	drifted := map[string]int{}
	for _, a := range p.Actions {
		drifted[a.Kind]++
	}
	for _, k := range []string{metrics.KindImage, metrics.KindContainer, metrics.KindVolume} {
		s.m.SetManaged(k, managed[k])
		s.m.SetDrifted(k, drifted[k])
	}
	bySup := map[string]int{}
	for i, st := range o.Supervisors {
		bySup[st.Name] = i
	}
	seen := map[string]bool{}
	for _, c := range o.State.Containers {
		if c.Props[zfs.PropManaged] != "true" {
			continue
		}
		name := c.ContainerName
		seen[reconcile.Key(metrics.KindContainer, name)] = true
		s.m.DatasetUsed(metrics.KindContainer, name, c.Used)
		up, healthy, restarts, dropped := false, false, 0, int64(0)
		if i, ok := bySup[name]; ok {
			st := o.Supervisors[i]
			up, healthy = containerGauges(st)
			restarts = st.Restarts
			dropped = st.LogDroppedLines
		}
		s.m.ContainerState(name, up, healthy, restarts)
		s.m.ContainerLogDropped(name, dropped)
	}
	for _, v := range o.State.Volumes {
		seen[reconcile.Key(metrics.KindVolume, v.VolumeName)] = true
		s.m.DatasetUsed(metrics.KindVolume, v.VolumeName, v.Used)
	}
	snap := s.book.Snapshot()
	for _, obj := range snap.Objects {
		key := reconcile.Key(obj.Kind, obj.Name)
		seen[key] = true
		s.m.SetObjectReady(obj.Kind, obj.Name, obj.Ready())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for key := range s.known {
		if seen[key] {
			continue
		}
		kind, name, _ := strings.Cut(key, "/")
		if kind == metrics.KindContainer {
			s.m.ForgetContainer(name)
		}
		s.m.ForgetObject(kind, name)
	}
	s.known = seen
}

// maxFollowUps bounds the passes run back to back because the previous one
// changed something, so that a container that starts and dies at once
// cannot spin the loop; the periodic resync takes over after them.
const maxFollowUps = 3

// triggerFollowUp is the trigger of a pass run because the previous one
// changed something.
const triggerFollowUp = "follow-up"

func (s *Service) passDone(trigger string, err error) {
	s.mu.Lock()
	follow := err == nil && s.acted && (trigger != triggerFollowUp || s.followUps < maxFollowUps)
	if !follow {
		s.followUps = 0
	} else if trigger == triggerFollowUp {
		s.followUps++
	}
	s.acted = false
	s.mu.Unlock()
	if follow {
		// What this pass did may unblock what it held (an imported image,
		// a started dependency), and the per-object gauges are refreshed
		// from a new observation: plan again now, not at the next resync.
		s.ctrl.Trigger(triggerFollowUp)
	}
	if err != nil {
		s.log.Error("pass failed", "trigger", trigger, "err", err)
		return
	}
	snap := s.book.Snapshot()
	if snap.AllReady() {
		s.mu.Lock()
		rev := s.revision
		s.mu.Unlock()
		s.book.Converged(rev)
	}
}

// ReportRemoteErrors marks the Images whose repository, registry or archive
// could not be read at the last load not Ready, with the reason; the image
// and its containers stay as they are.
func ReportRemoteErrors(book *StatusBook, d reconcile.Desired, errs map[string]error) {
	for name, err := range errs {
		reason := "RepositoryUnreachable"
		if r := sign.ReasonOf(err); r != "" {
			reason = r // a refused signature says why
		} else if img := imageOf(d, name); img != nil && img.Spec.OCI != nil {
			reason = "RegistryUnreachable"
			if img.Spec.OCI.Archive != "" {
				reason = "ArchiveUnreadable"
			}
		}
		book.SetCondition(reconcile.Key(manifests.KindImage, name), ConditionReady, false, reason, err.Error(), "")
	}
}

// imageOf is the declared Image name, or nil.
func imageOf(d reconcile.Desired, name string) *manifests.Image {
	if d.Set == nil {
		return nil
	}
	return d.Set.Images[name]
}
