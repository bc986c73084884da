package soak

import (
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relaysoak/relaysoak/internal/metricsserver"
	"github.com/relaysoak/relaysoak/soak/firehose"
)

// rigMetrics is what the rig's registry reads at scrape time: in a run the
// sampler, the fleet and the firehose consumer; in a test, fakes. Each
// value is served under one name only; the fleet's counters (frames sent,
// connections, PLC requests) come from Fleet and are not repeated here.
type rigMetrics struct {
	Fleet    prometheus.Collector      // the fake network's counters (fakepds.NewCollector)
	Firehose func() firehose.Stats     // commits read back from the relay, and their lag
	Memory   func() map[string]float64 // the relay's latest memory sample, bytes by signal
	SlopeMiB func() float64            // live slope of the primary memory signal, MiB/h
}

// mibPerHour is one MiB/h in bytes per second: the verdict package judges in
// MiB/h, Prometheus wants base units.
const mibPerHour = float64(1<<20) / 3600

var (
	descCommitsDelivered = prometheus.NewDesc("relaysoak_commits_delivered_total", "Commits read back from the relay's firehose.", nil, nil)
	descLag              = prometheus.NewDesc("relaysoak_lag_seconds", "End-to-end lag of commits, from the commit's time to its arrival on the relay's firehose, since the run began.", nil, nil)
	descRelayMemory      = prometheus.NewDesc("relaysoak_relay_memory_bytes", "The relay's memory by signal, latest sample.", []string{"signal"}, nil)
	descSlope            = prometheus.NewDesc("relaysoak_relay_memory_slope_bytes_per_second", "Live slope of the relay's primary memory signal.", nil, nil)
)

// newRigRegistry builds the registry the rig serves: its own metrics, the
// fleet's, and the Go and process collectors of the rig itself.
func newRigRegistry(m rigMetrics) *prometheus.Registry {
	return metricsserver.NewRegistry(m.Fleet, rigCollector{m})
}

type rigCollector struct{ m rigMetrics }

func (c rigCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descCommitsDelivered, descLag, descRelayMemory, descSlope} {
		ch <- d
	}
}

func (c rigCollector) Collect(ch chan<- prometheus.Metric) {
	hs := c.m.Firehose()
	ch <- prometheus.MustNewConstMetric(descCommitsDelivered, prometheus.CounterValue, float64(hs.Commits))
	// A summary over the whole run, as the report states it; the consumer's
	// histogram keeps no sliding window.
	l := hs.Lag
	var qs map[float64]float64 // none before the first commit: a quantile of nothing is not 0 s
	if l.Count > 0 {
		qs = map[float64]float64{0.5: l.P50.Seconds(), 0.9: l.P90.Seconds(), 0.99: l.P99.Seconds(), 0.999: l.P999.Seconds()}
	}
	ch <- prometheus.MustNewConstSummary(descLag, l.Count, l.Mean.Seconds()*float64(l.Count), qs)
	for k, v := range c.m.Memory() {
		ch <- prometheus.MustNewConstMetric(descRelayMemory, prometheus.GaugeValue, v, k)
	}
	ch <- prometheus.MustNewConstMetric(descSlope, prometheus.GaugeValue, c.m.SlopeMiB()*mibPerHour)
}

// metrics is what the rig's registry reads from a run: the sampler's
// latest memory sample and slope, and the run's fleet and consumer live.
func (s *sampler) metrics() rigMetrics {
	return rigMetrics{
		Fleet:    s.rig.Collector(),
		Firehose: func() firehose.Stats { return s.rig.Counts().Firehose },
		Memory:   func() map[string]float64 { return s.latest().Signals }, // a fresh map per sample, never written after
		SlopeMiB: func() float64 { v, _ := s.slope(); return v },
	}
}

// serveMetrics serves the rig's own Prometheus metrics, so a Grafana users
// already run can watch a long soak, and the rig's Go profiler beside them
// (/debug/pprof/). listen "" serves nothing.
func serveMetrics(listen string, s *sampler) (*http.Server, error) {
	if listen == "" {
		return nil, nil
	}
	srv, _, err := metricsserver.Serve(listen, newRigRegistry(s.metrics()))
	if err != nil {
		return nil, fmt.Errorf("rig metrics: %w (choose another --metrics-listen)", err)
	}
	return srv, nil
}
