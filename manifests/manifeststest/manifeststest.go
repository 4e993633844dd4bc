// Package manifeststest builds manifest sets for the tests of the packages
// that plan and converge on them: a manifest root /m, one file per object
// (/m/<name>.yaml), and Images imported from a tarball by default.
package manifeststest

import "github.com/zocker-reconcile/zocker-reconcile/manifests"

// Root is the manifest root of the sets NewSet makes.
const Root = "/m"

// Image is an Image imported from /cache/<name>.txz, changed by mut.
func Image(name string, mut ...func(*manifests.Image)) *manifests.Image {
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

// Container is a Container of image base running /bin/httpd -f, changed by
// mut.
func Container(name string, mut ...func(*manifests.Container)) *manifests.Container {
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

// Volume is a Volume with no quota, changed by mut.
func Volume(name string, mut ...func(*manifests.Volume)) *manifests.Volume {
	v := &manifests.Volume{
		TypeMeta: manifests.TypeMeta{APIVersion: manifests.APIVersion, Kind: manifests.KindVolume},
		Metadata: manifests.ObjectMeta{Name: name},
	}
	for _, m := range mut {
		m(v)
	}
	return v
}

// NewSet declares objs (*manifests.Image, *Container or *Volume), each in
// its own file /m/<name>.yaml, at revision rev1.
func NewSet(objs ...any) *manifests.Set {
	s := &manifests.Set{
		Images:     map[string]*manifests.Image{},
		Containers: map[string]*manifests.Container{},
		Volumes:    map[string]*manifests.Volume{},
		Sources:    map[string]manifests.Source{},
		Root:       Root, Resolved: Root, Revision: "rev1",
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
		file := Root + "/" + name + ".yaml"
		key := kind + "/" + name
		s.Sources[key] = manifests.Source{File: file, Line: 1}
		s.Files = append(s.Files, manifests.FileResult{Path: file, Objects: []string{key}})
	}
	return s
}

// FailFile marks /m/<name>.yaml as failed, as the loader does: its objects
// (declared, as Kind/name keys) leave the set.
func FailFile(s *manifests.Set, name string, declared ...string) *manifests.Set {
	file := Root + "/" + name + ".yaml"
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
