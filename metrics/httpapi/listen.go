package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultListen is the default --listen address: loopback only, port 9847.
//
// The port sits in the 9100-9999 range Prometheus set aside for exporters
// and clear of the ports of the common ones (9090-9093 Prometheus,
// Pushgateway and Alertmanager, 9100 node_exporter, 9115 blackbox_exporter,
// 9116 snmp_exporter, ...), so that it can run beside them on the same host.
// The address is loopback because /status exposes container specs.
const DefaultListen = "127.0.0.1:9847"

// CheckListen applies the listen-address policy to addr (host:port).
// A loopback address (127.0.0.0/8, ::1, localhost) is always accepted. Any
// other address, including an empty host (every interface), is refused
// unless explicit is true, i.e. the operator gave it on the command line or
// in ZOCKER_LISTEN; then it is accepted with a warning on log, since /status
// exposes container specs (commands, environment, volumes) to whoever can
// reach it. Host names other than localhost are not resolved (no I/O here)
// and count as non-loopback.
func CheckListen(addr string, explicit bool, log *slog.Logger) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", addr, err)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || (p == 0 && !explicit) {
		return fmt.Errorf("listen address %q: port %q: want a number from 1 to 65535", addr, port)
	}
	if IsLoopback(host) {
		return nil
	}
	if !explicit {
		return fmt.Errorf("listen address %q is not loopback: give --listen explicitly to serve /metrics and /status (which shows container specs) beyond this host", addr)
	}
	if log == nil {
		log = slog.Default()
	}
	log.Warn("listening on a non-loopback address: /status exposes container specs (commands, environment, volumes) and /metrics container names to anyone who can reach it; restrict it with a firewall",
		"listen", addr)
	return nil
}

// IsLoopback reports whether host (as in host:port, without brackets) is a
// loopback address or "localhost".
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	// A zone ("::1%lo0") does not change loopback-ness.
	if i := strings.IndexByte(host, '%'); i >= 0 {
		host = host[:i]
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Serve serves h on ln until ctx ends, then shuts down gracefully, giving
// requests in flight up to five seconds. It returns nil after a shutdown
// caused by ctx, else the server's error.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{
		Handler: h,
		// Slow or idle clients must not pin goroutines of the service.
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve http on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shut down http on %s: %w", ln.Addr(), err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve http on %s: %w", ln.Addr(), err)
	}
	return nil
}
