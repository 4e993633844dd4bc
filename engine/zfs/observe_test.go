package zfs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gozfs "github.com/mistifyio/go-zfs/v4"

	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
	"github.com/zocker-reconcile/zocker-reconcile/image"
)

// countingRunner answers every command with canned output and counts them.
type countingRunner struct {
	out   []byte
	n     atomic.Int64
	argvs [][]string
}

func (c *countingRunner) Run(_ context.Context, cmd runner.Cmd) ([]byte, error) {
	c.n.Add(1)
	c.argvs = append(c.argvs, cmd.Argv)
	return c.out, nil
}

// cannedState writes what `zfs get -H -p -r -o name,property,value,source all
// ROOT` prints for a tree with one image, a tag, n containers cloned from it
// and one volume (about 15 lines per dataset, like the real output's shape).
func cannedState(root string, n int) []byte {
	var b strings.Builder
	id := strings.Repeat("ab", 32)
	ds := func(name, typ, origin string, own map[string]string, inherited map[string]string) {
		fmt.Fprintf(&b, "%s\ttype\t%s\t-\n%s\tcreation\t1795836118\t-\n%s\tused\t4096\t-\n%s\treferenced\t1024\t-\n", name, typ, name, name, name)
		fmt.Fprintf(&b, "%s\tquota\t0\tdefault\n%s\tmountpoint\t/%s\tdefault\n%s\torigin\t%s\t-\n", name, name, name, name, origin)
		for _, p := range []string{"compression", "atime", "readonly", "exec", "setuid", "checksum"} {
			fmt.Fprintf(&b, "%s\t%s\toff\tdefault\n", name, p)
		}
		for k, v := range own {
			fmt.Fprintf(&b, "%s\t%s\t%s\tlocal\n", name, k, v)
		}
		for k, v := range inherited {
			fmt.Fprintf(&b, "%s\t%s\t%s\tinherited from %s\n", name, k, v, root)
		}
	}
	rootMarks := map[string]string{PropManaged: "true", PropKind: KindRoot}
	ds(root, "filesystem", "-", rootMarks, nil)
	inh := map[string]string{PropManaged: "true", PropKind: KindRoot}
	for _, d := range []string{"images", "containers", "volumes", "tmp"} {
		own := map[string]string{PropManaged: "true", PropKind: KindDir, PropName: d}
		if d == "images" {
			own[PropTagPrefix+"base"] = id
		}
		ds(root+"/"+d, "filesystem", "-", own, nil)
	}
	// The image inherits the tag from ROOT/images: it must not count as its own.
	ds(root+"/images/"+id, "filesystem", "-", map[string]string{PropManaged: "true", PropKind: KindImage, PropConfig: `{"cmd":["/bin/sh"]}`},
		map[string]string{PropTagPrefix + "base": id})
	ds(root+"/images/"+id+"@image", "snapshot", "-", nil, nil)
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("c%d", i)
		ds(root+"/containers/"+name, "filesystem", root+"/images/"+id+"@image",
			map[string]string{PropManaged: "true", PropKind: KindContainer, PropName: name, PropImage: id, PropSpecHash: "h", "zocker:ip": "127.0.1.2"}, nil)
	}
	ds(root+"/volumes/data", "filesystem", "-", map[string]string{PropManaged: "true", PropKind: KindVolume}, nil)
	// Made by hand: it inherits zocker:managed from ROOT, which must not make it ours.
	ds(root+"/containers/byhand", "filesystem", "-", nil, inh)
	return []byte(b.String())
}

func TestObserveIsOneCommand(t *testing.T) {
	for _, n := range []int{1, 200} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			r := &countingRunner{out: cannedState("tank/zocker", n)}
			s := &Store{root: "tank/zocker", r: r, log: slog.New(slog.DiscardHandler)}
			st, err := s.Observe(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if got := r.n.Load(); got != 1 {
				t.Fatalf("Observe ran %d commands, want 1", got)
			}
			want := []string{"zfs", "get", "-H", "-p", "-r", "-o", "name,property,value,source", "all", "tank/zocker"}
			if strings.Join(r.argvs[0][1:], " ") != strings.Join(want[1:], " ") {
				t.Errorf("argv = %q, want %q", r.argvs[0], want)
			}
			if len(st.Containers) != n {
				t.Errorf("%d containers, want %d", len(st.Containers), n)
			}
			if len(st.Images) != 1 || len(st.Volumes) != 1 {
				t.Fatalf("images %d volumes %d, want 1 and 1", len(st.Images), len(st.Volumes))
			}
			c := st.Containers[0]
			if c.ImageID != strings.Repeat("ab", 32) || c.SpecHash != "h" || c.Props["zocker:ip"] != "127.0.1.2" || c.Created.Unix() != 1795836118 || c.Used != 4096 {
				t.Errorf("container = %+v", c)
			}
			if !strings.HasSuffix(c.Origin, "@image") {
				t.Errorf("origin = %q", c.Origin)
			}
		})
	}
}

func TestObserveIgnoresInheritedProperties(t *testing.T) {
	s := &Store{root: "tank/zocker", r: &countingRunner{out: cannedState("tank/zocker", 1)}, log: slog.New(slog.DiscardHandler)}
	st, err := s.Observe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	im := st.Images[0]
	if _, ok := im.Props[PropTagPrefix+"base"]; ok {
		t.Errorf("image carries the tag inherited from ROOT/images as its own: %v", im.Props)
	}
	if st.Tags["base"] != im.ID {
		t.Errorf("tags = %v, want base -> %s", st.Tags, im.ID)
	}
	if len(st.Foreign) != 1 || st.Foreign[0] != "tank/zocker/containers/byhand" {
		t.Errorf("foreign = %v: a dataset inheriting zocker:managed is not ours", st.Foreign)
	}
	if im.Config.Cmd[0] != "/bin/sh" {
		t.Errorf("config = %+v", im.Config)
	}
}

func TestResolve(t *testing.T) {
	id := strings.Repeat("ab", 32)
	st := &State{Images: []Image{{ID: id}}, Tags: map[string]string{"base": id}}
	for _, ref := range []string{"base", id, id[:12]} {
		if got, err := st.Resolve(ref); err != nil || got != id {
			t.Errorf("Resolve(%q) = %q, %v", ref, got, err)
		}
	}
	for _, ref := range []string{"nope", strings.Repeat("cd", 32), "abab"} {
		if _, err := st.Resolve(ref); !errors.Is(err, ErrNotFound) {
			t.Errorf("Resolve(%q) err = %v, want ErrNotFound", ref, err)
		}
	}
}

func TestValidation(t *testing.T) {
	for _, bad := range []string{"", "Web", "a_b", "x;rm -rf /", "../x", "-a", "a-", strings.Repeat("a", 64)} {
		if image.ValidName("container", bad) == nil {
			t.Errorf("name %q accepted", bad)
		}
	}
	if image.ValidName("container", strings.Repeat("a", 63)) != nil || image.ValidName("tag", "web-1") != nil {
		t.Error("valid names refused")
	}
	if image.ValidID(strings.Repeat("A", 64)) == nil || image.ValidID("abc") == nil || image.ValidID(strings.Repeat("0", 64)) != nil {
		t.Error("ID validation wrong")
	}
	if checkProps(map[string]string{"quota": "1"}) == nil || checkProps(map[string]string{"zocker:x": "a\nb"}) == nil || checkProps(map[string]string{"zocker:ip": "1.2.3.4"}) != nil {
		t.Error("property validation wrong")
	}
}

func TestClassifyNotFound(t *testing.T) {
	err := classify(&runner.CommandError{Argv: []string{"zfs", "get"}, Stderr: "cannot open 'x/y': dataset does not exist\n", Err: errors.New("exit status 1")})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	var ce *runner.CommandError
	if !errors.As(err, &ce) {
		t.Error("the command error must stay reachable")
	}
	if errors.Is(classify(errors.New("other")), ErrNotFound) {
		t.Error("unrelated error classified as not found")
	}
}

func TestGCPlanOrder(t *testing.T) {
	root := "tank/zocker"
	id := func(c string) string { return strings.Repeat(c, 64) }
	snap := func(i string) string { return root + "/images/" + i + "@image" }
	st := &State{
		Tags: map[string]string{"tagged": id("1")},
		Images: []Image{
			{ID: id("1")}, // tagged
			{ID: id("2")}, // parent of 3 only
			{ID: id("3"), Parent: id("2"), Dataset: Dataset{Origin: snap(id("2"))}}, // unreferenced leaf
			{ID: id("4")},                  // used by a container
			{ID: id("5")},                  // kept (declared)
			{ID: id("6"), Parent: id("5")}, // child of a kept one, unreferenced
		},
		Containers: []Container{{ContainerName: "web", ImageID: id("4"), Dataset: Dataset{Origin: snap(id("4"))}}},
	}
	s := &Store{root: root, log: slog.New(slog.DiscardHandler)}
	got, err := s.gcPlan(context.Background(), st, func(i string) bool { return i == id("5") }, true)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{id("3"), id("6"), id("2")}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("gc order = %v, want %v (children before parents)", got, want)
	}
	if c, _ := st.users(id("4"), root+"/images"); len(c) != 1 || c[0] != "web" {
		t.Errorf("users of image 4 = %v", c)
	}
}

// BenchmarkObserveCanned measures parsing and classifying one observation of
// 10, 100 and 1,000 datasets (canned output: the command itself is not run).
func BenchmarkObserveCanned(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			r := &countingRunner{out: cannedState("tank/zocker", n)}
			s := &Store{root: "tank/zocker", r: r, log: slog.New(slog.DiscardHandler)}
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := s.Observe(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(r.n.Load())/float64(b.N), "commands/op")
		})
	}
}

func TestRetryBusy(t *testing.T) {
	var slept int
	s := &Store{log: slog.New(slog.DiscardHandler), sleep: func(time.Duration) { slept++ }}
	calls := 0
	busy := &gozfs.Error{Err: errors.New("exit status 1"), Stderr: "cannot destroy 'p/x': dataset is busy\n"}
	err := s.retryBusy(context.Background(), "destroy", "p/x", func() error {
		calls++
		if calls < 3 {
			return busy
		}
		return nil
	})
	if err != nil || calls != 3 || slept != 2 {
		t.Errorf("err=%v calls=%d slept=%d, want nil 3 2", err, calls, slept)
	}
	other := errors.New("permission denied")
	calls = 0
	if err := s.retryBusy(context.Background(), "destroy", "p/x", func() error { calls++; return other }); err != other || calls != 1 {
		t.Errorf("a non-busy error must not be retried: %v after %d calls", err, calls)
	}
	old := BusyTimeout
	BusyTimeout = 0
	defer func() { BusyTimeout = old }()
	if err := s.retryBusy(context.Background(), "destroy", "p/x", func() error { return busy }); err != busy {
		t.Errorf("after the budget the busy error is returned: %v", err)
	}
}
