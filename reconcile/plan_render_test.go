package reconcile

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/zocker-reconcile/zocker-reconcile/manifests"
)

// mixedPlan has one of each sign.
func mixedPlan(t *testing.T) Plan {
	t.Helper()
	stopped := func(c *manifests.Container) { c.Spec.State = "Stopped" }
	s := newSet(img("base"), web(func(c *manifests.Container) { c.Spec.Command.Argv = []string{"/bin/sh"} }),
		container("new"), container("idle"), container("halt", stopped), volume("data"))
	s.Blocked = []string{"Container/dup"}
	o := observed(applied(t, web(), "id1"), applied(t, container("idle"), "id1", func(oc *ObservedContainer) { oc.Running = false }),
		applied(t, container("halt"), "id1"), applied(t, container("old"), "id1"))
	return Diff(desired(s), o, Options{})
}

func TestRenderText(t *testing.T) {
	var b bytes.Buffer
	if err := RenderText(&b, mixedPlan(t)); err != nil {
		t.Fatal(err)
	}
	want := `+ create volume data: not present
. stop container halt: running, spec.state is Stopped
- prune container old: removed from manifests
> start container idle: not running
+ create container new: not present
~ replace container web: spec.command changed
! hold container dup: declared more than once: neither changed nor pruned until one declaration is removed (duplicate)
Plan: 2 to create, 1 to replace, 0 to update, 1 to start, 1 to stop, 1 to prune, 1 blocked.
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestRenderTextInSync(t *testing.T) {
	var b bytes.Buffer
	p := Diff(desired(newSet(web())), observed(applied(t, web(), "id1")), Options{})
	if err := RenderText(&b, p); err != nil {
		t.Fatal(err)
	}
	if b.String() != "No changes: in sync.\n" {
		t.Errorf("got %q", b.String())
	}
	if p.ExitCode() != 0 || mixedPlan(t).ExitCode() != 2 {
		t.Errorf("exit codes %d, %d; want 0, 2", p.ExitCode(), mixedPlan(t).ExitCode())
	}
}

func TestRenderTextBlockedPrune(t *testing.T) {
	var b bytes.Buffer
	p := Diff(desired(newSet()), observed(applied(t, web(), "id1")), Options{})
	if err := RenderText(&b, p); err != nil {
		t.Fatal(err)
	}
	want := "! prune container web: the manifest directory is empty while managed objects exist: nothing is pruned without --allow-empty (empty-manifests)\n" +
		"Plan: 0 to create, 0 to replace, 0 to update, 0 to start, 0 to stop, 0 to prune, 1 blocked.\n"
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	if p.ExitCode() != 2 {
		t.Errorf("exit code %d, want 2", p.ExitCode())
	}
}

func TestRenderJSON(t *testing.T) {
	var b bytes.Buffer
	if err := RenderJSON(&b, mixedPlan(t)); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Revision string `json:"revision"`
		InSync   bool   `json:"inSync"`
		Summary  map[string]int
		Actions  []map[string]any `json:"actions"`
		Blocked  []map[string]any `json:"blocked"`
	}
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	if doc.Revision != "rev1" || doc.InSync || len(doc.Actions) != 6 || len(doc.Blocked) != 1 {
		t.Fatalf("doc = %+v", doc)
	}
	if doc.Summary["create"] != 2 || doc.Summary["blocked"] != 1 {
		t.Errorf("summary = %v", doc.Summary)
	}
	last := doc.Actions[5]
	for _, k := range []string{"kind", "name", "op", "reason", "imageID", "specHash", "manifest"} {
		if _, ok := last[k]; !ok {
			t.Errorf("action lacks %q: %v", k, last)
		}
	}
	if last["op"] != "replace" || last["name"] != "web" || last["kind"] != "Container" {
		t.Errorf("last action = %v", last)
	}
	if doc.Blocked[0]["reason"] != "duplicate" || doc.Blocked[0]["message"] == "" {
		t.Errorf("blocked = %v", doc.Blocked[0])
	}

	b.Reset()
	if err := RenderJSON(&b, Plan{InSync: true}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"actions": []`) || !strings.Contains(b.String(), `"blocked": []`) {
		t.Errorf("empty lists are not []: %s", b.String())
	}
}

func TestSigns(t *testing.T) {
	for op, want := range map[Op]string{
		OpCreate: "+", OpCreateVolume: "+", OpImport: "+", OpReplace: "~", OpUpdateVolume: "~",
		OpBuild: "~", OpPull: "~", OpPrune: "-", OpDestroyVolume: "-", OpStart: ">", OpStop: ".",
	} {
		if got := op.Sign(); got != want {
			t.Errorf("%s sign %q, want %q", op, got, want)
		}
	}
}
