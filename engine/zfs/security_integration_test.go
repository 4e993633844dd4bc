package zfs

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
	"github.com/zocker-reconcile/zocker-reconcile/internal/testenv"
)

// TestSecurityM8DestroyKeepsForeignChildren: a dataset made by hand below a
// managed volume (and container) is not ours; 67d2aef's destroy -r took it
// with the volume. Now the destruction is refused and the child stays.
func TestSecurityM8DestroyKeepsForeignChildren(t *testing.T) {
	root := testenv.Dataset(t)
	requireAdapter(t, testenv.Pool(t))
	ctx := context.Background()
	s, err := Open(ctx, root, &runner.Exec{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureVolume(ctx, "data", VolumeSpec{}, nil); err != nil {
		t.Fatal(err)
	}
	child := s.volumeDS("data") + "/by-hand"
	if out, err := exec.Command("zfs", "create", child).CombinedOutput(); err != nil {
		t.Fatalf("zfs create: %v: %s", err, out)
	}
	err = s.DestroyVolume(ctx, "data")
	if err == nil || !strings.Contains(err.Error(), "by-hand") {
		t.Fatalf("destroy volume with a foreign child: %v", err)
	}
	if out, err := exec.Command("zfs", "list", "-H", "-o", "name", child).CombinedOutput(); err != nil {
		t.Fatalf("the foreign child is gone: %v: %s", err, out)
	}
	// Without it, the volume goes.
	testenv.DestroyAll(t, child)
	if err := s.DestroyVolume(ctx, "data"); err != nil {
		t.Fatalf("destroy volume: %v", err)
	}
}
