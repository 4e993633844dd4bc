package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/zocker-reconcile/zocker-reconcile/engine"
	"github.com/zocker-reconcile/zocker-reconcile/engine/jail"
	"github.com/zocker-reconcile/zocker-reconcile/manifests"
	"github.com/zocker-reconcile/zocker-reconcile/metrics"
	"github.com/zocker-reconcile/zocker-reconcile/metrics/httpapi"
	"github.com/zocker-reconcile/zocker-reconcile/reconcile"
)

type serveFlags struct {
	reconcileFlags
	listen  string
	workers int
	resync  time.Duration
}

func init() {
	register(func(g *globals) *cobra.Command {
		var f serveFlags
		cmd := &cobra.Command{
			Use:   "serve",
			Short: "Run the service: watch the manifests and converge",
			Long: `serve watches --manifests (a directory, possibly a symlink that git-sync swaps),
and converges the host on it: at start-up, on every change (debounced), on
SIGHUP, and every --resync (jittered) to repair drift. It serves /metrics,
/healthz, /readyz and /status on --listen (127.0.0.1:9847 by default; a
non-loopback address must be given explicitly, and /status then exposes the
container specs to that network).

SIGTERM and SIGINT stop the service after the actions in flight finish;
containers keep running, and the next start adopts them.`,
			Example: `  zocker-reconcile serve --root zroot/zocker --manifests /usr/local/etc/zocker.d
  zocker-reconcile serve --listen 127.0.0.1:9847 --resync 1m --log-format json`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				explicit := cmd.Flags().Changed("listen") || os.Getenv("ZOCKER_LISTEN") != ""
				return runServe(cmd.Context(), g, &f, explicit)
			},
		}
		f.add(cmd)
		fl := cmd.Flags()
		fl.StringVar(&f.listen, "listen", envOr("ZOCKER_LISTEN", httpapi.DefaultListen), "address of /metrics, /healthz, /readyz and /status (env ZOCKER_LISTEN)")
		fl.IntVar(&f.workers, "workers", 2, "actions run at once (image builds and pulls run one at a time)")
		fl.DurationVar(&f.resync, "resync", 30*time.Second, "period of the full passes that also repair drift (±10% jitter)")
		return cmd
	})
}

func runServe(ctx context.Context, g *globals, f *serveFlags, explicitListen bool) error {
	if ctx == nil {
		ctx = context.Background()
	}
	log, err := g.logger()
	if err != nil {
		return err
	}
	if f.workers < 1 {
		return fmt.Errorf("--workers %d: want at least 1", f.workers)
	}
	if f.resync < time.Second {
		return fmt.Errorf("--resync %s: want at least 1s", f.resync)
	}
	if err := httpapi.CheckListen(f.listen, explicitListen, log); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	m.BuildInfo(version, runtime.Version())
	eng, err := newEngine(ctx, g, &f.reconcileFlags, log, owner)
	if err != nil {
		return err
	}
	book := reconcile.NewStatusBook(time.Now)
	s := &service{eng: eng, m: m, book: book, log: log, flags: f, loader: newLoader(&f.reconcileFlags, log, eng)}
	// Prime the engine's view of the image tags before the first load: a
	// build's inputs include its base image's ID.
	if _, err := eng.Observe(ctx); err != nil {
		return err
	}

	ctrl := &reconcile.Controller[reconcile.Desired, engine.Detail]{
		Root:    g.manifests,
		Load:    s.load,
		Observe: s.observe,
		Plan:    s.plan,
		Watcher: &reconcile.Watcher{Root: g.manifests, Logger: log},
		Workers: f.workers,
		Resync:  f.resync,
		Logger:  log,
		Hooks: reconcile.Hooks{
			OnResync:     m.Resync,
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
	s.ctrl = ctrl

	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", f.listen, err)
	}
	maxAge := 3*f.resync + 2*time.Minute
	handler := httpapi.NewHandler(httpapi.Options{
		Registry: reg,
		Live: func() error {
			if age := time.Since(ctrl.LastProgress()); age > maxAge {
				return fmt.Errorf("the reconcile loop has not progressed for %s", age.Round(time.Second))
			}
			return nil
		},
		Ready: func() error {
			if !ctrl.Ready() {
				return errors.New("manifests not loaded or first pass not done")
			}
			return nil
		},
		Status: func() any { return book.Snapshot() },
		Logger: log,
	})
	httpDone := make(chan error, 1)
	go func() { httpDone <- httpapi.Serve(ctx, ln, handler) }()

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-hup:
				log.Info("SIGHUP: reloading the manifests")
				m.Resync(metrics.TriggerSIGHUP)
				ctrl.Trigger(metrics.TriggerSIGHUP)
			case <-ctx.Done():
				return
			}
		}
	}()

	log.Info("serving", "listen", ln.Addr().String(), "root", g.root, "manifests", g.manifests, "state_dir", g.stateDir, "version", version)
	runErr := ctrl.Run(ctx)
	httpErr := <-httpDone
	log.Info("stopped; containers keep running")
	return errors.Join(runErr, httpErr)
}

// service is what serve's loop calls back into: loading, planning, acting,
// and recording what happened in the status book and the metrics.
type service struct {
	eng    *engine.Engine
	m      *metrics.Metrics
	book   *reconcile.StatusBook
	log    *slog.Logger
	flags  *serveFlags
	loader *loader
	ctrl   *reconcile.Controller[reconcile.Desired, engine.Detail]

	mu          sync.Mutex
	revision    string
	known       map[string]bool // object keys with per-object series
	lastSampled time.Time
	acted       bool // an action of the current pass succeeded
	followUps   int  // consecutive follow-up passes
}

// usageReader is what a driver that can report resource usage offers (the
// FreeBSD driver, through rctl -u).
type usageReader interface {
	Usage(ctx context.Context, name string) (jail.Usage, error)
}

// observe is the pass's observation, plus the rctl usage of the running
// containers at most once per resync period: one command per container, so
// it is kept out of the frequent passes and cached in the gauges.
func (s *service) observe(ctx context.Context) (engine.Detail, error) {
	d, err := s.eng.ObserveDetail(ctx)
	if err != nil {
		return d, err
	}
	u, ok := s.eng.Driver.(usageReader)
	if !ok || time.Since(s.lastSampled) < s.flags.resync {
		return d, nil
	}
	s.lastSampled = time.Now()
	for _, st := range d.Supervisors {
		if !st.Alive || st.State != "running" {
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

func (s *service) load(ctx context.Context, dir string) (reconcile.Desired, error) {
	d, err := s.loader.load(ctx, dir)
	now := time.Now()
	if err != nil {
		s.m.ManifestLoad(metrics.ResultError, 0, "", now)
		s.log.Error("load manifests", "dir", dir, "err", err)
		return d, err
	}
	set := d.Set
	invalid := 0
	for _, f := range set.Files {
		if f.Failed {
			invalid++
		}
	}
	for _, p := range set.Problems {
		s.log.Warn("manifest problem", "problem", p.String())
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
func (s *service) plan(d reconcile.Desired, o engine.Detail) []reconcile.Item {
	p := reconcile.Diff(d, o.Observed, s.flags.options())
	s.book.Planned(p, d, o.Observed)
	for name, err := range s.loader.remoteErrs {
		s.book.SetCondition(reconcile.Key(manifests.KindImage, name), reconcile.ConditionReady, false, "RepositoryUnreachable", err.Error(), "")
	}
	s.recordObserved(p, o)
	s.mu.Lock()
	s.acted = false
	s.mu.Unlock()
	for _, b := range p.Blocked {
		if b.Guard() && (b.Reason == reconcile.BlockedMaxPrune || b.Reason == reconcile.BlockedEmptyManifests) {
			s.m.PruneBlocked(b.Reason)
			s.log.Warn("prune blocked", "kind", b.Kind, "name", b.Name, "reason", b.Reason, "msg", b.Message)
		}
	}
	return reconcile.Items(p, &recorder{s: s})
}

// recordObserved refreshes the gauges from one observation.
func (s *service) recordObserved(p reconcile.Plan, o engine.Detail) {
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
		if c.Props["zocker:managed"] != "true" {
			continue
		}
		name := c.ContainerName
		seen[reconcile.Key(metrics.KindContainer, name)] = true
		s.m.DatasetUsed(metrics.KindContainer, name, c.Used)
		up, healthy, restarts, dropped := false, false, 0, int64(0)
		if i, ok := bySup[name]; ok {
			st := o.Supervisors[i]
			up = st.Alive && st.State == "running"
			healthy = st.Health.Status == "healthy"
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

func (s *service) passDone(trigger string, err error) {
	s.mu.Lock()
	follow := err == nil && s.acted && (trigger != "follow-up" || s.followUps < maxFollowUps)
	if !follow {
		s.followUps = 0
	} else if trigger == "follow-up" {
		s.followUps++
	}
	s.acted = false
	s.mu.Unlock()
	if follow {
		// What this pass did may unblock what it held (an imported image,
		// a started dependency), and the per-object gauges are refreshed
		// from a new observation: plan again now, not at the next resync.
		s.ctrl.Trigger("follow-up")
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

// recorder runs an action on the engine and records it: one log line with
// action, kind, name, duration, result and err; the action metrics; the
// status book.
type recorder struct{ s *service }

func (r *recorder) Execute(ctx context.Context, a reconcile.Action) error {
	start := time.Now()
	err := r.s.eng.Execute(ctx, a)
	took := time.Since(start)
	result := metrics.ResultSuccess
	level := slog.LevelInfo
	switch {
	case err == nil:
		r.s.book.Succeeded(a)
		r.s.mu.Lock()
		r.s.acted = true
		r.s.mu.Unlock()
	case reconcile.IsWait(err):
		result = "wait"
	default:
		result = metrics.ResultError
		level = slog.LevelError
		r.s.book.Failed(a, err, reconcile.IsTerminal(err))
	}
	if result != "wait" {
		r.s.m.ObserveAction(a.Kind, metricAction(a.Op), result, took)
	}
	attrs := []any{"action", string(a.Op), "kind", a.Kind, "name", a.Name, "reason", a.Reason,
		"duration", took.Round(time.Millisecond), "result", result}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	r.s.log.Log(ctx, level, "action", attrs...)
	return err
}

// metricAction maps a plan operation to the action label of ARCHITECTURE
// section 8 (import|build|pull|create|start|stop|restart|destroy|prune, plus
// replace and update, which the plan distinguishes).
func metricAction(op reconcile.Op) string {
	switch op {
	case reconcile.OpCreateVolume:
		return "create"
	case reconcile.OpUpdateVolume:
		return "update"
	case reconcile.OpDestroyVolume:
		return "destroy"
	}
	return string(op)
}
