package metricsserver

import (
	"io"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMetricsServerServesRegistryAndPprof(t *testing.T) {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "relaysoak_test_events_total", Help: "Test events."})
	c.Add(3)
	srv, addr, err := Serve("127.0.0.1:0", NewRegistry(c))
	require.NoError(t, err)
	defer srv.Close()
	assert.Equal(t, addr, srv.Addr)
	assert.NotContains(t, addr, ":0", "the real port, not the one asked for")

	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	code, body := get("/metrics")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "relaysoak_test_events_total 3")
	assert.Contains(t, body, "go_goroutines", "the Go collector")
	assert.Contains(t, body, "process_resident_memory_bytes", "the process collector")

	code, body = get("/debug/pprof/")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "goroutine")
	code, _ = get("/debug/pprof/heap?debug=1")
	assert.Equal(t, http.StatusOK, code)
	code, _ = get("/debug/pprof/cmdline")
	assert.Equal(t, http.StatusOK, code)
}

func TestMetricsServerRegistryPassesPromlint(t *testing.T) {
	mfs, err := NewRegistry().Gather()
	require.NoError(t, err)
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	require.NoError(t, err)
	assert.Empty(t, problems, "the Go and process collectors alone")
}

func TestMetricsServerListenErrorNamesAddress(t *testing.T) {
	srv, _, err := Serve("127.0.0.1:0", NewRegistry())
	require.NoError(t, err)
	defer srv.Close()
	_, _, err = Serve(srv.Addr, NewRegistry())
	require.Error(t, err)
	assert.Contains(t, err.Error(), srv.Addr)
}
