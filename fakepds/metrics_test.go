package fakepds

import (
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCollectorCountsPLCRequests(t *testing.T) {
	n := startNet(t, Config{Hosts: 1, AccountsPerHost: 1})
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(n.fleet.Collector()))
	did := n.fleet.hosts[0].accounts[0].did
	for i := 0; i < 3; i++ {
		code, _, _ := n.get(t, "http://plc.test/"+did)
		require.Equal(t, http.StatusOK, code)
	}
	writeN(t, n.fleet, 0, 4)
	mfs, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.Metric {
			name := mf.GetName()
			for _, l := range m.Label {
				name += "/" + l.GetValue()
			}
			got[name] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	assert.Equal(t, 3.0, got["relaysoak_fleet_plc_requests_total"])
	assert.Equal(t, 4.0, got["relaysoak_fleet_frames_emitted_total/commit"])
	assert.Equal(t, 1.0, got["relaysoak_fleet_frames_emitted_total/sync"], "the account's first event is its #sync")
	assert.Equal(t, 1.0, got["relaysoak_fleet_accounts"])
}

// fakeStats gives every field its own value, so a metric that serves a
// field under a second name would show up as a repeated value.
func fakeStats() Stats {
	return Stats{Commits: 101, Identity: 102, Account: 103, Sync: 104, FramesWritten: 105, PLCRequests: 106, PLCErrors: 107,
		PLCResets: 108, PLCCloses: 109, PLCSlow: 110, Connections: 111, SlowConsumersCut: 112, Accounts: 113}
}

func TestMetricsRegistryPassesPromlint(t *testing.T) {
	mfs, err := NewMetricsRegistry(fakeStats).Gather()
	require.NoError(t, err)
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	require.NoError(t, err)
	assert.Empty(t, problems)

	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
		if !strings.HasPrefix(mf.GetName(), "go_") && !strings.HasPrefix(mf.GetName(), "process_") {
			assert.True(t, strings.HasPrefix(mf.GetName(), "relaysoak_fleet_"), "one prefix: %s", mf.GetName())
		}
	}
	for _, n := range []string{"relaysoak_fleet_plc_requests_total", "relaysoak_fleet_frames_emitted_total", "go_goroutines", "process_resident_memory_bytes"} {
		assert.True(t, names[n], "%s served", n)
	}
}

func TestMetricsCollectorServesEachStatOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(NewCollector(fakeStats)))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	seen := map[float64]string{}
	for _, mf := range mfs {
		for _, m := range mf.Metric {
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			if prev, ok := seen[v]; ok {
				assert.Fail(t, "a value served twice", "%v as %s and %s", v, prev, mf.GetName())
			}
			seen[v] = mf.GetName()
		}
	}
	assert.Len(t, seen, 13, "every Stats field, once")
}
