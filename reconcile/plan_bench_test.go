package reconcile

import (
	"fmt"
	"testing"

	"github.com/zocker-reconcile/zocker-reconcile/manifests"
)

// bench1000 is 1,000 declared containers, all applied and running, with
// three changes: one edited command, one stopped by hand, one removed.
func bench1000(tb testing.TB) (Desired, Observed) {
	objs := []any{img("base"), volume("shared")}
	var observedObjs []any
	for i := range 1000 {
		name := fmt.Sprintf("c%04d", i)
		c := container(name, func(c *manifests.Container) {
			c.Spec.Env = map[string]string{"INDEX": fmt.Sprint(i), "TZ": "UTC"}
			c.Spec.Volumes = []manifests.VolumeMount{{Volume: "shared", Path: "/shared"}}
			c.Spec.Resources = manifests.Resources{Memory: "256M", MaxProcesses: 64}
			if i > 0 && i%10 == 0 {
				c.Spec.DependsOn = []string{fmt.Sprintf("c%04d", i-1)}
			}
		})
		oc := applied(tb, c, "id1")
		switch i {
		case 1:
			c.Spec.Command.Argv = []string{"/bin/httpd", "-f", "-v"}
		case 2:
			oc.Running = false
		}
		if i != 3 {
			objs = append(objs, c)
		}
		observedObjs = append(observedObjs, oc)
	}
	observedObjs = append(observedObjs, appliedVolume(tb, volume("shared")))
	return desired(newSet(objs...)), observed(observedObjs...)
}

func TestBench1000Plan(t *testing.T) {
	d, o := bench1000(t)
	got := summary(Diff(d, o, Options{}))
	want := []string{
		"prune container/c0003: removed from manifests",
		"replace container/c0001: spec.command changed",
		"start container/c0002: not running",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("plan = %q", got)
	}
}

// BenchmarkPlan1000 is the ARCHITECTURE target: diff + plan for 1,000
// containers in under 5 ms.
func BenchmarkPlan1000(b *testing.B) {
	d, o := bench1000(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		p := Diff(d, o, Options{})
		if len(p.Actions) != 3 {
			b.Fatalf("actions: %d", len(p.Actions))
		}
	}
}
