// Package metricsserver serves a process's own Prometheus registry and Go
// profiler on one address. It is the one place both the soak rig (package
// soak) and `relaysoak fakepds --metrics-listen` build and serve their
// registries, so the two follow the same conventions; it sits under
// internal/ and imports no project package, so any layer may use it.
package metricsserver

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewRegistry returns a registry holding cs plus the Go runtime and
// process collectors, which describe the serving process itself: a soak
// judges the rig's own memory too, so it must be visible beside its load.
// It panics when cs collide, as prometheus.MustRegister does: a fixed set
// of collectors that collides is a programming error.
func NewRegistry(cs ...prometheus.Collector) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(cs...)
	return reg
}

// Handler serves g at /metrics and the Go profiler at /debug/pprof/. The
// profiler's handlers are registered on this mux explicitly, never through
// http.DefaultServeMux, so nothing else the process serves exposes them.
func Handler(g prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	mux.HandleFunc("/debug/pprof/", pprof.Index) // and the named profiles: heap, goroutine, allocs…
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// Serve listens on addr and serves Handler(g) in the background until the
// returned server is closed. addr may be ":0" or "127.0.0.1:0": the real
// address is returned (and set as the server's Addr), so callers print
// where to scrape.
func Serve(addr string, g prometheus.Gatherer) (srv *http.Server, realAddr string, err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	realAddr = ln.Addr().String()
	// No write timeout: a CPU profile or trace streams for as long as asked.
	srv = &http.Server{Addr: realAddr, Handler: Handler(g), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln) // returns http.ErrServerClosed on Close; nothing to report
	return srv, realAddr, nil
}
