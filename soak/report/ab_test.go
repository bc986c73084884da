package report

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/relaysoak/relaysoak/soak/rundir"
	"github.com/relaysoak/relaysoak/soak/verdict"
)

func TestABVerdictIsTheComparisons(t *testing.T) {
	flat := summary("x/A", verdict.Pass, 5, 2, 8)
	for _, c := range []struct {
		name string
		a, b Summary
		want verdict.Verdict
	}{
		{"B leaks more", flat, summary("x/B", verdict.Leak, 245, 225, 270), verdict.Leak},
		{"B fixes A's leak", summary("x/A", verdict.Leak, 245, 225, 270), summary("x/B", verdict.Pass, 5, 2, 8), verdict.Pass},
		{"both leak alike", summary("x/A", verdict.Leak, 240, 225, 255), summary("x/B", verdict.Leak, 245, 230, 260), verdict.Pass},
		{"B too short to judge", flat, Summary{RunID: "x/B", Judged: verdict.Report{Result: verdict.Result{Verdict: verdict.Inconclusive, Reason: "short"}}}, verdict.Inconclusive},
		{"A crashed", func() Summary { s := flat; s.Judged.Verdict = verdict.Crashed; return s }(), summary("x/B", verdict.Pass, 5, 2, 8), verdict.Crashed},
	} {
		t.Run(c.name, func(t *testing.T) {
			ab := NewAB("x", c.a, c.b, "a", "b", nil)
			assert.Equal(t, c.want, ab.Verdict, ab.Comparison.Sentence)
		})
	}
}

// WriteAB renders the comparison from the arms' own sample files: one
// plot of both, a report that leads with the difference, a verdict file
// CI can read and a junit case that fails on B's extra growth.
func TestWriteABRendersBothArms(t *testing.T) {
	dir := t.TempDir()
	for arm, slope := range map[string]float64{"a": 0, "b": 600} {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, arm), 0o755))
		f, err := os.Create(filepath.Join(dir, arm, rundir.Samples))
		require.NoError(t, err)
		for i := 0; i <= 360; i++ {
			el := float64(i) * 10
			b, _ := json.Marshal(map[string]any{"elapsed_s": el, "signals": map[string]float64{rundir.SignalRssAnon: (500 + slope*el/3600) * (1 << 20)}})
			f.Write(append(b, '\n'))
		}
		f.Close()
	}
	ab := NewAB("x", summary("x/A", verdict.Pass, 0.5, -1, 2), summary("x/B", verdict.Leak, 600, 590, 610), "a", "b",
		[]string{"lag diverges (p99 A 80 ms, B 2400 ms)"})
	require.NoError(t, WriteAB(dir, ab))

	md, err := os.ReadFile(filepath.Join(dir, rundir.Report))
	require.NoError(t, err)
	assert.Contains(t, string(md), "# relaysoak A/B x — LEAK")
	assert.Contains(t, string(md), "B (x/B) grows 600 ± 10 MiB/h more than A (x/A)")
	assert.Contains(t, string(md), "lag diverges")
	assert.Contains(t, string(md), "[a/report.md](a/report.md)")
	assert.NotContains(t, string(md), "no plot")
	st, err := os.Stat(filepath.Join(dir, rundir.Plot))
	require.NoError(t, err)
	assert.Greater(t, st.Size(), int64(10_000), "a plot with two series")

	var v struct {
		Verdict  verdict.Verdict `json:"verdict"`
		Fairness []string        `json:"fairness"`
		B        struct {
			RunID string `json:"run_id"`
		} `json:"b"`
	}
	b, err := os.ReadFile(filepath.Join(dir, rundir.Verdict))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &v))
	assert.Equal(t, verdict.Leak, v.Verdict)
	assert.Len(t, v.Fairness, 1)
	assert.Equal(t, "x/B", v.B.RunID)
	j, err := os.ReadFile(filepath.Join(dir, rundir.JUnit))
	require.NoError(t, err)
	assert.Contains(t, string(j), `failures="1"`)
	assert.Contains(t, string(j), `name="B against A"`)

	// Missing samples: the report is still written, and says why no plot.
	empty := t.TempDir()
	require.NoError(t, WriteAB(empty, ab))
	md, err = os.ReadFile(filepath.Join(empty, rundir.Report))
	require.NoError(t, err)
	assert.Contains(t, string(md), "no plot:")
}
