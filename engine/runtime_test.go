package engine

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/engine/jail"
	"github.com/zocker-reconcile/zocker-reconcile/engine/supervisor"
	"github.com/zocker-reconcile/zocker-reconcile/manifests"
)

func container(mut func(*manifests.ContainerSpec)) *manifests.Container {
	c := &manifests.Container{Metadata: manifests.ObjectMeta{Name: "web"}}
	c.Spec.Image = "busybox"
	c.Spec.Network.Mode = "loopback"
	c.Spec.RestartPolicy = "Always"
	c.Spec.StopSignal = "SIGTERM"
	c.Spec.StopTimeout = "10s"
	if mut != nil {
		mut(&c.Spec)
	}
	return c
}

func TestSupervisorConfigCommandRules(t *testing.T) {
	img := ImageConfig{Entrypoint: []string{"/entry"}, Cmd: []string{"default"}, Env: []string{"PATH=/bin", "A=img"}, User: "www", Workdir: "/srv"}
	in := RuntimeInputs{Root: "/z/containers/web", Address: "127.0.1.2"}
	cases := []struct {
		name string
		mut  func(*manifests.ContainerSpec)
		argv []string
	}{
		{"image CMD behind the entrypoint", nil, []string{"/entry", "default"}},
		{"argv replaces CMD", func(s *manifests.ContainerSpec) { s.Command.Argv = []string{"x", "y"} }, []string{"/entry", "x", "y"}},
		{"string runs through sh", func(s *manifests.ContainerSpec) { s.Command.Shell = "echo hi" }, []string{"/entry", "/bin/sh", "-c", "echo hi"}},
	}
	for _, tc := range cases {
		cfg, err := SupervisorConfig(container(tc.mut), img, in)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !reflect.DeepEqual(cfg.Process.Argv, tc.argv) {
			t.Errorf("%s: argv %q, want %q", tc.name, cfg.Process.Argv, tc.argv)
		}
	}
}

func TestSupervisorConfigDefaultsAndOverrides(t *testing.T) {
	img := ImageConfig{Cmd: []string{"/bin/true"}, Env: []string{"PATH=/bin", "A=img"}, User: "www", Workdir: "/srv"}
	c := container(func(s *manifests.ContainerSpec) {
		s.Env = map[string]string{"A": "mine", "Z": "1", "B": "2"}
		s.Workdir = "/work"
		s.Resources = manifests.Resources{Memory: "512M", CPU: 50, MaxProcesses: 64}
		s.Healthcheck = &manifests.Healthcheck{Command: manifests.Command{Shell: "true"}, Interval: "2s", Timeout: "1s", Retries: 2}
		s.Volumes = []manifests.VolumeMount{{Volume: "data", Path: "/data"}, {HostPath: "/srv/site", Path: "/www", ReadOnly: true}}
	})
	cfg, err := SupervisorConfig(c, img, RuntimeInputs{Root: "/r", Address: "127.0.1.9", VolumePaths: map[string]string{"data": "/z/volumes/data"}})
	if err != nil {
		t.Fatal(err)
	}
	want := jail.Process{Argv: []string{"/bin/true"}, Env: []string{"PATH=/bin", "A=mine", "B=2", "Z=1"}, User: "www", Workdir: "/work"}
	if !reflect.DeepEqual(cfg.Process, want) {
		t.Errorf("process %+v, want %+v", cfg.Process, want)
	}
	if cfg.Jail.Hostname != "web" || cfg.Jail.Network.Interface != "lo0" || !reflect.DeepEqual(cfg.Jail.Network.Addresses, []string{"127.0.1.9"}) {
		t.Errorf("jail %+v", cfg.Jail)
	}
	if cfg.Jail.Limits != (jail.Limits{MemoryBytes: 512 << 20, CPUPercent: 50, MaxProcesses: 64}) {
		t.Errorf("limits %+v", cfg.Jail.Limits)
	}
	wantMounts := []jail.Mount{{Source: "/z/volumes/data", Target: "/data"}, {Source: "/srv/site", Target: "/www", ReadOnly: true}}
	if !reflect.DeepEqual(cfg.Jail.Mounts, wantMounts) {
		t.Errorf("mounts %+v", cfg.Jail.Mounts)
	}
	if cfg.StopTimeout != supervisor.Duration(10*time.Second) || cfg.Healthcheck == nil ||
		cfg.Healthcheck.Interval != supervisor.Duration(2*time.Second) || !reflect.DeepEqual(cfg.Healthcheck.Argv, []string{"/bin/sh", "-c", "true"}) {
		t.Errorf("stop/health %+v %+v", cfg.StopTimeout, cfg.Healthcheck)
	}
}

func TestSupervisorConfigErrors(t *testing.T) {
	_, err := SupervisorConfig(container(nil), ImageConfig{}, RuntimeInputs{Address: "127.0.1.2"})
	if err == nil || !strings.Contains(err.Error(), "no command") {
		t.Errorf("no command: %v", err)
	}
	c := container(func(s *manifests.ContainerSpec) { s.Volumes = []manifests.VolumeMount{{Volume: "gone", Path: "/d"}} })
	_, err = SupervisorConfig(c, ImageConfig{Cmd: []string{"x"}}, RuntimeInputs{Address: "127.0.1.2"})
	if err == nil || !strings.Contains(err.Error(), "volume gone does not exist") {
		t.Errorf("missing volume: %v", err)
	}
	_, err = SupervisorConfig(container(nil), ImageConfig{Cmd: []string{"x"}}, RuntimeInputs{})
	if err == nil || !strings.Contains(err.Error(), "without an allocated address") {
		t.Errorf("no address: %v", err)
	}
}
