package service

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/manifests"
)

func ociSet(rev string, images map[string]*manifests.OCISource) *manifests.Set {
	set := &manifests.Set{Revision: rev, Images: map[string]*manifests.Image{}}
	for name, o := range images {
		set.Images[name] = &manifests.Image{Metadata: manifests.ObjectMeta{Name: name}, Spec: manifests.ImageSpec{OCI: o}}
	}
	return set
}

// TestRemotesOCI: a tag reference is asked at most once per interval and
// again on a new revision; a digest reference once for good; an
// unreachable registry is an error for that image only.
func TestRemotesOCI(t *testing.T) {
	calls := map[string]int{}
	down := false
	r := &Remotes{Interval: time.Hour, ResolveOCI: func(ctx context.Context, o *manifests.OCISource) (string, error) {
		calls[o.Ref]++
		if down && o.Ref == "127.0.0.1:5000/a:v1" {
			return "", errors.New("connection refused")
		}
		return "id-" + o.Ref[len(o.Ref)-2:], nil
	}}
	digest := "127.0.0.1:5000/b@sha256:" + strings.Repeat("ab", 32)
	images := map[string]*manifests.OCISource{
		"a": {Ref: "127.0.0.1:5000/a:v1"},
		"b": {Ref: digest},
	}
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		ids, errs := r.Compute(ctx, ociSet("rev1", images))
		if len(errs) != 0 || ids["a"] != "id-v1" || ids["b"] != "id-"+digest[len(digest)-2:] {
			t.Fatalf("pass %d: ids %v errs %v", i, ids, errs)
		}
	}
	if calls["127.0.0.1:5000/a:v1"] != 1 || calls[digest] != 1 {
		t.Errorf("within the interval: calls %v, want one each", calls)
	}
	down = true
	ids, errs := r.Compute(ctx, ociSet("rev2", images))
	if calls["127.0.0.1:5000/a:v1"] != 2 || calls[digest] != 1 {
		t.Errorf("new revision: calls %v, want the tag asked again and the digest not", calls)
	}
	if errs["a"] == nil || ids["a"] != "" || ids["b"] == "" {
		t.Errorf("unreachable registry: ids %v errs %v; want an error for a only", ids, errs)
	}
}
