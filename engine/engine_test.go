package engine

import (
	"reflect"
	"testing"

	"github.com/zocker-reconcile/zocker-reconcile/engine/jail"
	"github.com/zocker-reconcile/zocker-reconcile/engine/supervisor"
	"github.com/zocker-reconcile/zocker-reconcile/engine/zfs"
	"github.com/zocker-reconcile/zocker-reconcile/reconcile"
)

func TestConvert(t *testing.T) {
	const id1, id2 = "1111111111111111111111111111111111111111111111111111111111111111", "2222222222222222222222222222222222222222222222222222222222222222"
	st := &zfs.State{
		Tags: map[string]string{"base": id1, "old": id1, "app": id2, "stale": "3333333333333333333333333333333333333333333333333333333333333333"},
		Images: []zfs.Image{
			{ID: id1, Dataset: zfs.Dataset{Props: map[string]string{zfs.PropSource: "sha256:abc"}}},
			{ID: id2, Config: zfs.Config{Inputs: "build:xyz"}, Dataset: zfs.Dataset{Props: map[string]string{zfs.PropSource: "ignored"}}},
		},
		Containers: []zfs.Container{
			{ContainerName: "web", ImageID: id1, Manifest: "web.yaml", SpecHash: "h1", Spec: "{}",
				Dataset: zfs.Dataset{Props: map[string]string{zfs.PropManaged: "true"}}},
			{ContainerName: "exited", ImageID: id1, Dataset: zfs.Dataset{Props: map[string]string{zfs.PropManaged: "true"}}},
			{ContainerName: "dead", ImageID: id1, Dataset: zfs.Dataset{Props: map[string]string{zfs.PropManaged: "true"}}},
		},
		Volumes: []zfs.Volume{{VolumeName: "data", Dataset: zfs.Dataset{Quota: 1 << 20, Props: map[string]string{
			zfs.PropManaged: "true", zfs.PropManifest: "v.yaml", PropReclaimPolicy: "Delete", "zocker:prop.compression": "lz4"}}}},
		Foreign: []string{"tank/zocker/containers/handmade"},
	}
	sups := []supervisor.Status{
		{Name: "web", Alive: true, State: supervisor.StateRunning, Health: supervisor.Health{Status: supervisor.HealthHealthy}},
		{Name: "exited", Alive: true, State: supervisor.StateExited},
		{Name: "dead", Alive: false, State: supervisor.StateRunning},
	}
	jails := []jail.Info{{Name: "web", JID: 3}, {Name: "bastille1", JID: 7}}
	o := Convert(st, sups, jails)

	if got := o.Images[id1]; got.Inputs != "sha256:abc" || !reflect.DeepEqual(got.Tags, []string{"base", "old"}) {
		t.Errorf("image 1: %+v", got)
	}
	if _, ok := o.Tags["stale"]; ok {
		t.Errorf("a tag of a missing image is observed: %v", o.Tags)
	}
	if got := o.Images[id2]; got.Inputs != "build:xyz" {
		t.Errorf("image 2 inputs %q: the recorded inputs win over the tarball source", got.Inputs)
	}
	web := o.Containers["web"]
	if !web.Managed || !web.Running || web.Health != reconcile.HealthHealthy || web.SpecHash != "h1" || web.Manifest != "web.yaml" {
		t.Errorf("web: %+v", web)
	}
	if !o.Containers["exited"].Running {
		t.Errorf("a live supervisor whose command exited under its policy owns the container: it must not be started again")
	}
	if o.Containers["dead"].Running {
		t.Errorf("a dead supervisor is not running")
	}
	v := o.Volumes["data"]
	if !v.Managed || v.Quota != 1<<20 || v.ReclaimPolicy != "Delete" || v.Properties["compression"] != "lz4" {
		t.Errorf("volume: %+v", v)
	}
	if o.Foreign["handmade"] == "" || o.Foreign["bastille1"] != "jail 7" {
		t.Errorf("foreign: %+v", o.Foreign)
	}
	if _, ok := o.Foreign["web"]; ok {
		t.Errorf("our own jail reported as foreign")
	}
}
