package oci

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/zocker-reconcile/zocker-reconcile/engine/zfs"
)

// fakeStore keeps images as plain directories, for the puller's unit tests
// without ZFS: a work "clone" is a copy (cp -a) of its parent.
type fakeStore struct {
	t    testing.TB
	dir  string
	mu   sync.Mutex
	n    int
	imgs []zfs.Image
	tmp  map[string]bool
}

func newFakeStore(t testing.TB) *fakeStore {
	d := t.TempDir()
	for _, sub := range []string{"images", "tmp"} {
		if err := os.Mkdir(filepath.Join(d, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	return &fakeStore{t: t, dir: d, tmp: map[string]bool{}}
}

func (f *fakeStore) Observe(ctx context.Context) (*zfs.State, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := &zfs.State{Images: append([]zfs.Image(nil), f.imgs...)}
	for w := range f.tmp {
		st.Tmp = append(st.Tmp, w)
	}
	return st, nil
}

func (f *fakeStore) NewWork(ctx context.Context, fromID string) (*zfs.Work, error) {
	f.mu.Lock()
	f.n++
	mp := filepath.Join(f.dir, "tmp", fmt.Sprint(f.n))
	f.tmp[mp] = true
	f.mu.Unlock()
	if fromID == "" {
		return &zfs.Work{Dataset: mp, Mountpoint: mp}, os.Mkdir(mp, 0o755)
	}
	if out, err := exec.Command("cp", "-a", filepath.Join(f.dir, "images", fromID), mp).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("cp: %v: %s", err, out)
	}
	return &zfs.Work{Dataset: mp, Mountpoint: mp}, nil
}

func (f *fakeStore) Discard(ctx context.Context, w *zfs.Work) {
	os.RemoveAll(w.Mountpoint)
	f.mu.Lock()
	delete(f.tmp, w.Mountpoint)
	f.mu.Unlock()
}

func (f *fakeStore) Publish(ctx context.Context, w *zfs.Work, id string, cfg zfs.Config, extra map[string]string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	mp := filepath.Join(f.dir, "images", id)
	if err := os.Rename(w.Mountpoint, mp); err != nil {
		return err
	}
	delete(f.tmp, w.Mountpoint)
	f.imgs = append(f.imgs, zfs.Image{ID: id, Parent: cfg.Parent, Config: cfg,
		Dataset: zfs.Dataset{Name: "images/" + id, Mountpoint: mp, Props: extra}})
	return nil
}
