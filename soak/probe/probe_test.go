package probe

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestProcReadsThisProcess(t *testing.T) {
	got, err := Proc{PID: os.Getpid}.Read(context.Background())
	require.NoError(t, err)
	for _, k := range []string{"vm_rss", "rss_anon", "rss_file", "vm_hwm"} {
		assert.Positive(t, got[k], k)
	}
	assert.InDelta(t, got["vm_rss"], got["rss_anon"]+got["rss_file"], got["vm_rss"]*0.05, "VmRSS = RssAnon + RssFile (+ shmem)")
	_, err = Proc{PID: func() int { return 0 }}.Read(context.Background())
	assert.ErrorContains(t, err, "not running")
}

// The machines here run cgroup v1 or v2; these fixture trees are copies of
// the files each version shows (the container tests read the real one).
func TestCgroupV1AndV2(t *testing.T) {
	pid := func() int { return 42 }
	v1, err := Cgroup{PID: pid, ProcRoot: "testdata/v1/proc", SysRoot: "testdata/v1/sys"}.Read(context.Background())
	require.NoError(t, err)
	assert.Equal(t, map[string]float64{"cgroup_usage": 104857600, "cgroup_working_set": 104857600 - 10485760, "cgroup_oom_kills": 2}, v1)
	v2, err := Cgroup{PID: pid, ProcRoot: "testdata/v2/proc", SysRoot: "testdata/v2/sys"}.Read(context.Background())
	require.NoError(t, err)
	assert.Equal(t, map[string]float64{"cgroup_usage": 209715200, "cgroup_working_set": 209715200 - 20971520, "cgroup_oom_kills": 1}, v2)
	_, err = Cgroup{PID: func() int { return 7 }, ProcRoot: "testdata/v1/proc"}.Read(context.Background())
	assert.ErrorContains(t, err, "cgroup")
}

func TestCgroupOfThisProcess(t *testing.T) {
	got, err := Cgroup{PID: os.Getpid}.Read(context.Background())
	require.NoError(t, err, "this machine's cgroup must be readable: the soak's cgroup probe depends on it")
	assert.Positive(t, got["cgroup_usage"])
}

func TestMetricsRenamesGauges(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 5.0e+08")
		fmt.Fprintln(w, "# TYPE go_memstats_heap_inuse_bytes gauge\ngo_memstats_heap_inuse_bytes 3e8")
		fmt.Fprintln(w, "# TYPE relay_smaps_anon_kb gauge\nrelay_smaps_anon_kb 1000")
	}))
	defer srv.Close()
	got, err := Metrics{URL: srv.URL, Names: []string{"process_resident_memory_bytes", "go_memstats_heap_inuse_bytes", "relay_smaps_anon_kb", "relay_malloc_arena_bytes"}}.Read(context.Background())
	require.NoError(t, err)
	assert.Equal(t, map[string]float64{"rss": 5e8, "heap_inuse": 3e8, "relay_smaps_anon_kb": 1024000}, got)
	_, err = Metrics{URL: srv.URL, Names: []string{"nothing_here"}}.Read(context.Background())
	assert.ErrorContains(t, err, "serves none of")
	_, err = Metrics{URL: "http://127.0.0.1:1/metrics", Names: []string{"x"}}.Read(context.Background())
	assert.ErrorContains(t, err, "metrics probe")
}

// This process's own collector, served by client_golang as a Go relay
// serves it: the estimate must be the runtime's live heap.
func TestLiveHeapReadsThisProcess(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(50))
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector())
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	kept := make([][]byte, 64) // 64 MiB live, so the stacks' and globals' share is small beside it
	for i := range kept {
		kept[i] = make([]byte, 1<<20)
	}
	runtime.GC()
	got, err := LiveHeap{URL: srv.URL, Goal: "go_memstats_next_gc_bytes", Percent: "go_gc_gogc_percent"}.Read(context.Background())
	require.NoError(t, err)
	live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(live)
	runtime.KeepAlive(kept)
	want := float64(live[0].Value.Uint64())
	require.Greater(t, want, float64(64<<20))
	assert.InDelta(t, want, got["live_heap"], want*0.05, "goal / 1.5 at GOGC=50")
}

func TestLiveHeapScalesByGOGC(t *testing.T) {
	gogc := "50"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "# TYPE go_memstats_next_gc_bytes gauge\ngo_memstats_next_gc_bytes 3e8")
		if gogc != "" {
			fmt.Fprintln(w, "# TYPE go_gc_gogc_percent gauge\ngo_gc_gogc_percent "+gogc)
		}
	}))
	defer srv.Close()
	p := LiveHeap{URL: srv.URL, Goal: "go_memstats_next_gc_bytes", Percent: "go_gc_gogc_percent"}
	got, err := p.Read(context.Background())
	require.NoError(t, err)
	assert.InDelta(t, 2e8, got["live_heap"], 1)
	gogc = "" // an older client_golang serves no GOGC: the default, 100
	got, err = p.Read(context.Background())
	require.NoError(t, err)
	assert.InDelta(t, 1.5e8, got["live_heap"], 1)
	gogc = "-1"
	_, err = p.Read(context.Background())
	assert.ErrorContains(t, err, "collection off")
	_, err = LiveHeap{URL: srv.URL, Goal: "nothing_here"}.Read(context.Background())
	assert.ErrorContains(t, err, "does not serve nothing_here")
}

func TestCPUReadsThisProcess(t *testing.T) {
	p := CPU{PID: os.Getpid}
	before, err := p.Read(context.Background())
	require.NoError(t, err)
	// Burn a little CPU: the reading must move.
	deadline := time.Now().Add(300 * time.Millisecond)
	x := 0
	for time.Now().Before(deadline) {
		x++
	}
	after, err := p.Read(context.Background())
	require.NoError(t, err)
	assert.Greater(t, after["cpu_seconds"], before["cpu_seconds"], "300 ms of spinning (%d loops) shows in utime", x)
	assert.Less(t, after["cpu_seconds"]-before["cpu_seconds"], 5.0)
}

func TestCPUCommandNameWithParentheses(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "7"), 0o755))
	stat := "7 (relay (x) y) S 1 7 7 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 12 0 100 1000 10 18446744073709551615\n"
	require.NoError(t, os.WriteFile(filepath.Join(root, "7", "stat"), []byte(stat), 0o644))
	got, err := CPU{PID: func() int { return 7 }, Root: root}.Read(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 3.0, got["cpu_seconds"], "utime 250 + stime 50 ticks")
	assert.Equal(t, 0.5, got["cpu_system_seconds"], "stime 50 ticks")

	require.NoError(t, os.WriteFile(filepath.Join(root, "7", "stat"), []byte("7 (short) S 1"), 0o644))
	_, err = CPU{PID: func() int { return 7 }, Root: root}.Read(context.Background())
	assert.ErrorContains(t, err, "fields after the command name")
}

// Series counts every family's label sets, keeps the first scrape's, and
// names the families that grew: a per-client metric labelled by user
// agent, as indigo's are.
func TestSeriesNamesTheFamiliesThatGrew(t *testing.T) {
	reg := prometheus.NewRegistry()
	sent := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "events_sent_counter"}, []string{"remote_addr", "user_agent"})
	steady := prometheus.NewGauge(prometheus.GaugeOpts{Name: "steady"})
	reg.MustRegister(sent, steady)
	sent.WithLabelValues("10.0.0.1", "a").Inc()
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	s := &Series{URL: srv.URL}
	assert.False(t, s.Rebase(), "nothing scraped to make a baseline of")
	got, err := s.Read(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 2.0, got["relay_metric_series"])
	for i := range 5 {
		sent.WithLabelValues("10.0.0.1", fmt.Sprint("client/", i)).Inc()
	}
	got, err = s.Read(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 7.0, got["relay_metric_series"])
	first, last, grown := s.Grown()
	assert.Equal(t, 2, first)
	assert.Equal(t, 7, last)
	assert.Equal(t, []FamilySeries{{Family: "events_sent_counter", First: 1, Latest: 6}}, grown, "the steady family did not grow")
	assert.True(t, s.Rebase())
	sent.WithLabelValues("10.0.0.1", "late").Inc()
	_, err = s.Read(context.Background())
	require.NoError(t, err)
	assert.False(t, s.Rebase(), "once: the end of warm-up")
	first, last, grown = s.Grown()
	assert.Equal(t, 7, first, "counted from the rebase")
	assert.Equal(t, 8, last)
	assert.Equal(t, []FamilySeries{{Family: "events_sent_counter", First: 6, Latest: 7}}, grown)
	srv.Close()
	_, err = s.Read(context.Background())
	assert.ErrorContains(t, err, "series probe")
}
