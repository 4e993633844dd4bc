package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/zocker-reconcile/zocker-reconcile/metrics"
)

func get(t *testing.T, h http.Handler, path string) (int, http.Header, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Header(), rec.Body.String()
}

// /readyz and /healthz answer 503 with the reason their check gives, and
// 200 "ok" once it passes.
func TestProbesFollowTheirChecks(t *testing.T) {
	var ready, live error = errors.New("first pass running"), errors.New("stuck: no progress for 3m")
	h := NewHandler(Options{Registry: prometheus.NewRegistry(),
		Ready: func() error { return ready }, Live: func() error { return live }})
	for path, reason := range map[string]string{"/readyz": "first pass running", "/healthz": "stuck: no progress for 3m"} {
		if code, _, body := get(t, h, path); code != http.StatusServiceUnavailable || !strings.Contains(body, reason) {
			t.Errorf("%s failing: %d %q, want 503 with %q", path, code, body, reason)
		}
	}
	ready, live = nil, nil
	for _, path := range []string{"/readyz", "/healthz"} {
		if code, _, body := get(t, h, path); code != http.StatusOK || body != "ok\n" {
			t.Errorf("%s passing: %d %q, want 200 ok", path, code, body)
		}
	}
}

// Without checks the probes answer as if all were well.
func TestProbesWithoutChecks(t *testing.T) {
	h := NewHandler(Options{Registry: prometheus.NewRegistry()})
	for _, path := range []string{"/readyz", "/healthz"} {
		if code, _, _ := get(t, h, path); code != http.StatusOK {
			t.Errorf("%s: %d, want 200", path, code)
		}
	}
}

func TestStatusIsJSON(t *testing.T) {
	type cond struct {
		Type   string `json:"type"`
		Status string `json:"status"`
	}
	doc := map[string]any{"revision": "abc", "objects": []cond{{"Ready", "True"}}}
	h := NewHandler(Options{Registry: prometheus.NewRegistry(), Status: func() any { return doc }})
	code, hdr, body := get(t, h, "/status")
	if code != 200 || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("status: %d %q", code, hdr.Get("Content-Type"))
	}
	var back struct {
		Revision string `json:"revision"`
		Objects  []cond `json:"objects"`
	}
	if err := json.Unmarshal([]byte(body), &back); err != nil {
		t.Fatalf("status body is not JSON: %v\n%s", err, body)
	}
	if back.Revision != "abc" || len(back.Objects) != 1 || back.Objects[0].Status != "True" {
		t.Fatalf("status round trip: %+v", back)
	}
}

func TestStatusEncodeErrorIs500(t *testing.T) {
	var logs bytes.Buffer
	h := NewHandler(Options{
		Registry: prometheus.NewRegistry(),
		Status:   func() any { return map[string]any{"bad": make(chan int)} },
		Logger:   slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if code, _, _ := get(t, h, "/status"); code != 500 {
		t.Fatalf("unencodable status: %d, want 500", code)
	}
	if !strings.Contains(logs.String(), "encode status") {
		t.Errorf("no log line for the encode error: %q", logs.String())
	}
}

func TestNilFuncsAnswerOK(t *testing.T) {
	h := NewHandler(Options{Registry: prometheus.NewRegistry()})
	for _, p := range []string{"/healthz", "/readyz", "/status", "/"} {
		if code, _, _ := get(t, h, p); code != 200 {
			t.Errorf("%s: %d, want 200", p, code)
		}
	}
	if code, _, _ := get(t, h, "/nope"); code != 404 {
		t.Errorf("/nope: %d, want 404", code)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/status", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /status: %d, want 405", rec.Code)
	}
}

// TestMetricsExposition scrapes /metrics over a real listener and parses it
// with the Prometheus text parser, including the removal of a pruned
// container's series.
func TestMetricsExposition(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	m.ContainerState("web", true, true, 0)
	m.ContainerState("worker", true, true, 2)
	m.SetObjectReady(metrics.KindContainer, "web", true)
	m.SetObjectReady(metrics.KindContainer, "worker", true)
	m.ObserveAction(metrics.KindContainer, "prune", metrics.ResultSuccess, time.Second)
	m.ForgetContainer("worker")

	srv := httptest.NewServer(NewHandler(Options{Registry: reg}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse exposition: %v", err)
	}
	up := fams["zocker_container_up"]
	if up == nil || len(up.GetMetric()) != 1 || up.GetMetric()[0].GetLabel()[0].GetValue() != "web" {
		t.Fatalf("zocker_container_up: %v", up)
	}
	for _, name := range []string{"zocker_container_restarts_total", "zocker_object_ready"} {
		for _, mt := range fams[name].GetMetric() {
			for _, l := range mt.GetLabel() {
				if l.GetValue() == "worker" {
					t.Errorf("%s still has the pruned container: %v", name, mt)
				}
			}
		}
	}
	var pruned float64
	for _, mt := range fams["zocker_actions_total"].GetMetric() {
		lv := map[string]string{}
		for _, l := range mt.GetLabel() {
			lv[l.GetName()] = l.GetValue()
		}
		if lv["kind"] == "Container" && lv["action"] == "prune" && lv["result"] == "success" {
			pruned = mt.GetCounter().GetValue()
		}
	}
	if pruned != 1 {
		t.Errorf("zocker_actions_total{Container,prune,success} = %v, want 1", pruned)
	}
	if fams["go_goroutines"] == nil || fams["promhttp_metric_handler_requests_total"] == nil {
		t.Error("Go collector or promhttp counters missing from the exposition")
	}
}

func TestCheckListen(t *testing.T) {
	cases := []struct {
		addr     string
		explicit bool
		ok       bool
		warn     bool
	}{
		{DefaultListen, false, true, false},
		{"localhost:9847", false, true, false},
		{"[::1]:9847", false, true, false},
		{"127.0.1.5:80", false, true, false},
		{"0.0.0.0:9847", false, false, false},
		{":9847", false, false, false},
		{"192.168.0.10:9847", false, false, false},
		{"metrics.example.org:9847", false, false, false},
		{"0.0.0.0:9847", true, true, true},
		{"[2001:db8::1]:9847", true, true, true},
		{"127.0.0.1", false, false, false},
		{"127.0.0.1:http", false, false, false},
		{"127.0.0.1:70000", true, false, false},
		{"127.0.0.1:0", false, false, false},
		{"127.0.0.1:0", true, true, false},
	}
	for _, c := range cases {
		var logs bytes.Buffer
		err := CheckListen(c.addr, c.explicit, slog.New(slog.NewTextHandler(&logs, nil)))
		if (err == nil) != c.ok {
			t.Errorf("CheckListen(%q, %v) = %v, want ok=%v", c.addr, c.explicit, err, c.ok)
		}
		warned := strings.Contains(logs.String(), "level=WARN") && strings.Contains(logs.String(), "/status exposes container specs")
		if warned != c.warn {
			t.Errorf("CheckListen(%q, %v) warned=%v, want %v (%q)", c.addr, c.explicit, warned, c.warn, logs.String())
		}
	}
	// The refusal names the remedy.
	err := CheckListen("0.0.0.0:9847", false, nil)
	if err == nil || !strings.Contains(err.Error(), "give --listen explicitly") {
		t.Errorf("refusal message: %v", err)
	}
}

func TestServeShutsDownOnCancel(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, NewHandler(Options{Registry: prometheus.NewRegistry()})) }()

	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "ok\n" {
		t.Fatalf("healthz over TCP: %q", body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	if _, err := http.Get("http://" + ln.Addr().String() + "/healthz"); err == nil {
		t.Error("still serving after shutdown")
	}
}

func TestServeReportsListenerError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	err = Serve(context.Background(), ln, http.NotFoundHandler())
	if err == nil || !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Serve on a closed listener: %v", err)
	}
}
