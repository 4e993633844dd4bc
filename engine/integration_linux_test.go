//go:build linux

package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/controller"
	"github.com/zocker-reconcile/zocker-reconcile/engine/jail"
	"github.com/zocker-reconcile/zocker-reconcile/engine/jail/linuxns"
	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
	"github.com/zocker-reconcile/zocker-reconcile/engine/supervisor"
	"github.com/zocker-reconcile/zocker-reconcile/engine/zfs"
	"github.com/zocker-reconcile/zocker-reconcile/internal/testenv"
	"github.com/zocker-reconcile/zocker-reconcile/manifests"
	"github.com/zocker-reconcile/zocker-reconcile/reconcile"
)

// The test binary doubles as the supervisor and the jail init, as the real
// binary does with its hidden commands.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case linuxns.InitCommand:
			os.Exit(linuxns.HelperMain(os.Args[2:]))
		case "__supervise":
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
			defer stop()
			log := slog.New(slog.NewTextHandler(os.Stderr, nil))
			if err := supervisor.Run(ctx, os.Args[2], os.Args[3], linuxDriver(os.Args[2]), log); err != nil {
				log.Error("supervise", "err", err)
				os.Exit(1)
			}
			os.Exit(0)
		}
	}
	os.Exit(m.Run())
}

func linuxDriver(stateDir string) *linuxns.Driver {
	exe, _ := os.Executable()
	return linuxns.New(stateDir, []string{exe, linuxns.InitCommand}, &runner.Exec{}, nil)
}

// newTestEngine is an Engine on a fresh root of the test pool with the Linux
// driver, its supervisors re-executing the test binary.
func newTestEngine(t *testing.T) *Engine {
	t.Helper()
	root := testenv.Dataset(t)
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	store, err := zfs.Open(ctx, root, &runner.Exec{}, log)
	if err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	exe, _ := os.Executable()
	e := &Engine{Store: store, Driver: linuxDriver(state), StateDir: state, Self: []string{exe, "__supervise"}, Log: log}
	t.Cleanup(func() {
		st, err := store.Observe(ctx)
		if err != nil {
			return
		}
		for _, c := range st.Containers {
			if err := e.remove(ctx, c.ContainerName); err != nil {
				t.Errorf("cleanup container %s: %v", c.ContainerName, err)
			}
		}
	})
	return e
}

func converge(t *testing.T, e *Engine, objs ...any) {
	t.Helper()
	set := &manifests.Set{Images: map[string]*manifests.Image{}, Containers: map[string]*manifests.Container{},
		Volumes: map[string]*manifests.Volume{}, Sources: map[string]manifests.Source{}, Root: "/m", Resolved: "/m", Revision: "r"}
	for _, o := range objs {
		var key, name string
		switch o := o.(type) {
		case *manifests.Image:
			name, key = o.Metadata.Name, reconcile.Key(manifests.KindImage, o.Metadata.Name)
			set.Images[name] = o
		case *manifests.Volume:
			name, key = o.Metadata.Name, reconcile.Key(manifests.KindVolume, o.Metadata.Name)
			set.Volumes[name] = o
		case *manifests.Container:
			name, key = o.Metadata.Name, reconcile.Key(manifests.KindContainer, o.Metadata.Name)
			manifests.Default(o, "/m")
			set.Containers[name] = o
		}
		set.Sources[key] = manifests.Source{File: "/m/" + name + ".yaml", Line: 1}
		set.Files = append(set.Files, manifests.FileResult{Path: "/m/" + name + ".yaml", Objects: []string{key}})
	}
	// The inputs of a tarball image are its sha256, as service.Inputs
	// computes them (service imports engine, so this test cannot use it).
	inputs := map[string]string{}
	for name, img := range set.Images {
		data, err := os.ReadFile(img.Spec.Tarball.Path)
		if err != nil {
			t.Fatal(err)
		}
		inputs[name] = fmt.Sprintf("sha256:%x", sha256.Sum256(data))
	}
	if _, err := controller.Converge(context.Background(), reconcile.Desired{Set: set, ImageInputs: inputs}, e, e, reconcile.Options{}, 5, nil); err != nil {
		t.Fatalf("converge: %v", err)
	}
}

func execIn(t *testing.T, e *Engine, name string, argv ...string) string {
	t.Helper()
	cmd, err := e.Driver.Command(name, jail.Process{Argv: argv, Env: []string{"PATH=/bin:/usr/bin"}})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("exec %v in %s: %v: %s", argv, name, err, out.String())
	}
	return out.String()
}

// A managed Volume is mounted into a container and keeps its data when the
// container is replaced (a changed command); exec runs commands inside.
func TestVolumeSurvivesReplace(t *testing.T) {
	e := newTestEngine(t)
	img := &manifests.Image{Metadata: manifests.ObjectMeta{Name: "busybox"},
		Spec: manifests.ImageSpec{Tarball: &manifests.TarballSource{Path: testenv.BusyboxTarball(t)}}}
	vol := &manifests.Volume{Metadata: manifests.ObjectMeta{Name: "data"}, Spec: manifests.VolumeSpec{Quota: "16M", ReclaimPolicy: "Retain"}}
	app := func(cmd string) *manifests.Container {
		return &manifests.Container{Metadata: manifests.ObjectMeta{Name: "app"}, Spec: manifests.ContainerSpec{
			Image: "busybox", Command: manifests.Command{Argv: []string{"/bin/sleep", cmd}},
			Network: manifests.Network{Mode: manifests.NetNone},
			Volumes: []manifests.VolumeMount{{Volume: "data", Path: "/data"}}}}
	}
	converge(t, e, img, vol, app("1000"))
	waitRunning(t, e, "app")
	execIn(t, e, "app", "/bin/sh", "-c", "echo kept > /data/file")
	if got := execIn(t, e, "app", "/bin/hostname"); strings.TrimSpace(got) != "app" {
		t.Errorf("hostname inside: %q", got)
	}
	before, _ := supervisor.Get(e.StateDir, "app")

	converge(t, e, img, vol, app("2000")) // spec.command changed: replace
	waitRunning(t, e, "app")
	after, _ := supervisor.Get(e.StateDir, "app")
	if after.SupervisorPID == before.SupervisorPID {
		t.Errorf("the container was not replaced (same supervisor %d)", after.SupervisorPID)
	}
	if got := execIn(t, e, "app", "/bin/cat", "/data/file"); strings.TrimSpace(got) != "kept" {
		t.Errorf("volume data after replace: %q", got)
	}
	st, err := e.Store.Observe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Volumes) != 1 {
		t.Fatalf("volumes: %+v", st.Volumes)
	}
	if data, err := os.ReadFile(filepath.Join(st.Volumes[0].Mountpoint, "file")); err != nil || strings.TrimSpace(string(data)) != "kept" {
		t.Errorf("the data is on the volume's dataset: %q %v", data, err)
	}
}

func waitRunning(t *testing.T, e *Engine, name string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if s, err := supervisor.Get(e.StateDir, name); err == nil && s.Alive && s.State == supervisor.StateRunning {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	s, err := supervisor.Get(e.StateDir, name)
	t.Fatalf("container %s not running: %+v %v", name, s, err)
}
