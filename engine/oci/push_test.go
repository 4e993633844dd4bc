package oci

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/zocker-reconcile/zocker-reconcile/engine/zfs"
	"github.com/zocker-reconcile/zocker-reconcile/internal/testenv"
)

// TestIntegrationPushPullRoundTrip pushes a local chain (an imported
// busybox, a child that adds, modifies, deletes and hard-links) to the
// in-process registry, pulls it into another root and compares the trees;
// a second push sends nothing.
func TestIntegrationPushPullRoundTrip(t *testing.T) {
	testenv.Pool(t)
	ctx := context.Background()
	s := openStore(t)
	base, err := s.ImportTarball(ctx, zfs.ImportSource{Path: testenv.BusyboxTarball(t)}, zfs.Config{Cmd: []string{"/bin/sh"}})
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.NewWork(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	mp := w.Mountpoint
	for _, step := range []func() error{
		func() error { return os.MkdirAll(filepath.Join(mp, "srv/www"), 0o755) },
		func() error {
			return os.WriteFile(filepath.Join(mp, "srv/www/index.html"), []byte("hello from zocker\n"), 0o644)
		},
		func() error {
			return os.Link(filepath.Join(mp, "srv/www/index.html"), filepath.Join(mp, "srv/www/copy.html"))
		},
		func() error { return os.WriteFile(filepath.Join(mp, "etc/motd"), []byte("changed\n"), 0o600) },
		func() error { return os.RemoveAll(filepath.Join(mp, "tmp")) },
		func() error { return os.Remove(filepath.Join(mp, "bin/ls")) },
		func() error { return os.Chown(filepath.Join(mp, "srv/www/index.html"), 80, 80) },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	child := sum([]byte("push test child " + testenv.RandomHex(4)))
	if err := s.Publish(ctx, w, child, zfs.Config{Parent: base, Cmd: []string{"/bin/cat", "/srv/www/index.html"}, Env: map[string]string{"A": "1"}}, nil); err != nil {
		t.Fatal(err)
	}
	host := ggcrRegistry(t, nil)
	ref := host + "/local/app:v1"
	p := &Pusher{Store: s, Log: testLog()}
	res, err := p.Push(ctx, child, ref, "", true)
	if err != nil {
		t.Fatal(err)
	}
	if res.Layers != 2 || res.Sent != 2 {
		t.Errorf("push = %+v, want 2 layers sent", res)
	}
	again, err := p.Push(ctx, child, ref, "", true)
	if err != nil || again.Sent != 0 || again.Manifest != res.Manifest {
		t.Errorf("second push = %+v, %v; want nothing sent and the same manifest %s", again, err, res.Manifest)
	}
	s2 := openStore(t)
	pr, err := (&Puller{Store: s2, Log: testLog()}).Pull(ctx, Source{Ref: ref, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := s.Observe(ctx)
	local, _ := st.Image(child)
	st2, _ := s2.Observe(ctx)
	pulled, _ := st2.Image(pr.ID)
	compareTrees(t, treeOfDir(t, pulled.Mountpoint), treeOfDir(t, local.Mountpoint))
	if pulled.Config.Cmd[0] != "/bin/cat" || pulled.Config.Env["A"] != "1" {
		t.Errorf("config = %+v", pulled.Config)
	}
	for _, gone := range []string{"tmp", "bin/ls"} {
		if _, err := os.Lstat(filepath.Join(pulled.Mountpoint, gone)); err == nil {
			t.Errorf("%s was deleted locally but exists after the round trip", gone)
		}
	}
}
