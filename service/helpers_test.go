package service

import (
	"testing"

	"github.com/zocker-reconcile/zocker-reconcile/manifests"
	"github.com/zocker-reconcile/zocker-reconcile/manifests/manifeststest"
	"github.com/zocker-reconcile/zocker-reconcile/reconcile"
)

// The world of the tests: manifeststest's sets, and an image "base" whose
// inputs digest is "in1" and whose ID is "id1".

var (
	image     = manifeststest.Image
	container = manifeststest.Container
	newSet    = manifeststest.NewSet
	failFile  = manifeststest.FailFile
)

func web(mut ...func(*manifests.Container)) *manifests.Container { return container("web", mut...) }

// desired wraps a set with base's inputs digest.
func desired(s *manifests.Set) reconcile.Desired {
	return reconcile.Desired{Set: s, ImageInputs: map[string]string{"base": "in1"}}
}

// observed is a world where image base exists and the given containers are
// present.
func observed(cs ...reconcile.ObservedContainer) reconcile.Observed {
	o := reconcile.Observed{
		Images:     map[string]reconcile.ObservedImage{"id1": {ID: "id1", Tags: []string{"base"}, Inputs: "in1"}},
		Tags:       map[string]string{"base": "id1"},
		Containers: map[string]reconcile.ObservedContainer{},
		Volumes:    map[string]reconcile.ObservedVolume{},
		Foreign:    map[string]string{},
	}
	for _, c := range cs {
		o.Containers[c.Name] = c
	}
	return o
}

// applied is the observed state of c created from image id and running as
// its state says, declared in /m/<name>.yaml.
func applied(t testing.TB, c *manifests.Container, id string, mut ...func(*reconcile.ObservedContainer)) reconcile.ObservedContainer {
	t.Helper()
	spec, err := reconcile.AppliedSpec(c)
	if err != nil {
		t.Fatal(err)
	}
	oc := reconcile.ObservedContainer{
		Name: c.Metadata.Name, Managed: true, Manifest: c.Metadata.Name + ".yaml",
		SpecHash: reconcile.SpecHash(c, id), Spec: spec, ImageID: id, Exists: true,
		Running: reconcile.NormalizeSpec(c).State == manifests.StateRunning,
	}
	for _, m := range mut {
		m(&oc)
	}
	return oc
}
