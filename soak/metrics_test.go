package soak

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/relaysoak/relaysoak/fakepds"
	"github.com/relaysoak/relaysoak/internal/loghist"
	"github.com/relaysoak/relaysoak/soak/firehose"
)

// fakeRigMetrics gives every value its own number, so a value the rig
// served under two names would show up twice.
func fakeRigMetrics() rigMetrics {
	fleet := func() fakepds.Stats {
		return fakepds.Stats{Commits: 101, Identity: 102, Account: 103, Sync: 104, FramesWritten: 105, PLCRequests: 106, PLCErrors: 107,
			PLCResets: 108, PLCCloses: 109, PLCSlow: 110, Connections: 111, SlowConsumersCut: 112, Accounts: 113}
	}
	return rigMetrics{
		Fleet: fakepds.NewCollector(fleet),
		Firehose: func() firehose.Stats {
			return firehose.Stats{Commits: 99, Lag: loghist.Summary{Count: 4, Mean: 250 * time.Millisecond,
				P50: 200 * time.Millisecond, P90: 300 * time.Millisecond, P99: 1500 * time.Millisecond, P999: 2 * time.Second}}
		},
		Memory:   func() map[string]float64 { return map[string]float64{"rss_anon": 300 << 20, "vmrss": 310 << 20} },
		SlopeMiB: func() float64 { return 3.6 },
	}
}

func gatherRig(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := newRigRegistry(fakeRigMetrics()).Gather()
	require.NoError(t, err)
	out := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

func TestRigMetricsPassPromlint(t *testing.T) {
	mfs, err := newRigRegistry(fakeRigMetrics()).Gather()
	require.NoError(t, err)
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	require.NoError(t, err)
	assert.Empty(t, problems)
	for _, mf := range mfs {
		n := mf.GetName()
		if !strings.HasPrefix(n, "go_") && !strings.HasPrefix(n, "process_") {
			assert.True(t, strings.HasPrefix(n, "relaysoak_"), "one prefix for the rig's and the fleet's metrics: %s", n)
		}
	}
}

func TestRigMetricsValuesInBaseUnits(t *testing.T) {
	mfs := gatherRig(t)
	for _, n := range []string{"go_goroutines", "process_resident_memory_bytes", "relaysoak_fleet_plc_requests_total"} {
		assert.Contains(t, mfs, n, "the rig's Go and process collectors, and the fleet's counters")
	}
	require.Contains(t, mfs, "relaysoak_relay_memory_slope_bytes_per_second")
	assert.InDelta(t, 3.6*(1<<20)/3600.0, mfs["relaysoak_relay_memory_slope_bytes_per_second"].Metric[0].GetGauge().GetValue(), 1e-9)
	require.Contains(t, mfs, "relaysoak_commits_delivered_total")
	assert.Equal(t, dto.MetricType_COUNTER, mfs["relaysoak_commits_delivered_total"].GetType())
	assert.Equal(t, 99.0, mfs["relaysoak_commits_delivered_total"].Metric[0].GetCounter().GetValue())

	require.Contains(t, mfs, "relaysoak_lag_seconds")
	sum := mfs["relaysoak_lag_seconds"].Metric[0].GetSummary()
	assert.Equal(t, uint64(4), sum.GetSampleCount())
	assert.InDelta(t, 1.0, sum.GetSampleSum(), 1e-9)
	q := map[float64]float64{}
	for _, x := range sum.GetQuantile() {
		q[x.GetQuantile()] = x.GetValue()
	}
	assert.InDelta(t, 1.5, q[0.99], 1e-9)

	mem := map[string]float64{}
	for _, m := range mfs["relaysoak_relay_memory_bytes"].GetMetric() {
		mem[m.Label[0].GetValue()] = m.GetGauge().GetValue()
	}
	assert.Equal(t, map[string]float64{"rss_anon": 300 << 20, "vmrss": 310 << 20}, mem)
}

// TestRigMetricsServeEachValueOnce: no value is served under two names.
// The fakes give every input its own number, so a rig metric derived from
// a fleet counter (as relaysoak_plc_requests once was) repeats a value.
func TestRigMetricsServeEachValueOnce(t *testing.T) {
	mfs := gatherRig(t)
	seen := map[float64]string{}
	note := func(name string, v float64) {
		if prev, ok := seen[v]; ok && prev != name {
			assert.Fail(t, "a value served under two names", "%v as %s and %s", v, prev, name)
		}
		seen[v] = name
	}
	for name, mf := range mfs {
		if !strings.HasPrefix(name, "relaysoak_") {
			continue
		}
		for _, m := range mf.Metric {
			switch {
			case m.Counter != nil:
				note(name, m.GetCounter().GetValue())
			case m.Gauge != nil:
				note(name, m.GetGauge().GetValue())
			case m.Summary != nil:
				note(name, float64(m.GetSummary().GetSampleCount()))
				for _, q := range m.GetSummary().GetQuantile() {
					note(name, q.GetValue())
				}
			}
		}
	}
	var plc []string
	for name := range mfs {
		if strings.Contains(name, "plc_requests") {
			plc = append(plc, name)
		}
	}
	assert.Equal(t, []string{"relaysoak_fleet_plc_requests_total"}, plc, "one PLC request counter, the fleet's")
	for _, gone := range []string{"relaysoak_plc_requests", "relaysoak_connections", "relaysoak_commits_sent", "relaysoak_frames_sent_total"} {
		assert.NotContains(t, mfs, gone, "duplicates a fleet metric")
	}
}

func TestRigMetricsLagBeforeFirstCommit(t *testing.T) {
	m := fakeRigMetrics()
	m.Firehose = func() firehose.Stats { return firehose.Stats{} }
	mfs, err := newRigRegistry(m).Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == "relaysoak_lag_seconds" {
			s := mf.Metric[0].GetSummary()
			assert.Zero(t, s.GetSampleCount())
			assert.Empty(t, s.GetQuantile(), "no quantiles of nothing")
			return
		}
	}
	t.Fatal("relaysoak_lag_seconds not served")
}
