package soak

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/relaysoak/relaysoak/soak/report"
	"github.com/relaysoak/relaysoak/soak/rundir"
	"github.com/relaysoak/relaysoak/soak/verdict"
)

// Growth over the judged window is divided by each factor's events over
// the same window, as the samples counted them; a factor that did not
// happen gives no ratio, and only growth verdicts get any.
func TestGrowthPerEvent(t *testing.T) {
	dir := t.TempDir()
	w, err := rundir.OpenAppender(filepath.Join(dir, rundir.Samples))
	require.NoError(t, err)
	for s := 0.0; s <= 600; s += 10 {
		el := s
		require.NoError(t, w.Write(rundir.Line{Sample: rundir.Sample{ElapsedS: &el, Signals: map[string]float64{rundir.SignalRssAnon: 1 << 30}},
			Context: map[string]float64{rundir.CommitsDelivered: 100 * s, rundir.PLCRequests: s, rundir.CrowdDisconnects: float64(int(s / 60))}}))
	}
	require.NoError(t, w.Close())

	// 36 MiB/h over [100 s, 500 s]: 4 MiB grown.
	leak := verdict.Result{Verdict: verdict.Leak, JudgedPoints: 40, SlopeMiBPerHour: 36, WindowStartS: 100, WindowEndS: 500}
	got, gor, err := grewPer(dir, verdict.Report{Result: leak})
	require.NoError(t, err)
	assert.Equal(t, []report.Ratio{
		{Per: "frame", Events: 40000, Each: 4 << 20 / 40000.0},
		{Per: "resolution", Events: 400, Each: 4 << 20 / 400.0},
		{Per: "consumer reconnect", Events: 7, Each: 4 << 20 / 7.0},
	}, got, "no host reconnects were counted: no ratio for them")
	assert.Nil(t, gor, "no goroutines judged")

	// RETAINED: what grew is the OS's view, not the flat floors.
	floors := verdict.Result{Signal: "live_heap_floors", Verdict: verdict.Pass, JudgedPoints: 20, SlopeMiBPerHour: 0.5, WindowStartS: 100, WindowEndS: 500}
	leak.Signal = rundir.SignalRssAnon
	ret := verdict.Report{Result: floors, Signals: []verdict.Result{leak, floors}, Kept: &verdict.Kept{OSView: rundir.SignalRssAnon}}
	ret.Verdict = verdict.Retained
	got, _, err = grewPer(dir, ret)
	require.NoError(t, err)
	require.NotEmpty(t, got)
	assert.InDelta(t, 4<<20/40000.0, got[0].Each, 1e-6)

	// Goroutines that grew 63 an hour over the window: 7 a consumer
	// reconnect; memory was flat, so no bytes per event.
	flat := verdict.Result{Verdict: verdict.Pass, JudgedPoints: 40, SlopeMiBPerHour: 36, WindowStartS: 100, WindowEndS: 500}
	g := verdict.Result{Verdict: verdict.Leak, JudgedPoints: 40, SlopeMiBPerHour: 63, WindowStartS: 100, WindowEndS: 500}
	gl := verdict.Report{Result: flat, Goroutines: &g, MemoryVerdict: verdict.Pass}
	gl.Verdict = verdict.Leak
	got, gor, err = grewPer(dir, gl)
	require.NoError(t, err)
	assert.Nil(t, got, "memory did not grow")
	require.Len(t, gor, 3)
	assert.InDelta(t, 1, gor[2].Each, 1e-9, "63 an hour over 400 s is 7, one a consumer reconnect")

	got, gor, err = grewPer(dir, verdict.Report{Result: flat})
	require.NoError(t, err)
	assert.Nil(t, got, "a PASS retains nothing per event")
	assert.Nil(t, gor)
}
