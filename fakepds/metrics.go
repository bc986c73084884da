package fakepds

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/relaysoak/relaysoak/internal/metricsserver"
)

// Collector exposes the fleet's counters as Prometheus metrics, read at
// scrape time (nothing is kept per scrape): the PLC requests counter shows
// a relay's resolver at work through the whole run.
func (f *Fleet) Collector() prometheus.Collector { return NewCollector(f.Stats) }

// NewCollector exposes stats (a Fleet's Stats method, or a fake in a test)
// as the fleet's metrics. Every name starts relaysoak_fleet_: the rig
// serves them beside its own under one prefix.
func NewCollector(stats func() Stats) prometheus.Collector { return fleetCollector{stats} }

// NewMetricsRegistry is what `relaysoak fakepds --metrics-listen` serves:
// the fleet's metrics plus the Go and process collectors of the process
// running it. Serve it with metricsserver.Serve.
func NewMetricsRegistry(stats func() Stats) *prometheus.Registry {
	return metricsserver.NewRegistry(NewCollector(stats))
}

type fleetCollector struct{ stats func() Stats }

var (
	descFrames      = prometheus.NewDesc("relaysoak_fleet_frames_emitted_total", "Frames the fleet emitted, by kind.", []string{"kind"}, nil)
	descWritten     = prometheus.NewDesc("relaysoak_fleet_frames_written_total", "Frames written to subscribers.", nil, nil)
	descPLC         = prometheus.NewDesc("relaysoak_fleet_plc_requests_total", "DID documents requested from the fake PLC.", nil, nil)
	descPLCErrors   = prometheus.NewDesc("relaysoak_fleet_plc_errors_total", "DID document requests failed on purpose (fault settings).", nil, nil)
	descPLCFaults   = prometheus.NewDesc("relaysoak_fleet_plc_faults_total", "PLC connections reset or closed, and answers trickled, on purpose (fault settings).", []string{"fault"}, nil)
	descConnections = prometheus.NewDesc("relaysoak_fleet_connections", "Subscribers (the relay's connections to the fleet's hosts) connected now.", nil, nil)
	descSlow        = prometheus.NewDesc("relaysoak_fleet_slow_consumers_cut_total", "Subscribers cut off for falling behind.", nil, nil)
	descAccounts    = prometheus.NewDesc("relaysoak_fleet_accounts", "Accounts the fleet hosts now.", nil, nil)
)

func (c fleetCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descFrames, descWritten, descPLC, descPLCErrors, descPLCFaults, descConnections, descSlow, descAccounts} {
		ch <- d
	}
}

func (c fleetCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	for kind, v := range map[string]uint64{"commit": s.Commits, "identity": s.Identity, "account": s.Account, "sync": s.Sync} {
		ch <- prometheus.MustNewConstMetric(descFrames, prometheus.CounterValue, float64(v), kind)
	}
	ch <- prometheus.MustNewConstMetric(descWritten, prometheus.CounterValue, float64(s.FramesWritten))
	ch <- prometheus.MustNewConstMetric(descPLC, prometheus.CounterValue, float64(s.PLCRequests))
	ch <- prometheus.MustNewConstMetric(descPLCErrors, prometheus.CounterValue, float64(s.PLCErrors))
	for fault, v := range map[string]uint64{"reset": s.PLCResets, "close": s.PLCCloses, "slow": s.PLCSlow} {
		ch <- prometheus.MustNewConstMetric(descPLCFaults, prometheus.CounterValue, float64(v), fault)
	}
	ch <- prometheus.MustNewConstMetric(descConnections, prometheus.GaugeValue, float64(s.Connections))
	ch <- prometheus.MustNewConstMetric(descSlow, prometheus.CounterValue, float64(s.SlowConsumersCut))
	ch <- prometheus.MustNewConstMetric(descAccounts, prometheus.GaugeValue, float64(s.Accounts))
}
