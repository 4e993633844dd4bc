package service

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/zocker-reconcile/zocker-reconcile/controller"
	"github.com/zocker-reconcile/zocker-reconcile/engine"
	"github.com/zocker-reconcile/zocker-reconcile/engine/supervisor"
	"github.com/zocker-reconcile/zocker-reconcile/engine/zfs"
	"github.com/zocker-reconcile/zocker-reconcile/manifests"
	"github.com/zocker-reconcile/zocker-reconcile/metrics"
	"github.com/zocker-reconcile/zocker-reconcile/reconcile"
)

// fakeEngine is the service's Engine: a fixed observation, and Execute
// answering from errs by object key while recording what it was asked.
type fakeEngine struct {
	mu         sync.Mutex
	detail     engine.Detail
	errs       map[string]error
	done       []string
	touched    []zfs.Touched // what ObserveTouched was asked to read again
	touchedErr error
	whole      int // ObserveDetail calls
}

func (f *fakeEngine) ObserveDetail(context.Context) (engine.Detail, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.whole++
	return f.detail, nil
}

func (f *fakeEngine) ObserveTouched(_ context.Context, t zfs.Touched) (engine.Detail, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.touched = append(f.touched, t)
	return f.detail, f.touchedErr
}

func (f *fakeEngine) Execute(_ context.Context, a reconcile.Action) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.done = append(f.done, string(a.Op)+" "+a.Key())
	return f.errs[a.Key()]
}

// testService is a Service on a fake engine with its own registry, logging
// into a buffer.
type testService struct {
	*Service
	eng  *fakeEngine
	reg  *prometheus.Registry
	logs *bytes.Buffer
}

func newTestService(t *testing.T) *testService {
	t.Helper()
	reg := prometheus.NewRegistry()
	logs := &bytes.Buffer{}
	eng := &fakeEngine{errs: map[string]error{}}
	s := New(Config{
		Manifests: t.TempDir(),
		Engine:    eng,
		Loader:    NewLoader(LoaderOptions{}),
		Metrics:   metrics.New(reg),
		Registry:  reg,
		Workers:   1,
		Log:       slog.New(slog.NewTextHandler(logs, nil)),
	})
	return &testService{Service: s, eng: eng, reg: reg, logs: logs}
}

// value is the sum of the series name{labels...} (labels may name a subset),
// and whether any exists.
func (ts *testService) value(t *testing.T, name string, labels map[string]string) (sum float64, found bool) {
	t.Helper()
	mfs, err := ts.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if !matches(m, labels) {
				continue
			}
			found = true
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			case m.Histogram != nil:
				sum += float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return sum, found
}

func matches(m *dto.Metric, labels map[string]string) bool {
	n := 0
	for _, l := range m.GetLabel() {
		if v, ok := labels[l.GetName()]; ok {
			if v != l.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(labels)
}

func (ts *testService) followUps(t *testing.T) float64 {
	t.Helper()
	v, _ := ts.value(t, "zocker_resyncs_total", map[string]string{"trigger": triggerFollowUp})
	return v
}

// A pass that changed something is followed by another at once, at most
// maxFollowUps times in a row; a pass that changed nothing, or failed, is
// not.
func TestFollowUpsAreBounded(t *testing.T) {
	ts := newTestService(t)
	pass := func(trigger string, acted bool, err error) {
		ts.mu.Lock()
		ts.acted = acted
		ts.mu.Unlock()
		ts.passDone(trigger, err)
	}
	pass("startup", true, nil)
	if got := ts.followUps(t); got != 1 {
		t.Fatalf("after a pass that acted: %v follow-ups, want 1", got)
	}
	// The follow-ups keep acting: the last one allowed triggers no more.
	for range maxFollowUps + 1 {
		pass(triggerFollowUp, true, nil)
	}
	if got := ts.followUps(t); got != 1+maxFollowUps {
		t.Fatalf("follow-ups that keep acting: %v triggered, want %d (bounded)", got, 1+maxFollowUps)
	}
	pass("periodic", true, nil)
	if got := ts.followUps(t); got != 2+maxFollowUps {
		t.Errorf("a periodic pass after the bound: %v follow-ups, want the count to start again", got)
	}
	pass("periodic", false, nil)
	pass("watch", true, errors.New("observe: zfs get failed"))
	if got := ts.followUps(t); got != 2+maxFollowUps {
		t.Errorf("passes that changed nothing or failed triggered follow-ups (%v)", got)
	}
}

// The recorder runs the action, and records it once: the status book, the
// action metrics, one log line with the house keys. A wait is neither a
// success nor a failure.
func TestRecorder(t *testing.T) {
	ts := newTestService(t)
	d := desired(newSet(image("base"), web(), container("db")))
	ts.book.LoadedManifests(d.Set)
	ts.book.Planned(reconcile.Diff(d, observed(), reconcile.Options{}), d, observed())
	r := &recorder{s: ts.Service}
	webKey, dbKey := reconcile.Key(manifests.KindContainer, "web"), reconcile.Key(manifests.KindContainer, "db")
	ts.eng.errs[dbKey] = reconcile.Terminal(errors.New("clone: no such image"))
	ts.eng.errs[reconcile.Key(manifests.KindImage, "base")] = reconcile.Wait("the tarball is downloading")

	ctx := context.Background()
	if err := r.Execute(ctx, reconcile.Action{Kind: manifests.KindContainer, Name: "web", Op: reconcile.OpCreate, Reason: "not present"}); err != nil {
		t.Fatal(err)
	}
	if err := r.Execute(ctx, reconcile.Action{Kind: manifests.KindContainer, Name: "db", Op: reconcile.OpCreate}); !reconcile.IsTerminal(err) {
		t.Fatalf("db: %v, want the engine's terminal error passed on", err)
	}
	if err := r.Execute(ctx, reconcile.Action{Kind: manifests.KindImage, Name: "base", Op: reconcile.OpImport}); !reconcile.IsWait(err) {
		t.Fatalf("base: %v, want the wait passed on", err)
	}
	if got := strings.Join(ts.eng.done, ", "); got != "create Container/web, create Container/db, import Image/base" {
		t.Errorf("engine ran %q", got)
	}

	st := ts.Status()
	if c := cond(t, st, webKey, ConditionReady); !c.Status || c.Reason != ReasonApplied {
		t.Errorf("web after success: Ready %+v, want true with reason %s", c, ReasonApplied)
	}
	if c := cond(t, st, dbKey, ConditionStalled); !c.Status || !strings.Contains(c.Message, "no such image") {
		t.Errorf("db after a terminal error: Stalled %+v", c)
	}
	if v, _ := ts.value(t, "zocker_actions_total", map[string]string{"kind": "Container", "action": "create", "result": metrics.ResultSuccess}); v != 1 {
		t.Errorf("successful creates counted %v, want 1", v)
	}
	if v, _ := ts.value(t, "zocker_actions_total", map[string]string{"kind": "Container", "action": "create", "result": metrics.ResultError}); v != 1 {
		t.Errorf("failed creates counted %v, want 1", v)
	}
	if v, _ := ts.value(t, "zocker_actions_total", map[string]string{"kind": "Image", "action": "import"}); v != 0 {
		t.Error("a wait was counted as an action")
	}
	ts.mu.Lock()
	acted := ts.acted
	ts.mu.Unlock()
	if !acted {
		t.Error("a successful action does not mark the pass as having acted")
	}
	logs := ts.logs.String()
	for _, want := range []string{
		`level=INFO msg=action action=create container=web reason="not present"`,
		`level=ERROR msg=action action=create container=db`,
		`msg=action action=import image=base`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	if n := strings.Count(logs, "container=web"); n != 1 {
		t.Errorf("web's action logged %d times, want once:\n%s", n, logs)
	}
}

// Each pass refreshes the gauges from its observation, and forgets the
// series of objects that are gone.
func TestGaugesFollowTheObservation(t *testing.T) {
	ts := newTestService(t)
	d := desired(newSet(image("base"), web()))
	o := observed(applied(t, web(), "id1"))
	detail := engine.Detail{Observed: o,
		State: &zfs.State{Containers: []zfs.Container{{ContainerName: "web",
			Dataset: zfs.Dataset{Used: 4096, Props: map[string]string{zfs.PropManaged: "true"}}}}},
		Supervisors: []supervisor.Status{{Name: "web", Alive: true, State: supervisor.StateRunning,
			Health: supervisor.Health{Status: supervisor.HealthHealthy}, Restarts: 2}},
	}
	ts.book.LoadedManifests(d.Set)
	if items := ts.plan(d, detail); len(items) != 0 {
		t.Fatalf("in sync, yet %d items", len(items))
	}
	web := map[string]string{"name": "web"}
	for name, want := range map[string]float64{"zocker_container_up": 1, "zocker_container_healthy": 1} {
		if v, ok := ts.value(t, name, web); !ok || v != want {
			t.Errorf("%s{web} = %v (present %v), want %v", name, v, ok, want)
		}
	}
	if v, _ := ts.value(t, "zocker_dataset_used_bytes", map[string]string{"kind": "Container", "name": "web"}); v != 4096 {
		t.Errorf("dataset used %v, want 4096", v)
	}
	if v, _ := ts.value(t, "zocker_managed_objects", map[string]string{"kind": "Container"}); v != 1 {
		t.Errorf("managed containers %v, want 1", v)
	}

	// The supervisor backs off: the container is up for the reconciler but
	// its command does not run.
	detail.Supervisors[0].State = supervisor.StateBackoff
	ts.plan(d, detail)
	if v, _ := ts.value(t, "zocker_container_up", web); v != 0 {
		t.Errorf("container_up while backing off = %v, want 0", v)
	}

	// web is gone from the manifests and from the host: its series go.
	empty := desired(newSet(image("base")))
	ts.book.LoadedManifests(empty.Set)
	ts.plan(empty, engine.Detail{Observed: observed(), State: &zfs.State{}})
	for _, name := range []string{"zocker_container_up", "zocker_container_healthy", "zocker_object_ready"} {
		if _, ok := ts.value(t, name, web); ok {
			t.Errorf("%s{web} still exported after web is gone", name)
		}
	}
}

// Run on a fake engine: the first pass creates the declared container,
// the follow-up pass finds it in sync, and the service turns ready and
// records the revision as converged; /readyz fails until then.
func TestRunConvergesOnAFakeEngine(t *testing.T) {
	dir := t.TempDir()
	manifest := "apiVersion: zocker/v1\nkind: Image\nmetadata: {name: base}\nspec:\n  tarball: {path: /cache/base.txz, sha256: " + strings.Repeat("a", 64) + "}\n" +
		"---\napiVersion: zocker/v1\nkind: Container\nmetadata: {name: web}\nspec:\n  image: base\n  command: [/bin/httpd, -f]\n"
	if err := os.WriteFile(filepath.Join(dir, "web.yaml"), []byte(manifest), 0o600); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	eng := &convergingEngine{}
	s := New(Config{Manifests: dir, Engine: eng, Loader: NewLoader(LoaderOptions{Insecure: true}),
		Metrics: metrics.New(reg), Registry: reg, Workers: 1, Resync: time.Hour,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := s.Handler().Ready(); err == nil {
		t.Fatal("ready before any pass")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	deadline := time.Now().Add(20 * time.Second)
	for s.Status().AppliedRevision == "" {
		if time.Now().After(deadline) {
			t.Fatalf("not converged: status %+v, engine ran %v", s.Status(), eng.ran())
		}
		time.Sleep(10 * time.Millisecond) // polling step under the deadline
	}
	if err := s.Handler().Ready(); err != nil {
		t.Errorf("converged but not ready: %v", err)
	}
	if err := s.Handler().Live(); err != nil {
		t.Errorf("not live: %v", err)
	}
	if got := eng.ran(); strings.Join(got, ",") != "create Container/web" {
		t.Errorf("engine ran %v, want one create", got)
	}
}

// convergingEngine starts with image base present; creating a container
// makes it exist and run.
type convergingEngine struct {
	mu   sync.Mutex
	web  *reconcile.Action
	done []string
}

func (e *convergingEngine) ObserveDetail(context.Context) (engine.Detail, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	id := strings.Repeat("1", 64)
	o := reconcile.Observed{
		Images:     map[string]reconcile.ObservedImage{id: {ID: id, Tags: []string{"base"}, Inputs: "sha256:" + strings.Repeat("a", 64)}},
		Tags:       map[string]string{"base": id},
		Containers: map[string]reconcile.ObservedContainer{}, Volumes: map[string]reconcile.ObservedVolume{}, Foreign: map[string]string{},
	}
	if a := e.web; a != nil {
		spec, err := reconcile.AppliedSpec(a.Container)
		if err != nil {
			return engine.Detail{}, err
		}
		o.Containers["web"] = reconcile.ObservedContainer{Name: "web", Managed: true, Exists: true, Running: true,
			SpecHash: a.SpecHash, Spec: spec, ImageID: a.ImageID, Manifest: a.Manifest}
	}
	return engine.Detail{Observed: o, State: &zfs.State{}}, nil
}

// ObserveTouched is ObserveDetail: the state is in memory.
func (e *convergingEngine) ObserveTouched(ctx context.Context, _ zfs.Touched) (engine.Detail, error) {
	return e.ObserveDetail(ctx)
}

func (e *convergingEngine) Execute(_ context.Context, a reconcile.Action) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.done = append(e.done, string(a.Op)+" "+a.Key())
	if a.Op == reconcile.OpCreate && a.Name == "web" {
		e.web = &a
	}
	return nil
}

func (e *convergingEngine) ran() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.done)
}

// TestSecurityServeChecksTheManifestLink: the service resolves the manifest
// root once per pass and reads the worktree it points to; the directory
// that holds the link must still be checked, or whoever can write there
// repoints the link (at an empty directory: everything pruned). Before
// LoadResolved the loop passed the resolved path as the root and the link's
// directory was never checked.
func TestSecurityServeChecksTheManifestLink(t *testing.T) {
	base := t.TempDir()
	rev := filepath.Join(base, "rev")
	if err := os.Mkdir(rev, 0o755); err != nil {
		t.Fatal(err)
	}
	manifest := "apiVersion: zocker/v1\nkind: Volume\nmetadata: {name: data}\nspec: {}\n"
	if err := os.WriteFile(filepath.Join(rev, "v.yaml"), []byte(manifest), 0o600); err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(base, "open")
	if err := os.Mkdir(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		link    string
		refused bool
	}{{filepath.Join(open, "current"), true}, {filepath.Join(base, "current"), false}} {
		if err := os.Symlink(rev, c.link); err != nil {
			t.Fatal(err)
		}
		reg := prometheus.NewRegistry()
		s := New(Config{Manifests: c.link, Engine: &convergingEngine{}, Loader: NewLoader(LoaderOptions{}),
			Metrics: metrics.New(reg), Registry: reg, Workers: 1, Resync: time.Hour,
			Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		d, dir, err := controller.LoadSettled(context.Background(), s.log, c.link, s.load)
		if c.refused {
			if err == nil || !strings.Contains(err.Error(), "writable by group or others") {
				t.Errorf("link %s in a world-writable directory: %v; want the load refused", c.link, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("link %s: %v", c.link, err)
		}
		if dir != rev || d.Set.Root != c.link || d.Set.Resolved != rev || d.Set.Volumes["data"] == nil {
			t.Errorf("read %s: set root %s resolved %s volumes %v", dir, d.Set.Root, d.Set.Resolved, d.Set.Volumes)
		}
	}
}
