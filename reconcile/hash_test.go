package reconcile

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/zocker-reconcile/zocker-reconcile/manifests"
)

func TestSpecHashNoticesEveryField(t *testing.T) {
	base := container("web")
	h0 := SpecHash(base, "id1")
	if h0 != SpecHash(container("web"), "id1") {
		t.Fatal("equal specs give different hashes")
	}
	if len(h0) != 64 {
		t.Fatalf("hash %q is not hex sha256", h0)
	}
	edits := map[string]func(*manifests.Container){
		"command":   func(c *manifests.Container) { c.Spec.Command.Argv = []string{"/bin/sh"} },
		"env":       func(c *manifests.Container) { c.Spec.Env = map[string]string{"A": "1"} },
		"env value": func(c *manifests.Container) { c.Spec.Env = map[string]string{"A": "2"} },
		"user":      func(c *manifests.Container) { c.Spec.User = "www" },
		"workdir":   func(c *manifests.Container) { c.Spec.Workdir = "/tmp" },
		"hostname":  func(c *manifests.Container) { c.Spec.Hostname = "h" },
		"network":   func(c *manifests.Container) { c.Spec.Network.Mode = "none" },
		"volumes":   func(c *manifests.Container) { c.Spec.Volumes = []manifests.VolumeMount{{Volume: "v", Path: "/v"}} },
		"readOnly": func(c *manifests.Container) {
			c.Spec.Volumes = []manifests.VolumeMount{{Volume: "v", Path: "/v", ReadOnly: true}}
		},
		"restart":     func(c *manifests.Container) { c.Spec.RestartPolicy = "OnFailure" },
		"dependsOn":   func(c *manifests.Container) { c.Spec.DependsOn = []string{"db"} },
		"healthcheck": func(c *manifests.Container) { c.Spec.Healthcheck = &manifests.Healthcheck{Retries: 5} },
		"memory":      func(c *manifests.Container) { c.Spec.Resources.Memory = "1G" },
		"cpu":         func(c *manifests.Container) { c.Spec.Resources.CPU = 50 },
		"maxproc":     func(c *manifests.Container) { c.Spec.Resources.MaxProcesses = 9 },
		"stopSignal":  func(c *manifests.Container) { c.Spec.StopSignal = "SIGHUP" },
		"stopTimeout": func(c *manifests.Container) { c.Spec.StopTimeout = "1m" },
		"securelevel": func(c *manifests.Container) { c.Spec.Securelevel = intp(2) },
		"jailParams":  func(c *manifests.Container) { c.Spec.JailParams = map[string]string{"a": "b"} },
		"image tag":   func(c *manifests.Container) { c.Spec.Image = "other" },
		"name":        func(c *manifests.Container) { c.Metadata.Name = "web2" },
	}
	seen := map[string]string{}
	for what, edit := range edits {
		h := SpecHash(container("web", edit), "id1")
		if h == h0 {
			t.Errorf("editing %s does not change the hash", what)
		}
		if other, dup := seen[h]; dup {
			t.Errorf("editing %s and %s give the same hash", what, other)
		}
		seen[h] = what
	}
	if SpecHash(base, "id2") == h0 {
		t.Error("a new image ID does not change the hash")
	}
	if SpecHash(container("web", func(c *manifests.Container) { c.Spec.State = "Stopped" }), "id1") != h0 {
		t.Error("spec.state changes the hash; it must be converged by start/stop")
	}
	if SpecHash(container("web", func(c *manifests.Container) { c.Metadata.Labels = map[string]string{"a": "b"} }), "id1") != h0 {
		t.Error("labels change the hash; they are not part of the spec")
	}
}

func TestSpecHashDoesNotModifyInput(t *testing.T) {
	c := container("web", func(c *manifests.Container) { c.Spec.DependsOn = []string{"z", "a"} })
	SpecHash(c, "id1")
	if !slices.Equal(c.Spec.DependsOn, []string{"z", "a"}) || c.Spec.Hostname != "" {
		t.Errorf("input modified: %+v", c.Spec)
	}
}

func TestAppliedSpecRoundTrip(t *testing.T) {
	c := container("web", func(c *manifests.Container) {
		c.Spec.Env = map[string]string{"B": "2", "A": "1"}
		c.Spec.Command = manifests.Command{Shell: "exec httpd"}
		c.Spec.Healthcheck = &manifests.Healthcheck{Command: manifests.Command{Argv: []string{"/bin/true"}}}
		c.Spec.Securelevel = intp(3)
	})
	js, err := AppliedSpec(c)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeAppliedSpec("web", js)
	if err != nil {
		t.Fatal(err)
	}
	// Env values come back as their digests (M3), everything else as is.
	if ch := SpecChanges(back.Spec, RedactEnv(NormalizeSpec(c))); len(ch) > 0 {
		t.Errorf("round trip changed %v\n%s", ch, js)
	}
	if _, err := DecodeAppliedSpec("web", "{not json"); err == nil || !strings.Contains(err.Error(), "container web") {
		t.Errorf("bad json: err = %v", err)
	}
}

// TestSpecFieldsCoverContainerSpec keeps the replacement reasons complete: a
// field added to ContainerSpec must be named in specFields.
func TestSpecFieldsCoverContainerSpec(t *testing.T) {
	named := map[string]bool{}
	for _, f := range specFields {
		named[f.path] = true
	}
	typ := reflect.TypeOf(manifests.ContainerSpec{})
	for i := range typ.NumField() {
		tag, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		if notReplacing[tag] {
			continue
		}
		if !named["spec."+tag] {
			t.Errorf("ContainerSpec.%s (spec.%s) is missing from specFields", typ.Field(i).Name, tag)
		}
	}
	if len(specFields) != typ.NumField()-len(notReplacing) {
		t.Errorf("specFields has %d entries for %d fields", len(specFields), typ.NumField()-len(notReplacing))
	}
}

// fill sets every settable part of v to a non-zero value.
func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("x")
	case reflect.Int:
		v.SetInt(7)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(k)
		fill(e)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fill(s.Index(0))
		v.Set(s)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(p.Elem())
		v.Set(p)
	case reflect.Struct:
		for i := range v.NumField() {
			fill(v.Field(i))
		}
	}
}

// TestSpecHashCoversEveryField fills each field of ContainerSpec (and each
// field of its nested structs) alone and checks that the hash moves: a field
// added to the API cannot escape the hash.
func TestSpecHashCoversEveryField(t *testing.T) {
	empty := specSum("web", manifests.ContainerSpec{}, "id1")
	typ := reflect.TypeOf(manifests.ContainerSpec{})
	for i := range typ.NumField() {
		f := typ.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		var s manifests.ContainerSpec
		fill(reflect.ValueOf(&s).Elem().Field(i))
		if notReplacing[tag] {
			if specSum("web", s, "id1") != empty {
				t.Errorf("ContainerSpec.%s is hashed: changing it would replace the container", f.Name)
			}
			continue
		}
		if specSum("web", s, "id1") == empty {
			t.Errorf("ContainerSpec.%s is not hashed", f.Name)
		}
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() != reflect.Struct {
			continue
		}
		for j := range ft.NumField() {
			var s, base manifests.ContainerSpec
			outer := reflect.ValueOf(&s).Elem().Field(i)
			if outer.Kind() == reflect.Pointer {
				outer.Set(reflect.New(ft))
				reflect.ValueOf(&base).Elem().Field(i).Set(reflect.New(ft))
				outer = outer.Elem()
			}
			fill(outer.Field(j))
			if specSum("web", s, "id1") == specSum("web", base, "id1") {
				t.Errorf("ContainerSpec.%s.%s is not hashed", f.Name, ft.Field(j).Name)
			}
		}
	}
}
