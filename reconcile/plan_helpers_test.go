package reconcile

import (
	"testing"

	"github.com/zocker-reconcile/zocker-reconcile/manifests"
)

// World builders for the plan tables: a manifest root /m, one file per
// object (/m/<name>.yaml), an image "base" imported from a tarball whose
// inputs digest is "in1" and whose ID is "id1".

const testRoot = "/m"

func image(name string, mut ...func(*manifests.Image)) *manifests.Image {
	img := &manifests.Image{
		TypeMeta: manifests.TypeMeta{APIVersion: manifests.APIVersion, Kind: manifests.KindImage},
		Metadata: manifests.ObjectMeta{Name: name},
		Spec:     manifests.ImageSpec{Tarball: &manifests.TarballSource{Path: "/cache/" + name + ".txz"}},
	}
	for _, m := range mut {
		m(img)
	}
	return img
}

func container(name string, mut ...func(*manifests.Container)) *manifests.Container {
	c := &manifests.Container{
		TypeMeta: manifests.TypeMeta{APIVersion: manifests.APIVersion, Kind: manifests.KindContainer},
		Metadata: manifests.ObjectMeta{Name: name},
		Spec: manifests.ContainerSpec{
			Image:   "base",
			Command: manifests.Command{Argv: []string{"/bin/httpd", "-f"}},
		},
	}
	for _, m := range mut {
		m(c)
	}
	return c
}

func volume(name string, mut ...func(*manifests.Volume)) *manifests.Volume {
	v := &manifests.Volume{
		TypeMeta: manifests.TypeMeta{APIVersion: manifests.APIVersion, Kind: manifests.KindVolume},
		Metadata: manifests.ObjectMeta{Name: name},
	}
	for _, m := range mut {
		m(v)
	}
	return v
}

// newSet declares objs, each in its own file /m/<name>.yaml.
func newSet(objs ...any) *manifests.Set {
	s := &manifests.Set{
		Images:     map[string]*manifests.Image{},
		Containers: map[string]*manifests.Container{},
		Volumes:    map[string]*manifests.Volume{},
		Sources:    map[string]manifests.Source{},
		Root:       testRoot, Resolved: testRoot, Revision: "rev1",
	}
	for _, o := range objs {
		var kind, name string
		switch o := o.(type) {
		case *manifests.Image:
			kind, name = manifests.KindImage, o.Metadata.Name
			s.Images[name] = o
		case *manifests.Container:
			kind, name = manifests.KindContainer, o.Metadata.Name
			s.Containers[name] = o
		case *manifests.Volume:
			kind, name = manifests.KindVolume, o.Metadata.Name
			s.Volumes[name] = o
		}
		file := testRoot + "/" + name + ".yaml"
		s.Sources[Key(kind, name)] = manifests.Source{File: file, Line: 1}
		s.Files = append(s.Files, manifests.FileResult{Path: file, Objects: []string{Key(kind, name)}})
	}
	return s
}

// failFile marks /m/<name>.yaml as failed, as the loader does: its objects
// leave the set.
func failFile(s *manifests.Set, name string, declared ...string) *manifests.Set {
	file := testRoot + "/" + name + ".yaml"
	for i, f := range s.Files {
		if f.Path == file {
			s.Files[i] = manifests.FileResult{Path: file, Failed: true, Objects: declared}
			return s
		}
	}
	s.Files = append(s.Files, manifests.FileResult{Path: file, Failed: true, Objects: declared})
	s.Problems = append(s.Problems, manifests.Problem{File: file, Line: 3, Message: "yaml: bad indentation", Severity: manifests.SeverityError})
	return s
}

// desired wraps a set with base's inputs digest.
func desired(s *manifests.Set) Desired {
	return Desired{Set: s, ImageInputs: map[string]string{"base": "in1"}}
}

// observed is a world where image base (id1, inputs in1) exists and the
// given containers and volumes are present.
func observed(objs ...any) Observed {
	o := Observed{
		Images:     map[string]ObservedImage{"id1": {ID: "id1", Tags: []string{"base"}, Inputs: "in1"}},
		Tags:       map[string]string{"base": "id1"},
		Containers: map[string]ObservedContainer{},
		Volumes:    map[string]ObservedVolume{},
		Foreign:    map[string]string{},
	}
	for _, x := range objs {
		switch x := x.(type) {
		case ObservedContainer:
			o.Containers[x.Name] = x
		case ObservedVolume:
			o.Volumes[x.Name] = x
		}
	}
	return o
}

// applied is the observed state of c created from image id and running as
// its state says, declared in /m/<name>.yaml.
func applied(t testing.TB, c *manifests.Container, id string, mut ...func(*ObservedContainer)) ObservedContainer {
	t.Helper()
	spec, err := AppliedSpec(c)
	if err != nil {
		t.Fatal(err)
	}
	oc := ObservedContainer{
		Name: c.Metadata.Name, Managed: true, Manifest: c.Metadata.Name + ".yaml",
		SpecHash: SpecHash(c, id), Spec: spec, ImageID: id, Exists: true,
		Running: NormalizeSpec(c).State == manifests.StateRunning,
	}
	for _, m := range mut {
		m(&oc)
	}
	return oc
}

// appliedVolume is the observed state of v as created.
func appliedVolume(t testing.TB, v *manifests.Volume, mut ...func(*ObservedVolume)) ObservedVolume {
	t.Helper()
	q, err := parseQuantity(v.Spec.Quota)
	if err != nil {
		t.Fatal(err)
	}
	ov := ObservedVolume{Name: v.Metadata.Name, Managed: true, Manifest: v.Metadata.Name + ".yaml",
		Quota: q, Properties: v.Spec.Properties, ReclaimPolicy: reclaimPolicy(v)}
	for _, m := range mut {
		m(&ov)
	}
	return ov
}

// summary lists a plan as short strings: actions in order, then blocked.
func summary(p Plan) []string {
	out := []string{}
	for _, a := range p.Actions {
		out = append(out, a.String())
	}
	for _, b := range p.Blocked {
		out = append(out, b.String())
	}
	return out
}
