package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/relaysoak/relaysoak/soak/attribute"
	"github.com/relaysoak/relaysoak/soak/rundir"
	"github.com/relaysoak/relaysoak/soak/verdict"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runDir writes a run directory holding a generated trace as samples.jsonl,
// as a soak killed before its report would leave it.
func runDir(t *testing.T, root, id string, sp verdict.Spec, seed int64) string {
	t.Helper()
	dir := filepath.Join(root, id)
	require.NoError(t, os.MkdirAll(dir, 0o755))
	f, err := os.Create(filepath.Join(dir, rundir.Samples))
	require.NoError(t, err)
	defer f.Close()
	enc := json.NewEncoder(f)
	for _, p := range sp.Generate(seed).Series {
		el := p.T
		require.NoError(t, enc.Encode(rundir.Sample{ElapsedS: &el, Signals: map[string]float64{rundir.SignalRssAnon: p.Bytes}}))
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
	healthy := verdict.Spec{Duration: 2 * time.Hour, BaseMiB: 300, WarmupMiB: 600, WarmupTau: 8 * time.Minute, NoiseMiB: 4}
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

	md, err := os.ReadFile(filepath.Join(cur, rundir.Report))
	require.NoError(t, err)
	assert.Contains(t, string(md), "## Compared with old")
	assert.Contains(t, string(md), "| verdict | PASS | LEAK |")

	// Rebuilding without --baseline keeps the comparison verdict.json holds.
	_, code = stdout(t, func() int { return dispatch([]string{"report", cur}) })
	assert.Equal(t, exitLeak, code)
	md, err = os.ReadFile(filepath.Join(cur, rundir.Report))
	require.NoError(t, err)
	assert.Contains(t, string(md), "## Compared with old")
}

func TestReportWithAMissingBaseline(t *testing.T) {
	root := t.TempDir()
	cur := runDir(t, root, "new", verdict.Spec{Duration: time.Hour, BaseMiB: 300, NoiseMiB: 4}, 3)
	_, code := stdout(t, func() int { return dispatch([]string{"report", "--baseline", filepath.Join(root, "nope"), cur}) })
	assert.Equal(t, exitBadInput, code)
}

// An attribution run's section is fitted afresh by `report`, from the plan
// its attribution.json holds.
func TestReportRefitsAnAttributionRun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "attr")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	plan, err := attribute.NewPlan(attribute.PlanConfig{PhaseLength: 2 * time.Minute, Warmup: 2 * time.Minute})
	require.NoError(t, err)
	// What the run wrote before this fit existed: the plan, no result.
	require.NoError(t, attribute.WriteJSON(filepath.Join(dir, rundir.Attribution), attribute.Result{}, plan))
	f, err := os.Create(filepath.Join(dir, rundir.Samples))
	require.NoError(t, err)
	enc := json.NewEncoder(f)
	for s := 10.0; s <= plan.Total().Seconds(); s += 10 {
		el, frames := s, 200*s
		require.NoError(t, enc.Encode(rundir.Line{Sample: rundir.Sample{ElapsedS: &el, FramesSent: &frames,
			Signals: map[string]float64{rundir.SignalRssAnon: 300 << 20}},
			Context: map[string]float64{"commits_delivered": frames, "plc_requests": s / 2, "host_subscribes": s / 30, "crowd_disconnects": s / 20}}))
	}
	require.NoError(t, f.Close())

	out, _ := stdout(t, func() int { return dispatch([]string{"report", dir}) })
	md, err := os.ReadFile(filepath.Join(dir, rundir.Report))
	require.NoError(t, err, out)
	assert.Contains(t, string(md), "## Leak attribution")
	b, err := os.ReadFile(filepath.Join(dir, rundir.Attribution))
	require.NoError(t, err)
	var doc struct {
		Points int `json:"points"`
	}
	require.NoError(t, json.Unmarshal(b, &doc))
	assert.Positive(t, doc.Points, "attribution.json holds the new fit")

	// A relay that settled late: the fit starts where the operator says.
	out, _ = stdout(t, func() int { return dispatch([]string{"report", "--attribution-warmup", "5m", dir}) })
	md, err = os.ReadFile(filepath.Join(dir, rundir.Report))
	require.NoError(t, err, out)
	assert.Contains(t, string(md), "The fit starts at 5m0s, past the plan's 2m0s warm-up")
	assert.Contains(t, string(md), "from 5 to 24 min")
	assert.Equal(t, exitUsage, dispatch([]string{"report", "--attribution-warmup", "1s", dir}), "less than a minute is a slip")
}

// A run directory recorded by an earlier relaysoak (a 3-minute soak of the
// pinned indigo relay, testdata/recorded-run) reads the same today:
// `relaysoak report` judges its samples again to the verdict, figures and
// report sections it was written with. A change to what the verdict judges
// updates this fixture on purpose.
func TestReportReadsARecordedRun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "recorded")
	require.NoError(t, os.CopyFS(dir, os.DirFS(filepath.Join("testdata", "recorded-run"))))
	readVerdict := func(path string) map[string]any {
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		var v map[string]any
		require.NoError(t, json.Unmarshal(b, &v))
		return v
	}
	was := readVerdict(filepath.Join(dir, rundir.Verdict))
	out, code := stdout(t, func() int { return dispatch([]string{"report", dir}) })
	assert.Equal(t, exitInconclusive, code, out)
	now := readVerdict(filepath.Join(dir, rundir.Verdict))
	assert.Equal(t, was, now, "verdict.json rebuilt from the recorded files")
	md, err := os.ReadFile(filepath.Join(dir, rundir.Report))
	require.NoError(t, err)
	wasMD, err := os.ReadFile(filepath.Join("testdata", "recorded-run", rundir.Report))
	require.NoError(t, err)
	assert.Equal(t, string(wasMD), string(md), "report.md rebuilt as it was written")
}
