package fakepds

import "github.com/prometheus/client_golang/prometheus"

// Collector exposes the fleet's counters as Prometheus metrics, read at
// scrape time (nothing is kept per scrape): the PLC requests counter shows
// a relay's resolver at work through the whole run.
func (f *Fleet) Collector() prometheus.Collector { return fleetCollector{f} }

type fleetCollector struct{ f *Fleet }

var (
	descFrames      = prometheus.NewDesc("fakepds_frames_emitted_total", "Frames the fleet emitted, by kind.", []string{"kind"}, nil)
	descWritten     = prometheus.NewDesc("fakepds_frames_written_total", "Frames written to subscribers.", nil, nil)
	descPLC         = prometheus.NewDesc("fakepds_plc_requests_total", "DID documents requested from the fake PLC.", nil, nil)
	descPLCErrors   = prometheus.NewDesc("fakepds_plc_errors_total", "DID document requests failed on purpose (fault settings).", nil, nil)
	descPLCFaults   = prometheus.NewDesc("fakepds_plc_faults_total", "PLC connections reset or closed, and answers trickled, on purpose (fault settings).", []string{"fault"}, nil)
	descConnections = prometheus.NewDesc("fakepds_connections", "Subscribers connected now.", nil, nil)
	descSlow        = prometheus.NewDesc("fakepds_slow_consumers_cut_total", "Subscribers cut off for falling behind.", nil, nil)
	descAccounts    = prometheus.NewDesc("fakepds_accounts", "Accounts the fleet hosts now.", nil, nil)
)

func (c fleetCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descFrames, descWritten, descPLC, descPLCErrors, descPLCFaults, descConnections, descSlow, descAccounts} {
		ch <- d
	}
}

func (c fleetCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.f.Stats()
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
