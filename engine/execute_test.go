package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/zocker-reconcile/zocker-reconcile/engine/jail"
	"github.com/zocker-reconcile/zocker-reconcile/engine/zfs"
	"github.com/zocker-reconcile/zocker-reconcile/manifests"
	"github.com/zocker-reconcile/zocker-reconcile/manifests/manifeststest"
	"github.com/zocker-reconcile/zocker-reconcile/reconcile"
)

// fakeStore is an in-memory Store: it records every call in order and keeps
// the containers, volumes and tags they make in a State.
type fakeStore struct {
	mu         sync.Mutex
	st         zfs.State
	calls      []string
	touchedErr error
	valueReads int // ContainerValues calls
}

func newFakeStore() *fakeStore {
	return &fakeStore{st: zfs.State{Tags: map[string]string{}}}
}

func (f *fakeStore) call(format string, args ...any) {
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

func (f *fakeStore) Observe(context.Context) (*zfs.State, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.st
	st.Containers = slices.Clone(f.st.Containers)
	return &st, nil
}

func (f *fakeStore) ObserveTree(ctx context.Context) (*zfs.State, *zfs.Tree, error) {
	f.mu.Lock()
	f.call("observe-tree")
	f.mu.Unlock()
	st, err := f.Observe(ctx)
	return st, &zfs.Tree{}, err
}

// ObserveTouched records what it was asked to read again and returns what
// Observe does, or touchedErr.
func (f *fakeStore) ObserveTouched(ctx context.Context, base *zfs.Tree, t zfs.Touched) (*zfs.State, *zfs.Tree, error) {
	f.mu.Lock()
	f.call("observe-touched containers=%v volumes=%v images=%v previous=%v", t.Containers, t.Volumes, t.Images, t.Previous)
	err := f.touchedErr
	f.mu.Unlock()
	if base == nil {
		return nil, nil, errors.New("no base")
	}
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Observe(ctx)
	return st, &zfs.Tree{}, err
}

// ObserveObjects returns what Observe does: the engine keeps what it asked for.
func (f *fakeStore) ObserveObjects(ctx context.Context, _ zfs.Objects) (*zfs.State, error) {
	return f.Observe(ctx)
}

func (f *fakeStore) ResolveRef(ctx context.Context, ref string) (string, error) {
	st, err := f.Observe(ctx)
	if err != nil {
		return "", err
	}
	return st.Resolve(ref)
}

func (f *fakeStore) ContainerValues(_ context.Context, prop string) (map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.valueReads++
	out := map[string]string{}
	for _, c := range f.st.Containers {
		if v, ok := c.Props[prop]; ok {
			out[c.ContainerName] = v
		}
	}
	return out, nil
}

func (f *fakeStore) NewWork(context.Context, string) (*zfs.Work, error) {
	return nil, fmt.Errorf("fake store: no builds")
}
func (f *fakeStore) Discard(context.Context, *zfs.Work) {}
func (f *fakeStore) Publish(context.Context, *zfs.Work, string, zfs.Config, map[string]string) error {
	return fmt.Errorf("fake store: no builds")
}

func (f *fakeStore) Tag(_ context.Context, tag, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("tag %s %s", tag, id[:4])
	f.st.Tags[tag] = id
	return nil
}

func (f *fakeStore) ImportTarball(_ context.Context, src zfs.ImportSource, cfg zfs.Config) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("import %s inputs=%s", src.Path, cfg.Inputs)
	return strings.Repeat("1", 64), nil
}

func (f *fakeStore) SetImageProps(_ context.Context, id string, _ map[string]string) error {
	f.call("set-image-props %s", id[:4])
	return nil
}

func (f *fakeStore) CreateContainer(_ context.Context, name, imageID string, props map[string]string) (*zfs.Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("create %s from %s ip=%s", name, imageID[:4], props[PropIP])
	for _, c := range f.st.Containers {
		if c.ContainerName == name {
			return nil, fmt.Errorf("create container %s: %w", name, zfs.ErrExists)
		}
	}
	c := zfs.Container{ContainerName: name, ImageID: imageID, SpecHash: props[zfs.PropSpecHash],
		Dataset: zfs.Dataset{Props: props}}
	f.st.Containers = append(f.st.Containers, c)
	return &c, nil
}

func (f *fakeStore) SetContainerProps(_ context.Context, name string, _ map[string]string) error {
	f.call("set-props %s", name)
	return nil
}

func (f *fakeStore) ClearContainerProps(_ context.Context, name string, keys ...string) error {
	f.call("clear-props %s %v", name, keys)
	return nil
}

func (f *fakeStore) DestroyContainer(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("destroy %s", name)
	i := slices.IndexFunc(f.st.Containers, func(c zfs.Container) bool { return c.ContainerName == name })
	if i < 0 {
		return zfs.ErrNotFound
	}
	f.st.Containers = slices.Delete(f.st.Containers, i, i+1)
	return nil
}

func (f *fakeStore) KeepPrevious(_ context.Context, name string) (string, error) {
	f.call("keep-previous %s", name)
	return "p1", nil
}

func (f *fakeStore) RestorePrevious(_ context.Context, id string) error {
	f.call("restore-previous %s", id)
	return nil
}

func (f *fakeStore) DestroyPrevious(_ context.Context, id string) error {
	f.call("destroy-previous %s", id)
	return nil
}

func (f *fakeStore) EnsureVolume(_ context.Context, name string, spec zfs.VolumeSpec, props map[string]string) error {
	f.call("ensure-volume %s quota=%d reclaim=%s", name, spec.QuotaBytes, props[PropReclaimPolicy])
	return nil
}

func (f *fakeStore) DestroyVolume(_ context.Context, name string) error {
	f.call("destroy-volume %s", name)
	return nil
}

func (f *fakeStore) Root() string          { return "pool/zocker" }
func (f *fakeStore) ImageSizeLimit() int64 { return 0 }
func (f *fakeStore) Untag(_ context.Context, tag string) error {
	f.call("untag %s", tag)
	return nil
}
func (f *fakeStore) RemoveImage(_ context.Context, ref string) (bool, error) {
	f.call("remove-image %s", ref)
	return true, nil
}
func (f *fakeStore) Commit(_ context.Context, name string, _ zfs.Config, _ map[string]string) (string, error) {
	f.call("commit %s", name)
	return strings.Repeat("c", 64), nil
}

func (f *fakeStore) SweepTmp(context.Context) []string { return nil }

// fakeDriver records the jails removed and lists jails; nothing runs.
type fakeDriver struct {
	removed []string
	jails   []jail.Info
}

func (d *fakeDriver) Create(context.Context, jail.Spec) error {
	return fmt.Errorf("fake driver: no jails")
}
func (d *fakeDriver) Command(string, jail.Process) (*exec.Cmd, error) {
	return nil, fmt.Errorf("fake driver: no jails")
}
func (d *fakeDriver) Remove(_ context.Context, name string) error {
	d.removed = append(d.removed, name)
	return nil
}
func (d *fakeDriver) List(context.Context) ([]jail.Info, error) { return d.jails, nil }

func newFakeEngine(t *testing.T) (*Engine, *fakeStore, *fakeDriver) {
	t.Helper()
	s, d := newFakeStore(), &fakeDriver{}
	return &Engine{Store: s, Driver: d, StateDir: t.TempDir(), Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, s, d
}

var imageID = strings.Repeat("a", 64)

// stopped is a container that should exist but not run, so that Execute
// does not start a supervisor.
func stopped(name string, mut ...func(*manifests.Container)) *manifests.Container {
	c := manifeststest.Container(name, append([]func(*manifests.Container){func(c *manifests.Container) {
		c.Spec.State = manifests.StateStopped
	}}, mut...)...)
	manifests.Default(c, "/m")
	return c
}

func TestExecuteImportTagsTheImage(t *testing.T) {
	e, s, _ := newFakeEngine(t)
	img := manifeststest.Image("base")
	err := e.Execute(context.Background(), reconcile.Action{Kind: manifests.KindImage, Name: "base", Op: reconcile.OpImport, Image: img, Inputs: "sha256:in"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.calls, "; "); got != "import /cache/base.txz inputs=sha256:in; tag base 1111" {
		t.Errorf("calls %q", got)
	}
}

func TestExecuteCreateAllocatesAFreeAddress(t *testing.T) {
	e, s, _ := newFakeEngine(t)
	ctx := context.Background()
	for _, name := range []string{"one", "two"} {
		c := stopped(name)
		if err := e.Execute(ctx, reconcile.Action{Kind: manifests.KindContainer, Name: name, Op: reconcile.OpCreate, Container: c, ImageID: imageID, SpecHash: "h-" + name}); err != nil {
			t.Fatal(err)
		}
	}
	want := "create one from aaaa ip=127.0.1.2; create two from aaaa ip=127.0.1.3"
	if got := strings.Join(s.calls, "; "); got != want {
		t.Errorf("calls %q, want %q (each container its own loopback address)", got, want)
	}
	st, _ := s.Observe(ctx)
	if sp := st.Containers[0].Props[zfs.PropSpec]; !strings.Contains(sp, `"state":"Stopped"`) {
		t.Errorf("the applied spec is not recorded: %q", sp)
	}
}

// A replace destroys the old clone after stopping it, and the new clone
// keeps the old one's loopback address.
func TestExecuteReplaceKeepsTheAddress(t *testing.T) {
	e, s, d := newFakeEngine(t)
	ctx := context.Background()
	s.st.Containers = []zfs.Container{{ContainerName: "web", ImageID: imageID, Dataset: zfs.Dataset{Props: map[string]string{PropIP: "127.0.1.9"}}}}
	c := stopped("web")
	if err := e.Execute(ctx, reconcile.Action{Kind: manifests.KindContainer, Name: "web", Op: reconcile.OpReplace, Container: c, ImageID: strings.Repeat("b", 64)}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.calls, "; "); got != "destroy web; create web from bbbb ip=127.0.1.9" {
		t.Errorf("calls %q", got)
	}
	if !slices.Equal(d.removed, []string{"web"}) {
		t.Errorf("jails removed %v: the old jail must go before its clone", d.removed)
	}
}

func TestExecutePruneAndVolumes(t *testing.T) {
	e, s, _ := newFakeEngine(t)
	ctx := context.Background()
	s.st.Containers = []zfs.Container{{ContainerName: "old", ImageID: imageID}}
	s.st.Previous = []zfs.Container{{ContainerName: "old", PreviousID: "p7"}}
	vol := manifeststest.Volume("data", func(v *manifests.Volume) { v.Spec.Quota = "1G" })
	for _, a := range []reconcile.Action{
		{Kind: manifests.KindContainer, Name: "old", Op: reconcile.OpPrune},
		{Kind: manifests.KindVolume, Name: "data", Op: reconcile.OpCreateVolume, Volume: vol},
		{Kind: manifests.KindVolume, Name: "scratch", Op: reconcile.OpDestroyVolume},
	} {
		if err := e.Execute(ctx, a); err != nil {
			t.Fatalf("%s: %v", a, err)
		}
	}
	want := "destroy old; destroy-previous p7; ensure-volume data quota=1073741824 reclaim=Retain; destroy-volume scratch"
	if got := strings.Join(s.calls, "; "); got != want {
		t.Errorf("calls %q, want %q", got, want)
	}
}

// What retrying cannot fix is a terminal error, before the store is touched.
func TestExecuteTerminalErrors(t *testing.T) {
	e, s, _ := newFakeEngine(t)
	for _, a := range []reconcile.Action{
		{Kind: manifests.KindImage, Name: "b", Op: reconcile.OpBuild},
		{Kind: manifests.KindImage, Name: "p", Op: reconcile.OpPull},
		{Kind: manifests.KindImage, Name: "u", Op: reconcile.OpImport, Image: &manifests.Image{}},
		{Kind: manifests.KindContainer, Name: "x", Op: reconcile.OpStart},
		{Kind: manifests.KindContainer, Name: "x", Op: "explode"},
	} {
		if err := e.Execute(context.Background(), a); !reconcile.IsTerminal(err) {
			t.Errorf("%s: %v, want a terminal error", a, err)
		}
	}
	if len(s.calls) != 0 {
		t.Errorf("store touched: %v", s.calls)
	}
}

// TestExecuteReplaceRereadsProtectedWrites: the plan may have read the
// clone's space before the container wrote to it (a follow-up pass reads
// only what the last actions touched); the replace reads it again and
// leaves a protected clone as it is.
func TestExecuteReplaceRereadsProtectedWrites(t *testing.T) {
	e, s, d := newFakeEngine(t)
	s.st.Containers = []zfs.Container{{ContainerName: "web", ImageID: imageID, Dataset: zfs.Dataset{Used: 5 << 20, Props: map[string]string{}}}}
	c := manifeststest.Container("web", func(c *manifests.Container) { c.Spec.Update = &manifests.Update{ProtectWrites: true} })
	manifests.Default(c, "/m")
	err := e.Execute(context.Background(), reconcile.Action{Kind: manifests.KindContainer, Name: "web", Op: reconcile.OpReplace, Container: c, ImageID: strings.Repeat("b", 64)})
	if !reconcile.IsWait(err) || !strings.Contains(err.Error(), "5.0M") {
		t.Fatalf("err = %v, want a wait naming what was written", err)
	}
	if len(s.calls) != 0 || len(d.removed) != 0 {
		t.Errorf("the clone was touched: calls %q, jails removed %v", s.calls, d.removed)
	}
}
