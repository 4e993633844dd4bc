// Package httpapi serves the HTTP endpoints of `zocker-reconcile serve`:
//
//	GET /metrics  the Prometheus exposition of the registry passed in
//	GET /healthz  200 "ok" while the reconcile loop's heartbeat is fresh, 503 with the reason when it is stuck
//	GET /readyz   503 with the reason until manifests are loaded and the first full pass is done, then 200 "ok"
//	GET /status   the object conditions and manifest revision as JSON (ARCHITECTURE section 6)
//
// It also holds the listen-address policy (DefaultListen, CheckListen): the
// default address is loopback, and a non-loopback one is accepted only when
// the operator gave it explicitly, because /status exposes container specs.
//
// The package takes functions rather than the reconciler's types, so it
// depends on nothing but client_golang and the standard library; serve wires
// the loop's heartbeat, readiness and status into it.
package httpapi

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Options configures NewHandler. Registry is required; a nil Live, Ready or
// Status func makes that endpoint answer as if all were well (200, or an
// empty JSON object for /status), which suits tests and partial wiring.
type Options struct {
	// Registry is gathered on every GET /metrics. The handler also registers
	// promhttp's own request counters on it.
	Registry *prometheus.Registry
	// Live returns nil while the loop is alive and not stuck, else why not
	// (Heartbeat.Check fits).
	Live func() error
	// Ready returns nil once the service is ready (manifests loaded and the
	// first full pass done), else why not (Gate.Check fits).
	Ready func() error
	// Status returns the JSON-serializable status document.
	Status func() any
	// Logger receives errors of the exposition and of /status encoding;
	// nil means slog.Default().
	Logger *slog.Logger
}

// NewHandler returns the mux serving /metrics, /healthz, /readyz and /status.
func NewHandler(o Options) http.Handler {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	mux := http.NewServeMux()
	metrics := promhttp.HandlerFor(o.Registry, promhttp.HandlerOpts{
		ErrorLog: slogPrinter{log},
		// A collector failing (e.g. the process collector on a host
		// without procfs) must not hide every other metric.
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      o.Registry,
	})
	mux.Handle("GET /metrics", promhttp.InstrumentMetricHandler(o.Registry, metrics))
	mux.HandleFunc("GET /healthz", probe(o.Live))
	mux.HandleFunc("GET /readyz", probe(o.Ready))
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		var doc any = struct{}{}
		if o.Status != nil {
			doc = o.Status()
		}
		body, err := json.MarshalIndent(doc, "", "  ")
		if err != nil {
			log.Error("encode status", "err", err)
			http.Error(w, "encode status: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(append(body, '\n'))
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprint(w, "zocker-reconcile\n\n/metrics  Prometheus metrics\n/healthz  liveness\n/readyz   readiness\n/status   object conditions (JSON)\n")
	})
	return mux
}

// probe answers 200 "ok" when check returns nil (or is nil), else 503 with
// the reason, as plain text for curl and load balancers alike.
func probe(check func() error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if check != nil {
			if err := check(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintln(w, err.Error())
				return
			}
		}
		fmt.Fprintln(w, "ok")
	}
}

// slogPrinter adapts slog to promhttp's Logger interface.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.log.Error("serve metrics", "err", fmt.Sprint(v...)) }
