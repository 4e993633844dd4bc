package zfs

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// TestOpenSharedLaidOutIsOneCommand: a laid-out root is opened (shared)
// with one zfs get of five datasets, whatever the size of the tree, plus one
// read of ROOT/tmp alone (the work of dead processes is removed there).
func TestOpenSharedLaidOutIsOneCommand(t *testing.T) {
	r := &countingRunner{out: cannedState("tank/zocker", 500)}
	if _, err := OpenShared(context.Background(), "tank/zocker", r, nil); err != nil {
		t.Fatal(err)
	}
	if r.n.Load() != 2 || strings.Contains(strings.Join(r.argvs[0], " "), " -r ") {
		t.Fatalf("commands %q, want one non-recursive get, then ROOT/tmp", r.argvs)
	}
	if tmp := strings.Join(r.argvs[1], " "); !strings.HasSuffix(tmp, " tank/zocker/tmp") {
		t.Errorf("second command %q: want a read of tank/zocker/tmp only", tmp)
	}
	want := "tank/zocker tank/zocker/images tank/zocker/containers tank/zocker/volumes tank/zocker/tmp"
	if !strings.HasSuffix(strings.Join(r.argvs[0], " "), want) {
		t.Errorf("argv %q: want the root and its four directories", r.argvs[0])
	}
}

// TestOpenSharedNotLaidOutReadsTheTree: a root without our marks is read
// whole (to refuse a foreign non-empty one).
func TestOpenSharedNotLaidOutReadsTheTree(t *testing.T) {
	out := strings.ReplaceAll(string(cannedState("tank/zocker", 3)), "tank/zocker\tzocker:kind\troot\tlocal\n", "")
	r := &countingRunner{out: []byte(out)}
	_, err := OpenShared(context.Background(), "tank/zocker", r, nil)
	if r.n.Load() < 2 || !strings.Contains(strings.Join(r.argvs[1], " "), " -r ") {
		t.Fatalf("commands %q (err %v), want the targeted get, then the whole tree", r.argvs, err)
	}
}

// TestObserveObjectsIsOneCommand reads a container, its image and a volume
// with one command naming exactly those datasets.
func TestObserveObjectsIsOneCommand(t *testing.T) {
	id := strings.Repeat("ab", 32)
	r := &countingRunner{out: cannedState("tank/zocker", 200)}
	s := &Store{root: "tank/zocker", r: r}
	st, err := s.ObserveObjects(context.Background(), Objects{Containers: []string{"c7"}, Images: []string{id}, Volumes: []string{"data"}})
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("tank/zocker/containers/c7 tank/zocker/images/%s tank/zocker/volumes/data", id)
	if r.n.Load() != 1 || !strings.HasSuffix(strings.Join(r.argvs[0], " "), want) {
		t.Fatalf("commands %q, want one get of %s", r.argvs, want)
	}
	if _, ok := st.Image(id); !ok || len(st.Volumes) != 1 {
		t.Errorf("state: images %v volumes %v", st.Images, st.Volumes)
	}
	if _, err := s.ObserveObjects(context.Background(), Objects{Containers: []string{"../x"}}); err == nil {
		t.Error("a bad name was accepted")
	}
}

func TestContainerValues(t *testing.T) {
	r := &countingRunner{out: cannedState("tank/zocker", 3)}
	s := &Store{root: "tank/zocker", r: r}
	ips, err := s.ContainerValues(context.Background(), "zocker:ip")
	if err != nil {
		t.Fatal(err)
	}
	if len(ips) != 3 || ips["c1"] != "127.0.1.2" || r.n.Load() != 1 {
		t.Errorf("values %v after %d commands", ips, r.n.Load())
	}
	if _, err := s.ContainerValues(context.Background(), "mountpoint"); err == nil {
		t.Error("a non-zocker property was accepted")
	}
}
