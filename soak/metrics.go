package soak

import (
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// serveMetrics serves the rig's own Prometheus metrics: its counters and
// the latest memory samples, so a Grafana users already run can watch a
// long soak. Values are read from the sampler's last line at scrape time.
func serveMetrics(listen string, s *sampler) (*http.Server, error) {
	if listen == "" {
		return nil, nil
	}
	reg := prometheus.NewRegistry()
	ctxGauge := func(name, help, key string) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help},
			func() float64 { return s.latest().Context[key] }))
	}
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "relaysoak_frames_sent_total", Help: "Frames the fleet emitted."},
		func() float64 {
			if l := s.latest(); l.FramesSent != nil {
				return *l.FramesSent
			}
			return 0
		}))
	ctxGauge("relaysoak_commits_sent", "Commits the fleet emitted.", "commits_sent")
	ctxGauge("relaysoak_commits_delivered", "Commits read back from the relay's firehose.", "commits_delivered")
	ctxGauge("relaysoak_lag_p99_milliseconds", "End-to-end lag, 99th percentile over the run.", "lag_p99_ms")
	ctxGauge("relaysoak_connections", "Relay connections to the fleet's hosts.", "connections")
	ctxGauge("relaysoak_plc_requests", "DID documents served by the fake PLC.", "plc_requests")
	mem := prometheus.NewDesc("relaysoak_relay_memory_bytes", "The relay's memory by signal, latest sample.", []string{"signal"}, nil)
	reg.MustRegister(collectorFunc{desc: mem, collect: func(ch chan<- prometheus.Metric) {
		for k, v := range s.latest().Signals {
			ch <- prometheus.MustNewConstMetric(mem, prometheus.GaugeValue, v, k)
		}
	}})
	reg.MustRegister(s.rig.Fleet.Collector()) // the fake network's own counters (PLC requests…)
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "relaysoak_memory_slope_mib_per_hour", Help: "Live slope of the relay's primary memory signal."},
		func() float64 { v, _ := s.slope(); return v }))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("rig metrics: listen on %s: %w (choose another --metrics-listen)", listen, err)
	}
	srv := &http.Server{Addr: ln.Addr().String(), Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return srv, nil
}

type collectorFunc struct {
	desc    *prometheus.Desc
	collect func(chan<- prometheus.Metric)
}

func (c collectorFunc) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }
func (c collectorFunc) Collect(ch chan<- prometheus.Metric) { c.collect(ch) }
