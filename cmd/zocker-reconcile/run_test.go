package main

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/zocker-reconcile/zocker-reconcile/manifests"
)

func TestRunFlagsContainer(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.Mkdir("rel", 0o755); err != nil {
		t.Fatal(err)
	}
	f := runFlags{name: "web", network: "loopback", restart: "on-failure", cpus: "0.5", memory: "64M",
		volumes: []string{dir + ":/logs:rw", "data:/data:ro", "./rel:/rel"}, env: []string{"A=1", "B=x=y"}}
	c, err := f.container([]string{"base", "echo hello; exit 3"})
	if err != nil {
		t.Fatal(err)
	}
	s := c.Spec
	if c.Metadata.Name != "web" || s.Image != "base" || s.Command.Shell != "echo hello; exit 3" || s.RestartPolicy != manifests.RestartOnFailure {
		t.Errorf("spec: %+v", s)
	}
	if s.Resources.CPU != 50 || s.Resources.Memory != "64M" || !reflect.DeepEqual(s.Env, map[string]string{"A": "1", "B": "x=y"}) {
		t.Errorf("resources/env: %+v %+v", s.Resources, s.Env)
	}
	if s.Volumes[0] != (manifests.VolumeMount{HostPath: dir, Path: "/logs"}) ||
		s.Volumes[1] != (manifests.VolumeMount{Volume: "data", Path: "/data", ReadOnly: true}) ||
		!strings.HasSuffix(s.Volumes[2].HostPath, "/rel") || !strings.HasPrefix(s.Volumes[2].HostPath, "/") {
		t.Errorf("volumes: %+v", s.Volumes)
	}
	argv, err := (&runFlags{network: "none", restart: "no"}).container([]string{"base", "ls", "-l", "/"})
	if err != nil || !reflect.DeepEqual(argv.Spec.Command.Argv, []string{"ls", "-l", "/"}) || !strings.HasPrefix(argv.Metadata.Name, "run-") || len(argv.Metadata.Name) != 12 {
		t.Errorf("argv: %+v %v", argv, err)
	}
	none, err := (&runFlags{network: "none", restart: "no"}).container([]string{"base"})
	if err != nil || !none.Spec.Command.IsZero() {
		t.Errorf("no command: %+v %v", none, err)
	}
	for _, bad := range []struct {
		f   runFlags
		msg string
	}{
		{runFlags{name: "Bad_Name", network: "none", restart: "no"}, "metadata.name"},
		{runFlags{network: "none", restart: "sometimes"}, "--restart"},
		{runFlags{network: "none", restart: "no", env: []string{"NOVALUE"}}, "KEY=VALUE"},
		{runFlags{network: "none", restart: "no", volumes: []string{"/a"}}, "HOSTDIR:PATH"},
		{runFlags{network: "none", restart: "no", volumes: []string{"/a:relative"}}, "spec.volumes[0].path"},
		{runFlags{network: "bridge", restart: "no"}, "spec.network"},
		{runFlags{network: "none", restart: "no", cpus: "lots"}, "--cpus"},
		{runFlags{network: "none", restart: "no", volumes: []string{"/no/such/dir:/x"}}, "does not exist"},
		{runFlags{network: "none", restart: "no", memory: "1 GB"}, "spec.resources.memory"},
	} {
		_, err := bad.f.container([]string{"base"})
		if err == nil || !strings.Contains(err.Error(), bad.msg) {
			t.Errorf("%+v: error %v, want %q", bad.f, err, bad.msg)
		}
	}
}
