//go:build linux

package engine

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
	"github.com/zocker-reconcile/zocker-reconcile/engine/zfs"
	"github.com/zocker-reconcile/zocker-reconcile/internal/testenv"
	"github.com/zocker-reconcile/zocker-reconcile/manifests"
	"github.com/zocker-reconcile/zocker-reconcile/reconcile"
)

// commandLog is a slog handler that records the external commands: the
// runner's "exec" and go-zfs's "go-zfs" debug records.
type commandLog struct {
	rec  *commands
	next slog.Handler
}

type commands struct {
	mu   sync.Mutex
	cmds []string
}

func (c *commands) since(i int) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.cmds[i:]...)
}

func (c *commands) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.cmds)
}

func (c commandLog) Enabled(context.Context, slog.Level) bool { return true }
func (c commandLog) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "exec" || r.Message == "go-zfs" {
		var cmd string
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "argv" || a.Key == "cmd" {
				cmd = a.Value.String()
			}
			return true
		})
		// go-zfs logs a START and a FINISH line per command.
		if r.Message == "go-zfs" && !strings.Contains(cmd, " START ") {
			return nil
		}
		c.rec.mu.Lock()
		c.rec.cmds = append(c.rec.cmds, cmd)
		c.rec.mu.Unlock()
	}
	if r.Level >= slog.LevelWarn {
		return c.next.Handle(ctx, r)
	}
	return nil
}
func (c commandLog) WithAttrs(as []slog.Attr) slog.Handler {
	return commandLog{c.rec, c.next.WithAttrs(as)}
}
func (c commandLog) WithGroup(g string) slog.Handler { return commandLog{c.rec, c.next.WithGroup(g)} }

// TestCommandsPerCreateConstant: creating and starting a container runs the
// same number of external commands whether 20 or 200 containers exist
// (targeted zfs get of the clone, its image and its volumes instead of a
// whole observation), counted through the runner and go-zfs's logger.
func TestCommandsPerCreateConstant(t *testing.T) {
	root := testenv.Dataset(t)
	ctx := context.Background()
	rec := &commands{}
	log := slog.New(commandLog{rec, slog.NewTextHandler(os.Stderr, nil)})
	store, err := zfs.Open(ctx, root, &runner.Exec{Logger: log}, log)
	if err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	exe, _ := os.Executable()
	e := &Engine{Store: store, Driver: linuxDriver(state), StateDir: state, Self: []string{exe, "__supervise"}, Log: log}
	img := &manifests.Image{Metadata: manifests.ObjectMeta{Name: "busybox"},
		Spec: manifests.ImageSpec{Tarball: &manifests.TarballSource{Path: testenv.BusyboxTarball(t)}}}
	converge(t, e, img)
	st, err := store.Observe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id := st.Tags["busybox"]
	if id == "" {
		t.Fatalf("no busybox tag: %v", st.Tags)
	}
	var started, adHoc []string
	t.Cleanup(func() {
		for _, name := range started {
			if err := e.remove(ctx, name); err != nil {
				t.Errorf("cleanup %s: %v", name, err)
			}
		}
		for _, name := range adHoc {
			if err := e.RemoveAdHoc(ctx, name, true); err != nil {
				t.Errorf("cleanup %s: %v", name, err)
			}
		}
	})
	// runD is `run -d` (CreateAdHoc + StartAdHoc) of one container by its
	// image's tag; it returns the commands it ran.
	runD := func(name string) []string {
		c := &manifests.Container{Metadata: manifests.ObjectMeta{Name: name}, Spec: manifests.ContainerSpec{
			Image: "busybox", Command: manifests.Command{Argv: []string{"/bin/sleep", "1000"}},
			Network: manifests.Network{Mode: manifests.NetNone}}}
		manifests.Default(c, "")
		before := rec.len()
		if _, err := e.CreateAdHoc(ctx, c); err != nil {
			t.Fatalf("run %s: %v", name, err)
		}
		adHoc = append(adHoc, name)
		if _, err := e.StartAdHoc(ctx, name, false); err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
		return rec.since(before)
	}
	var adHocCmds, followUpCmds [][]string

	existing := 0
	// perCreate fills the tree up to total containers (stopped clones), then
	// creates and starts 3 more and returns the commands each took.
	perCreate := func(total int) []int64 {
		for ; existing < total; existing++ {
			name := fmt.Sprintf("filler%03d", existing)
			if _, err := store.CreateContainer(ctx, name, id, map[string]string{zfs.PropManifest: "filler.yaml"}); err != nil {
				t.Fatal(err)
			}
		}
		var out []int64
		if _, err := e.ObserveDetail(ctx); err != nil { // the base of the follow-up observation
			t.Fatal(err)
		}
		var touched zfs.Touched
		for i := 0; i < 3; i++ {
			name := fmt.Sprintf("new%d-%d", total, i)
			c := &manifests.Container{Metadata: manifests.ObjectMeta{Name: name}, Spec: manifests.ContainerSpec{
				Image: "busybox", Command: manifests.Command{Argv: []string{"/bin/sleep", "1000"}},
				Network: manifests.Network{Mode: manifests.NetNone}}}
			manifests.Default(c, "/m")
			before := rec.len()
			err := e.Execute(ctx, reconcile.Action{Op: reconcile.OpCreate, Kind: manifests.KindContainer, Name: name,
				Container: c, ImageID: id, SpecHash: reconcile.SpecHash(c, id), Manifest: name + ".yaml"})
			if err != nil {
				t.Fatalf("create %s: %v", name, err)
			}
			started = append(started, name)
			cmds := rec.since(before)
			if i == 0 {
				t.Logf("create+start of %s with %d containers: %q", name, total, cmds)
			}
			out = append(out, int64(len(cmds)))
			touched.Merge(TouchedBy(reconcile.Action{Op: reconcile.OpCreate, Kind: manifests.KindContainer, Name: name}))
		}
		// The pass after these actions reads only what they touched.
		before := rec.len()
		d, err := e.ObserveTouched(ctx, touched)
		if err != nil {
			t.Fatal(err)
		}
		follow := rec.since(before)
		followUpCmds = append(followUpCmds, follow)
		if got := len(d.Containers); got != total+3*len(followUpCmds) {
			t.Errorf("the follow-up observation at %d sees %d containers, want %d", total, got, total+3*len(followUpCmds))
		}
		adHocCmds = append(adHocCmds, runD(fmt.Sprintf("adhoc%d", total)))
		return out
	}
	at20 := perCreate(20)
	at200 := perCreate(200)
	t.Logf("external commands per create+start: %v with 20 containers, %v with 200", at20, at200)
	for i := range at20 {
		if at20[i] != at20[0] || at200[i] != at20[0] {
			t.Errorf("commands per create+start differ: %v at 20 containers, %v at 200", at20, at200)
			break
		}
	}
	// zfs get type (the name is free), zfs clone, zfs list (go-zfs reads
	// the clone back), one targeted zfs get of the clone and its image.
	if at20[0] > 4 {
		t.Errorf("create+start takes %d commands, want at most 4", at20[0])
	}
	// The observation after them: one targeted zfs get at 20 and at 200,
	// naming the three containers created.
	t.Logf("follow-up observation with 20 containers: %q", followUpCmds[0])
	for i, cmds := range followUpCmds {
		if len(cmds) != 1 || strings.Contains(cmds[0], " all "+root+" ") || !strings.Contains(cmds[0], root+"/containers/new") {
			t.Errorf("follow-up observation %d: %q, want one zfs get of the three new containers", i, cmds)
		}
	}
	// run -d the same: no command reads the whole tree.
	t.Logf("run -d with 20 containers: %q", adHocCmds[0])
	if len(adHocCmds[0]) != len(adHocCmds[1]) {
		t.Errorf("run -d: %d commands with 20 containers, %d with 200:\n%q\n%q", len(adHocCmds[0]), len(adHocCmds[1]), adHocCmds[0], adHocCmds[1])
	}
	// The tag, the image, the name (the store's clone checks it is free),
	// the clone and go-zfs's read-back, then one read of the clone with its
	// image for the start.
	if len(adHocCmds[0]) > 6 {
		t.Errorf("run -d takes %d commands, want at most 6: %q", len(adHocCmds[0]), adHocCmds[0])
	}
	for _, cmds := range adHocCmds {
		for _, c := range cmds {
			if strings.Contains(c, " -r ") && (strings.HasSuffix(c, " all "+root) || strings.Contains(c, " all "+root+"]")) {
				t.Errorf("run -d read the whole tree: %s", c)
			}
		}
	}
}
