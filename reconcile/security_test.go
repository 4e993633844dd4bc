package reconcile

import (
	"strings"
	"testing"

	"github.com/zocker-reconcile/zocker-reconcile/manifests"
)

// TestSecurityM3NoEnvValueInProperties: zocker:spec (AppliedSpec) and
// zocker:spec-hash are world-readable ZFS properties; 67d2aef stored env
// values in the first and a plain sha256 over them in the second. Now
// neither holds the value nor an unkeyed function of it.
func TestSecurityM3NoEnvValueInProperties(t *testing.T) {
	t.Cleanup(func() { SetEnvKey(nil) })
	SetEnvKey([]byte("host key one"))
	const secret = "hunter2-SECRET"
	c := container("db", func(c *manifests.Container) {
		c.Spec.Env = map[string]string{"POSTGRES_PASSWORD": secret, "TZ": "UTC"}
	})
	js, err := AppliedSpec(c)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(js, secret) || strings.Contains(js, "UTC") {
		t.Fatalf("zocker:spec holds an env value: %s", js)
	}
	back, err := DecodeAppliedSpec("db", js)
	if err != nil {
		t.Fatal(err)
	}
	if !IsEnvDigest(back.Spec.Env["POSTGRES_PASSWORD"]) || !hasEnvDigests(back.Spec) {
		t.Fatalf("applied env %v", back.Spec.Env)
	}
	h1 := SpecHash(c, "id")
	// A change of value still replaces the container.
	c2 := container("db", func(c *manifests.Container) {
		c.Spec.Env = map[string]string{"POSTGRES_PASSWORD": "other", "TZ": "UTC"}
	})
	if SpecHash(c2, "id") == h1 {
		t.Fatal("an env value change does not change the spec hash")
	}
	// The hash is keyed: without the host key a guess cannot be checked.
	SetEnvKey([]byte("host key two"))
	if SpecHash(c, "id") == h1 {
		t.Fatal("the spec hash does not depend on the host key")
	}
	SetEnvKey([]byte("host key one"))
	if SpecHash(c, "id") != h1 {
		t.Fatal("the spec hash is not stable under one key")
	}
	// The reason of a replacement names the variable, never the value.
	oc := ObservedContainer{Name: "db", Spec: js, ImageID: "id"}
	if r := replaceReason(oc, c2, NormalizeSpec(c2), "id"); !strings.Contains(r, "spec.env") || strings.Contains(r, "other") {
		t.Fatalf("replace reason %q", r)
	}
	if r := replaceReason(oc, c, NormalizeSpec(c), "id"); strings.Contains(r, "spec.env") {
		t.Fatalf("unchanged env reported as changed: %q", r)
	}
}

// TestSecurityM8MaxPruneCountsVolumes: six reclaimPolicy Delete volumes whose
// manifests disappeared are six data destructions; 67d2aef counted only
// containers against --max-prune and destroyed them all in one pass.
func TestSecurityM8MaxPruneCountsVolumes(t *testing.T) {
	var objs []any
	for _, n := range []string{"v1", "v2", "v3", "v4", "v5", "v6"} {
		objs = append(objs, ObservedVolume{Name: n, Managed: true, Manifest: n + ".yaml", ReclaimPolicy: manifests.ReclaimDelete})
	}
	objs = append(objs, applied(t, web(), "id1"))
	p := Diff(desired(newSet(web())), observed(objs...), Options{})
	for _, a := range p.Actions {
		if a.Op == OpDestroyVolume {
			t.Errorf("volume destroyed past --max-prune: %s", a)
		}
	}
	if len(p.Blocked) != 6 || p.Blocked[0].Reason != BlockedMaxPrune || !strings.Contains(p.Blocked[0].Message, "6 volumes destroyed") {
		t.Fatalf("blocked: %+v", p.Blocked)
	}
	// Within the limit they go.
	p = Diff(desired(newSet(web())), observed(objs...), Options{MaxPrune: 6})
	if n := len(p.Actions); n != 6 {
		t.Fatalf("with --max-prune 6: %v", summary(p))
	}
}
