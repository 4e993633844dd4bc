package reconcile

import (
	"testing"

	"github.com/zocker-reconcile/zocker-reconcile/manifests"
	"github.com/zocker-reconcile/zocker-reconcile/manifests/manifeststest"
)

// World builders for the plan tables (manifeststest): a manifest root /m,
// one file per object (/m/<name>.yaml), an image "base" imported from a
// tarball whose inputs digest is "in1" and whose ID is "id1".

const testRoot = manifeststest.Root

var (
	img       = manifeststest.Image
	container = manifeststest.Container
	volume    = manifeststest.Volume
	newSet    = manifeststest.NewSet
	failFile  = manifeststest.FailFile
)

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
	q, err := quota(v)
	if err != nil {
		t.Fatal(err)
	}
	ov := ObservedVolume{Name: v.Metadata.Name, Managed: true, Manifest: v.Metadata.Name + ".yaml",
		Quota: q, Properties: v.Spec.Properties, ReclaimPolicy: manifests.ReclaimPolicyOrDefault(v.Spec.ReclaimPolicy)}
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
