package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestServeHTTP checks the probes around the first pass (/readyz 503 while
// the image imports, 200 after; /healthz 200; /status JSON), then the
// scraped metrics after two containers were created and one pruned.
func TestServeHTTP(t *testing.T) {
	t.Parallel()
	h := newHost(t)
	h.write("images.yaml", h.imageYAML())
	keep, gone := []string{"/bin/sleep", "100041"}, []string{"/bin/sleep", "100042"}
	h.write("keep.yaml", containerYAML("keep", keep...))
	h.write("gone.yaml", containerYAML("gone", gone...))
	srv := h.start()

	// The first answer of /readyz comes while the first pass imports the
	// image: 503. Poll fast so as not to miss it.
	var first int
	var firstBody []byte
	deadline := time.Now().Add(30 * time.Second)
	for first == 0 && time.Now().Before(deadline) {
		code, b, err := srv.get("/readyz")
		if err == nil {
			first, firstBody = code, b
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if first != http.StatusServiceUnavailable {
		t.Errorf("first /readyz answer: %d %s, want 503 before the first pass", first, firstBody)
	}
	srv.waitReady(t, converge)
	if code, b, err := srv.get("/healthz"); err != nil || code != http.StatusOK {
		t.Errorf("/healthz: %d %s %v, want 200", code, b, err)
	}
	code, b, err := srv.get("/status")
	if err != nil || code != http.StatusOK || !json.Valid(b) {
		t.Errorf("/status: %d %v, want 200 and JSON: %s", code, err, b)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil || doc["objects"] == nil || doc["revision"] == nil {
		t.Errorf("/status has no objects or revision: %v: %s", err, b)
	}

	h.waitRunning("keep", keep, converge)
	h.waitRunning("gone", gone, converge)
	// The series of the container to prune exist before the prune, so that
	// their absence after it means something.
	poll(t, converge, "series of container gone", func() (bool, string) {
		fams, err := srv.metrics()
		if err != nil {
			return false, err.Error()
		}
		for _, name := range []string{"zocker_container_up", "zocker_object_ready", "zocker_dataset_used_bytes"} {
			if len(series(fams, name, map[string]string{"name": "gone"})) == 0 {
				return false, "no " + name + "{name=gone}"
			}
		}
		return true, ""
	})

	h.remove("gone.yaml")
	h.waitGone("gone", converge)
	poll(t, converge, "the metrics after the prune", func() (bool, string) {
		fams, err := srv.metrics()
		if err != nil {
			return false, err.Error()
		}
		var unmet []string
		atLeast := func(name string, labels map[string]string, min float64) {
			v := series(fams, name, labels)
			if len(v) != 1 || v[0] < min {
				unmet = append(unmet, fmt.Sprintf("%s%v = %v, want one series >= %v", name, labels, v, min))
			}
		}
		equal := func(name string, labels map[string]string, want float64) {
			v := series(fams, name, labels)
			if len(v) != 1 || v[0] != want {
				unmet = append(unmet, fmt.Sprintf("%s%v = %v, want %v", name, labels, v, want))
			}
		}
		atLeast("zocker_actions_total", map[string]string{"kind": "Container", "action": "create", "result": "success"}, 2)
		atLeast("zocker_actions_total", map[string]string{"kind": "Container", "action": "prune", "result": "success"}, 1)
		equal("zocker_object_ready", map[string]string{"kind": "Container", "name": "keep"}, 1)
		equal("zocker_container_up", map[string]string{"name": "keep"}, 1)
		equal("zocker_managed_objects", map[string]string{"kind": "Container"}, 1)
		for _, name := range []string{"zocker_container_up", "zocker_object_ready", "zocker_container_restarts_total", "zocker_dataset_used_bytes"} {
			if v := series(fams, name, map[string]string{"name": "gone"}); len(v) > 0 {
				unmet = append(unmet, fmt.Sprintf("%s{name=gone} still exported: %v", name, v))
			}
		}
		return len(unmet) == 0, strings.Join(unmet, "; ")
	})
}
