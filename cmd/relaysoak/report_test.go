package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/relaysoak/relaysoak/soak/report"
	"github.com/relaysoak/relaysoak/soak/trend"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runDir writes a run directory holding a generated trace as samples.jsonl,
// as a soak killed before its report would leave it.
func runDir(t *testing.T, root, id string, sp trend.Spec, seed int64) string {
	t.Helper()
	dir := filepath.Join(root, id)
	require.NoError(t, os.MkdirAll(dir, 0o755))
	f, err := os.Create(filepath.Join(dir, report.SamplesFile))
	require.NoError(t, err)
	defer f.Close()
	enc := json.NewEncoder(f)
	for _, p := range sp.Generate(seed).Series {
		el := p.T
		require.NoError(t, enc.Encode(trend.Sample{ElapsedS: &el, Signals: map[string]float64{trend.SignalRssAnon: p.Bytes}}))
	}
	return dir
}

// stdout captures what fn prints.
func stdout(t *testing.T, fn func() int) (string, int) {
	t.Helper()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	old := os.Stdout
	os.Stdout = w
	code := fn()
	os.Stdout = old
	require.NoError(t, w.Close())
	out, err := io.ReadAll(r)
	require.NoError(t, err)
	return string(out), code
}

func TestReportWithBaseline(t *testing.T) {
	root := t.TempDir()
	healthy := trend.Spec{Duration: 2 * time.Hour, BaseMiB: 300, WarmupMiB: 600, WarmupTau: 8 * time.Minute, NoiseMiB: 4}
	leaking := healthy
	leaking.LeakMiBPerHour = 240
	old := runDir(t, root, "old", healthy, 1)
	cur := runDir(t, root, "new", leaking, 2)

	out, code := stdout(t, func() int { return dispatch([]string{"report", old}) })
	require.Equal(t, exitOK, code, out)

	out, code = stdout(t, func() int { return dispatch([]string{"report", "--baseline", old, cur}) })
	assert.Equal(t, exitLeak, code, "the status is still this run's verdict")
	assert.Regexp(t, `(?m)^LEAK: rss_anon grows`, out)
	assert.Regexp(t, `(?m)^B \(new\) grows 2\d\d ± [\d.]+ MiB/h more than A \(old\)$`, out)

	md, err := os.ReadFile(filepath.Join(cur, report.ReportFile))
	require.NoError(t, err)
	assert.Contains(t, string(md), "## Compared with old")
	assert.Contains(t, string(md), "| verdict | PASS | LEAK |")

	// Rebuilding without --baseline keeps the comparison verdict.json holds.
	_, code = stdout(t, func() int { return dispatch([]string{"report", cur}) })
	assert.Equal(t, exitLeak, code)
	md, err = os.ReadFile(filepath.Join(cur, report.ReportFile))
	require.NoError(t, err)
	assert.Contains(t, string(md), "## Compared with old")
}

func TestReportWithAMissingBaseline(t *testing.T) {
	root := t.TempDir()
	cur := runDir(t, root, "new", trend.Spec{Duration: time.Hour, BaseMiB: 300, NoiseMiB: 4}, 3)
	_, code := stdout(t, func() int { return dispatch([]string{"report", "--baseline", filepath.Join(root, "nope"), cur}) })
	assert.Equal(t, exitBadInput, code)
}
