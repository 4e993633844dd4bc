package controller

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/manifests"
	"github.com/zocker-reconcile/zocker-reconcile/manifests/manifeststest"
	"github.com/zocker-reconcile/zocker-reconcile/reconcile"
)

// fakeWorld is a reconcile.Observer and reconcile.Executor over an in-memory state: executing
// an action changes what the next Observe returns, like the engine does.
type fakeWorld struct {
	obs     reconcile.Observed
	done    []string
	failOn  string
	observe int
}

func (w *fakeWorld) Observe(context.Context) (reconcile.Observed, error) {
	w.observe++
	return w.obs, nil
}

func (w *fakeWorld) Execute(_ context.Context, a reconcile.Action) error {
	w.done = append(w.done, string(a.Op)+" "+a.Key())
	if a.Key() == w.failOn {
		return errors.New("boom")
	}
	switch a.Op {
	case reconcile.OpImport:
		w.obs.Images["id1"] = reconcile.ObservedImage{ID: "id1", Tags: []string{a.Name}, Inputs: a.Inputs}
		w.obs.Tags[a.Name] = "id1"
	case reconcile.OpCreate, reconcile.OpReplace:
		if a.Container == nil {
			return nil
		}
		spec, _ := reconcile.AppliedSpec(a.Container)
		w.obs.Containers[a.Name] = reconcile.ObservedContainer{Name: a.Name, Managed: true, Exists: true, Running: true,
			SpecHash: a.SpecHash, Spec: spec, ImageID: a.ImageID, Manifest: a.Manifest}
	}
	return nil
}

func emptyObserved() reconcile.Observed {
	return reconcile.Observed{Images: map[string]reconcile.ObservedImage{}, Tags: map[string]string{},
		Containers: map[string]reconcile.ObservedContainer{}, Volumes: map[string]reconcile.ObservedVolume{}}
}

func TestConvergeImportsThenCreates(t *testing.T) {
	w := &fakeWorld{obs: emptyObserved()}
	d := reconcile.Desired{Set: newSet(image("base"), container("web")), ImageInputs: map[string]string{"base": "in1"}}
	var results []PassResult
	p, err := Converge(context.Background(), d, w, w, reconcile.Options{}, 5, func(r PassResult) { results = append(results, r) })
	if err != nil {
		t.Fatalf("converge: %v (plan %+v)", err, p)
	}
	want := "import Image/base, create Container/web"
	if got := strings.Join(w.done, ", "); got != want {
		t.Errorf("actions %q, want %q", got, want)
	}
	if len(results) != 2 || w.observe != 3 || !p.InSync {
		t.Errorf("results %d observes %d in sync %v", len(results), w.observe, p.InSync)
	}
}

func TestConvergeStopsOnFailureAndSkipsDependents(t *testing.T) {
	w := &fakeWorld{obs: emptyObserved(), failOn: "Container/db"}
	w.obs.Images["id1"] = reconcile.ObservedImage{ID: "id1", Tags: []string{"base"}, Inputs: "in1"}
	w.obs.Tags["base"] = "id1"
	app := container("app", func(c *manifests.Container) { c.Spec.DependsOn = []string{"db"} })
	d := reconcile.Desired{Set: newSet(image("base"), container("db"), app), ImageInputs: map[string]string{"base": "in1"}}
	_, err := Converge(context.Background(), d, w, w, reconcile.Options{}, 5, nil)
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("want the failure reported, got %v", err)
	}
	for _, a := range w.done {
		if strings.HasSuffix(a, "Container/app") {
			t.Errorf("dependent of a failed action ran: %v", w.done)
		}
	}
}

func TestItemsCarryPlan(t *testing.T) {
	p := reconcile.Plan{Actions: []reconcile.Action{
		{Kind: "Image", Name: "apache", Op: reconcile.OpBuild, Inputs: "in"},
		{Kind: "Container", Name: "web", Op: reconcile.OpCreate, SpecHash: "h", ImageID: "i", DependsOn: []string{"Image/apache"}},
	}}
	w := &fakeWorld{obs: emptyObserved()}
	items := Items(p, w)
	if len(items) != 2 || items[0].Class != "build" || items[1].Class != "" || items[1].Deps[0] != "Image/apache" || items[1].Key != "Container/web" {
		t.Fatalf("items %+v", items)
	}
	if err := items[1].Run(context.Background()); err != nil || w.done[0] != "create Container/web" {
		t.Fatalf("run: %v %v", err, w.done)
	}
}

var (
	image     = manifeststest.Image
	container = manifeststest.Container
	newSet    = manifeststest.NewSet
)

// barrierWorld's creates wait until want of them run at once (or a
// timeout): proof that independent actions run in parallel.
type barrierWorld struct {
	mu      sync.Mutex
	inner   *fakeWorld
	want    int
	running int
	peak    int
	cond    *sync.Cond
}

func (w *barrierWorld) Observe(ctx context.Context) (reconcile.Observed, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.inner.Observe(ctx)
}

func (w *barrierWorld) Execute(ctx context.Context, a reconcile.Action) error {
	w.mu.Lock()
	w.running++
	if w.running > w.peak {
		w.peak = w.running
	}
	w.cond.Broadcast()
	deadline := time.Now().Add(5 * time.Second)
	for w.running < w.want && w.peak < w.want && time.Now().Before(deadline) {
		// Wake the wait now and then so that the deadline is checked.
		go func() { time.Sleep(10 * time.Millisecond); w.cond.Broadcast() }()
		w.cond.Wait()
	}
	err := w.inner.Execute(ctx, a)
	w.running--
	w.mu.Unlock()
	return err
}

func TestConvergeWorkersRunsIndependentCreatesAtOnce(t *testing.T) {
	inner := &fakeWorld{obs: emptyObserved()}
	inner.obs.Images["id1"] = reconcile.ObservedImage{ID: "id1", Tags: []string{"base"}, Inputs: "in1"}
	inner.obs.Tags["base"] = "id1"
	w := &barrierWorld{inner: inner, want: 3}
	w.cond = sync.NewCond(&w.mu)
	app := container("app", func(c *manifests.Container) { c.Spec.DependsOn = []string{"db"} })
	d := reconcile.Desired{Set: newSet(image("base"), container("a"), container("b"), container("db"), app),
		ImageInputs: map[string]string{"base": "in1"}}
	p, err := ConvergeWorkers(context.Background(), d, w, w, reconcile.Options{}, 5, 3, nil)
	if err != nil || !p.InSync {
		t.Fatalf("converge: %v (in sync %v)", err, p.InSync)
	}
	if w.peak < 3 {
		t.Errorf("at most %d actions ran at once, want 3 with 3 workers", w.peak)
	}
	pos := map[string]int{}
	for i, a := range inner.done {
		pos[a] = i
	}
	if pos["create Container/app"] < pos["create Container/db"] {
		t.Errorf("app ran before the db it depends on: %v", inner.done)
	}
}
