package fakepds

import (
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCollectorCountsPLCRequests(t *testing.T) {
	n := startNet(t, Config{Hosts: 1, AccountsPerHost: 1, Churn: Churn{Off: true}})
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
	assert.Equal(t, 3.0, got["fakepds_plc_requests_total"])
	assert.Equal(t, 4.0, got["fakepds_frames_emitted_total/commit"])
	assert.Equal(t, 1.0, got["fakepds_frames_emitted_total/sync"], "the account's first event is its #sync")
	assert.Equal(t, 1.0, got["fakepds_accounts"])
}
