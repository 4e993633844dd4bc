package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/service"
)

// imageID returns the ID the tag points to under the host's root, from
// `inspect TAG` ("" with the reason when it does not resolve). Not from
// `images`: that command opens the store read-write, and opening it removes
// every work dataset under ROOT/tmp, a running serve's build included.
func (h *host) imageID(tag string) (string, string) {
	h.t.Helper()
	res := h.run("inspect", tag)
	if res.code != 0 {
		return "", fmt.Sprintf("inspect %s: exit %d: %s", tag, res.code, strings.TrimSpace(res.stderr))
	}
	var rec struct {
		Kind    string `json:"kind"`
		Dataset struct {
			ID string `json:"ID"`
		} `json:"dataset"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &rec); err != nil {
		return "", fmt.Sprintf("inspect %s: %v: %s", tag, err, res.stdout)
	}
	if rec.Kind != "Image" || rec.Dataset.ID == "" {
		return "", fmt.Sprintf("inspect %s is not an image with an ID: %s", tag, res.stdout)
	}
	return rec.Dataset.ID, ""
}

// waitLogQuiet reports whether serve logs a line after mark holding every
// one of subs within timeout, without failing the test.
func waitLogQuiet(s *server, mark int, timeout time.Duration, subs ...string) bool {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		ls := s.lines()
		for _, l := range ls[min(mark, len(ls)):] {
			ok := true
			for _, sub := range subs {
				ok = ok && strings.Contains(l, sub)
			}
			if ok {
				return true
			}
		}
	}
	return false
}

// restarts returns the restart count ps reports for a container (-1 when unknown).
func (h *host) restarts(name string) int {
	res := h.run("ps", "-a", "-o", "json")
	var rows []struct {
		Name     string `json:"name"`
		Restarts int    `json:"restarts"`
	}
	if json.Unmarshal([]byte(res.stdout), &rows) != nil {
		return -1
	}
	for _, r := range rows {
		if r.Name == name {
			return r.Restarts
		}
	}
	return -1
}

// objectStatus returns the status of kind/name from a status document.
func objectStatus(st service.Status, kind, name string) (service.ObjectStatus, bool) {
	i := slices.IndexFunc(st.Objects, func(o service.ObjectStatus) bool { return o.Kind == kind && o.Name == name })
	if i < 0 {
		return service.ObjectStatus{}, false
	}
	return st.Objects[i], true
}

// statusJSON runs `status -o json` against the host's serve.
func (h *host) statusJSON() (service.Status, string) {
	h.t.Helper()
	var st service.Status
	res := h.run("status", "-o", "json", "--listen", h.srv.addr)
	if err := json.Unmarshal([]byte(res.stdout), &st); err != nil {
		return st, fmt.Sprintf("status -o json: exit %d: %v: %s %s", res.code, err, res.stdout, res.stderr)
	}
	return st, ""
}

// TestServeRebuildOnZockerfileChange declares an image built from a
// Zockerfile in the watched directory and a container using it: editing the
// Zockerfile rebuilds the image and replaces the container; a Zockerfile
// whose RUN fails keeps the old image and container and stalls the Image
// with the failing line; fixing it converges again.
func TestServeRebuildOnZockerfileChange(t *testing.T) {
	t.Parallel()
	h := newHost(t)
	ctxDir := mkdir(t, h.man, "hello")
	writeFile(t, filepath.Join(ctxDir, "index.html"), "hello 1\n")
	zockerfile := func(lines ...string) {
		t.Helper()
		all := append([]string{"FROM busybox", "COPY index.html /srv/"}, lines...)
		all = append(all, `CMD ["/bin/sleep", "100061"]`)
		writeFile(t, filepath.Join(ctxDir, "Zockerfile"), strings.Join(all, "\n")+"\n")
	}
	zockerfile()
	h.write("busybox.yaml", fmt.Sprintf(`apiVersion: zocker/v1
kind: Image
metadata:
  name: busybox
spec:
  tarball:
    path: %s
`, h.tarball))
	h.write("hello-image.yaml", `apiVersion: zocker/v1
kind: Image
metadata:
  name: hello
spec:
  build:
    context: ./hello
`)
	// The command is the container's own, so that only the image change
	// can make serve replace it.
	argv := []string{"/bin/sleep", "100062"}
	h.write("web.yaml", strings.Replace(containerYAML("web", argv...), "image: bb", "image: hello", 1))

	srv := h.start()
	first := h.waitRunning("web", argv, 2*converge)
	id1, why := h.imageID("hello")
	if id1 == "" {
		t.Fatal(why)
	}
	t.Logf("first build: image %s, pid %d", id1[:12], first.PID)

	// A Zockerfile edit: a new image for tag hello, a new container. The
	// edit itself must trigger a pass (the periodic resync, every 10 s
	// here, would hide a watcher that ignores build contexts).
	mark := srv.mark()
	zockerfile("ENV X=1")
	if !waitLogQuiet(srv, mark, 5*time.Second, `msg="pass planned"`, "trigger=watch") {
		t.Errorf("editing hello/Zockerfile in the watched directory triggered no pass within 5s (only the periodic resync rebuilds)")
	}
	var id2 string
	poll(t, 2*converge, "tag hello to move to a new image", func() (bool, string) {
		id, why := h.imageID("hello")
		if id == "" || id == id1 {
			return false, fmt.Sprintf("hello is %q %s", id, why)
		}
		id2 = id
		return true, ""
	})
	var second psRow
	poll(t, converge, "container web replaced", func() (bool, string) {
		second = h.waitRunning("web", argv, converge)
		return second.PID != first.PID, fmt.Sprintf("pid still %d", first.PID)
	})
	if alive(first.PID) {
		t.Errorf("the replaced container's pid %d is still alive", first.PID)
	}
	t.Logf("rebuilt: image %s, pid %d", id2[:12], second.PID)

	// A failing RUN on line 3: no new image, the container stays, and the
	// Image is Stalled naming Zockerfile:3.
	zockerfile("RUN exit 3", "ENV X=1")
	poll(t, 2*converge, "Image/hello Stalled naming Zockerfile:3", func() (bool, string) {
		st, why := h.statusJSON()
		if why != "" {
			return false, why
		}
		o, ok := objectStatus(st, "Image", "hello")
		if !ok {
			return false, fmt.Sprintf("no Image/hello in %+v", st.Objects)
		}
		stalled, _ := o.Condition(service.ConditionStalled)
		ready, _ := o.Condition(service.ConditionReady)
		if ready.Status || !stalled.Status || !strings.Contains(stalled.Message, "Zockerfile:3") {
			return false, fmt.Sprintf("Ready %+v, Stalled %+v", ready, stalled)
		}
		t.Logf("stalled: %s", stalled.Message)
		return true, ""
	})
	// One more pass must not retry the failed build into a different state.
	srv.sighupPass(t)
	if id, why := h.imageID("hello"); id != id2 {
		t.Errorf("after the failed build, hello is %q (%s), want %s", id, why, id2)
	}
	if kept := h.waitRunning("web", argv, 5*time.Second); kept.PID != second.PID {
		t.Errorf("failed build: container pid %d became %d (restarts %d)", second.PID, kept.PID, h.restarts("web"))
	}
	if ds := datasets(t, h.root+"/tmp"); !slices.Equal(ds, []string{h.root + "/tmp"}) {
		t.Errorf("the failed build left datasets under ROOT/tmp: %v", ds)
	}

	// Fixed (and different from both earlier Zockerfiles): converges again.
	writeFile(t, filepath.Join(ctxDir, "index.html"), "hello 2\n")
	zockerfile("ENV X=1")
	var id3 string
	poll(t, 2*converge, "tag hello to move after the fix", func() (bool, string) {
		id, why := h.imageID("hello")
		if id == "" || id == id2 {
			return false, fmt.Sprintf("hello is %q %s", id, why)
		}
		id3 = id
		return true, ""
	})
	var third psRow
	poll(t, converge, "container web replaced after the fix", func() (bool, string) {
		third = h.waitRunning("web", argv, converge)
		return third.PID != second.PID, fmt.Sprintf("pid still %d", second.PID)
	})
	poll(t, converge, "Image/hello Ready again", func() (bool, string) {
		st, why := h.statusJSON()
		if why != "" {
			return false, why
		}
		o, ok := objectStatus(st, "Image", "hello")
		if !ok || !o.Ready() {
			return false, fmt.Sprintf("%+v", o)
		}
		return true, ""
	})
	t.Logf("fixed: image %s, pid %d", id3[:12], third.PID)
}
