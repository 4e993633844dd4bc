package build

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/zocker-reconcile/zocker-reconcile/engine/jail"
	"github.com/zocker-reconcile/zocker-reconcile/engine/zfs"
	"github.com/zocker-reconcile/zocker-reconcile/internal/testenv"
)

// fakeStore keeps images as plain directories: images/<id> and tmp/<random>.
type fakeStore struct {
	dir     string
	mu      sync.Mutex
	configs map[string]zfs.Config
	tags    map[string]string
	tagged  int
	works   int
	// origins overrides an image's zocker:origin (default: none, a build).
	origins map[string]string
}

func newFakeStore(t *testing.T) *fakeStore {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"images", "tmp"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return &fakeStore{dir: dir, configs: map[string]zfs.Config{}, tags: map[string]string{}}
}

// addBase makes a base image with /etc/passwd and /etc/group and tags it.
func (f *fakeStore) addBase(t *testing.T, tag string, cfg zfs.Config) string {
	t.Helper()
	id := strings.Repeat("ba5e", 16)
	root := filepath.Join(f.dir, "images", id)
	mustWrite(t, filepath.Join(root, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nwww:x:80:80:www:/var/www:/bin/sh\n")
	mustWrite(t, filepath.Join(root, "etc/group"), "wheel:x:0:root\nwww:x:80:\nstaff:x:20:\n")
	f.configs[id] = cfg
	f.tags[tag] = id
	return id
}

func (f *fakeStore) Observe(context.Context) (*zfs.State, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := &zfs.State{Tags: map[string]string{}}
	for id, cfg := range f.configs {
		im := zfs.Image{ID: id, Config: cfg, Dataset: zfs.Dataset{Mountpoint: filepath.Join(f.dir, "images", id)}}
		if o := f.origins[id]; o != "" {
			im.Props = map[string]string{zfs.PropOrigin: o}
		}
		st.Images = append(st.Images, im)
	}
	for k, v := range f.tags {
		st.Tags[k] = v
	}
	return st, nil
}

func (f *fakeStore) NewWork(_ context.Context, from string) (*zfs.Work, error) {
	f.mu.Lock()
	f.works++
	f.mu.Unlock()
	mp := filepath.Join(f.dir, "tmp", testenv.RandomHex(6))
	if from == "" {
		return &zfs.Work{Dataset: "tmp/" + filepath.Base(mp), Mountpoint: mp}, os.Mkdir(mp, 0o755)
	}
	if out, err := exec.Command("cp", "-a", filepath.Join(f.dir, "images", from), mp).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("clone %s: %v: %s", from, err, out)
	}
	return &zfs.Work{Dataset: "tmp/" + filepath.Base(mp), Mountpoint: mp}, nil
}

func (f *fakeStore) Discard(_ context.Context, w *zfs.Work) { os.RemoveAll(w.Mountpoint) }

func (f *fakeStore) Publish(ctx context.Context, w *zfs.Work, id string, cfg zfs.Config, _ map[string]string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.configs[id]; ok {
		f.Discard(ctx, w)
		return zfs.ErrExists
	}
	if err := os.Rename(w.Mountpoint, filepath.Join(f.dir, "images", id)); err != nil {
		return err
	}
	f.configs[id] = cfg
	return nil
}

func (f *fakeStore) Tag(_ context.Context, tag, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tags[tag] = id
	f.tagged++
	return nil
}

func (f *fakeStore) imageDir(id string) string { return filepath.Join(f.dir, "images", id) }

func (f *fakeStore) tmpEntries(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(f.dir, "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// fakeDriver runs RUN commands on the host with the working directory in
// the clone: enough for steps that write relative paths.
type fakeDriver struct {
	mu      sync.Mutex
	jails   map[string]jail.Spec
	created int
	procs   []jail.Process
}

func newFakeDriver() *fakeDriver { return &fakeDriver{jails: map[string]jail.Spec{}} }

func (d *fakeDriver) Create(_ context.Context, s jail.Spec) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.jails[s.Name]; ok {
		return fmt.Errorf("jail %s exists", s.Name)
	}
	d.jails[s.Name] = s
	d.created++
	// Like the real drivers: the host's resolv.conf and localtime go in.
	if fi, err := os.Stat(filepath.Join(s.Root, "etc")); err == nil && fi.IsDir() {
		return jail.CopyHostFiles(s.Root, jail.DefaultHostFiles)
	}
	return nil
}

func (d *fakeDriver) Command(name string, p jail.Process) (*exec.Cmd, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s, ok := d.jails[name]
	if !ok {
		return nil, jail.ErrNotFound
	}
	d.procs = append(d.procs, p)
	cmd := exec.Command(p.Argv[0], p.Argv[1:]...)
	cmd.Dir = filepath.Join(s.Root, p.Workdir)
	cmd.Env = append(append([]string{}, p.Env...), "PATH=/usr/bin:/bin", "NET="+s.Network.Mode)
	return cmd, nil
}

func (d *fakeDriver) Remove(_ context.Context, name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.jails, name)
	return nil
}

func (d *fakeDriver) List(context.Context) ([]jail.Info, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []jail.Info
	for n, s := range d.jails {
		out = append(out, jail.Info{Name: n, Path: s.Root})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func mustWrite(t testing.TB, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// fixture is a fake store with a base image, a fake driver and a context.
type fixture struct {
	store  *fakeStore
	driver *fakeDriver
	ctxDir string
	base   string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	s := newFakeStore(t)
	base := s.addBase(t, "base", zfs.Config{Env: map[string]string{"HOME": "/root"}, Cmd: []string{"/bin/sh"}})
	return &fixture{store: s, driver: newFakeDriver(), ctxDir: t.TempDir(), base: base}
}

func (fx *fixture) write(t *testing.T, rel, content string) {
	t.Helper()
	mustWrite(t, filepath.Join(fx.ctxDir, rel), content)
}

// build writes the Zockerfile and builds it, returning the result, the
// progress output and the error.
func (fx *fixture) build(t *testing.T, zockerfile string, args map[string]string, tag string) (Result, string, error) {
	t.Helper()
	if zockerfile != "" {
		fx.write(t, "Zockerfile", zockerfile)
	}
	var out strings.Builder
	res, err := Build(context.Background(), Options{
		ContextDir: fx.ctxDir, Tag: tag, Args: args, Output: &out,
		Store: fx.store, Driver: fx.driver,
	})
	return res, out.String(), err
}

// stepLines returns the "---> ..." lines of a build's progress.
func stepLines(out string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "---> ") {
			lines = append(lines, l)
		}
	}
	return lines
}

// cachedFlags tells, per step after FROM, whether it was cached.
func cachedFlags(out string) []bool {
	var flags []bool
	for _, l := range stepLines(out)[1:] {
		flags = append(flags, strings.HasPrefix(l, "---> cached "))
	}
	return flags
}

func requireRootForCopy(t *testing.T) {
	t.Helper()
	testenv.RequireRoot(t) // COPY sets file owners
}

var _ = errors.Is
