package report

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/relaysoak/relaysoak/replay"
	"github.com/relaysoak/relaysoak/soak/heapdiff"
	"github.com/relaysoak/relaysoak/soak/leaks"
	"github.com/relaysoak/relaysoak/soak/rundir"
	"github.com/relaysoak/relaysoak/soak/verdict"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// summary is a run judged with the given slope and interval.
func summary(id string, v verdict.Verdict, slope, lo, hi float64) Summary {
	return Summary{RunID: id, Relay: "relaysoak/indigo-relay:v0", Hosts: 50, Rate: 50, Duration: time.Hour, Delivery: 0.999,
		LagP50Ms: 12, LagP99Ms: 80, Judged: verdict.Report{CarriedBy: rundir.SignalRssAnon, Result: verdict.Result{
			Verdict: v, Reason: "r", JudgedPoints: 300, SlopeMiBPerHour: slope, SlopeCIMiBPerHour: [2]float64{lo, hi},
			CILevel: 0.99, GateMiBPerHour: 10, LevelMiB: 900}}}
}

func TestCompareALeakAgainstAFlatBaseline(t *testing.T) {
	c := Compare(summary("a", verdict.Pass, 5, 2, 8), summary("b", verdict.Leak, 245, 225, 270))
	require.True(t, c.Comparable)
	assert.InDelta(t, 240, c.DiffMiBPerHour, 1e-9)
	// lower: 240 − √(20² + 3²); upper: 240 + √(25² + 3²).
	assert.InDelta(t, 219.78, c.DiffCI[0], 0.01)
	assert.InDelta(t, 265.18, c.DiffCI[1], 0.01)
	assert.True(t, c.Significant)
	assert.True(t, c.Material)
	assert.Equal(t, "B (b) grows 240 ± 23 MiB/h more than A (a)", c.Sentence)
	assert.Empty(t, c.Caveats)
	assert.InDelta(t, 0.99, c.CILevel, 1e-9)

	md := c.Markdown()
	assert.Contains(t, md, "**B (b) grows 240 ± 23 MiB/h more than A (a).**")
	assert.Contains(t, md, "| verdict | PASS | LEAK |")
	assert.Contains(t, md, "| slope | 5.0 MiB/h (99% CI 2.0 to 8.0), rss_anon | 245 MiB/h (99% CI 225 to 270), rss_anon |")
	assert.Contains(t, md, "B − A: +240 MiB/h (99% CI 220 to 265)")
}

func TestCompareAFixAgainstALeakingBaseline(t *testing.T) {
	c := Compare(summary("old", verdict.Leak, 245, 225, 270), summary("fixed", verdict.Pass, 5, 2, 8))
	assert.True(t, c.Material)
	assert.Equal(t, "B (fixed) grows 240 ± 23 MiB/h less than A (old)", c.Sentence)
}

func TestCompareNoSignificantDifference(t *testing.T) {
	c := Compare(summary("a", verdict.Pass, 3, -5, 11), summary("b", verdict.Pass, 6, -4, 15))
	require.True(t, c.Comparable)
	assert.False(t, c.Significant)
	assert.False(t, c.Material)
	assert.Less(t, c.DiffCI[0], 0.0)
	assert.Greater(t, c.DiffCI[1], 0.0)
	assert.Equal(t, "no significant difference between B (b) and A (a): B − A = +3.0 ± 12 MiB/h", c.Sentence)
	assert.Contains(t, c.Markdown(), "**No significant difference")
}

func TestCompareSignificantButUnderTheGate(t *testing.T) {
	c := Compare(summary("a", verdict.Pass, 1, 0.5, 1.5), summary("b", verdict.Pass, 4, 3.5, 4.5))
	assert.True(t, c.Significant)
	assert.False(t, c.Material)
	assert.Contains(t, c.Sentence, "grows 3.0 ± 0.7 MiB/h more than A (a), under the 10 MiB/h effect-size gate")
}

func TestCompareWithoutASlope(t *testing.T) {
	b := summary("b", verdict.Inconclusive, 0, 0, 0)
	b.Judged.JudgedPoints = 0
	b.Judged.Reason = "12 min after warm-up, 20 needed"
	c := Compare(summary("a", verdict.Pass, 5, 2, 8), b)
	assert.False(t, c.Comparable)
	assert.Equal(t, "no comparison of slopes: B (b) has no fitted slope (INCONCLUSIVE: 12 min after warm-up, 20 needed)", c.Sentence)
	md := c.Markdown()
	assert.Contains(t, md, "| slope | 5.0 MiB/h (99% CI 2.0 to 8.0), rss_anon | — |")
	assert.NotContains(t, md, "B − A")
}

func TestCompareNamesWhatDiffersBesidesTheBuild(t *testing.T) {
	a := summary("a", verdict.Pass, 5, 2, 8)
	b := summary("b", verdict.Crashed, 300, 250, 350)
	b.Hosts, b.Rate = 2750, 700
	b.Judged.CarriedBy = rundir.SignalVmRSS
	c := Compare(a, b)
	require.Len(t, c.Caveats, 3)
	assert.Contains(t, c.Caveats[0], "the load differs (50 hosts × 50 frames/s, 60 min against 2750 hosts × 700 frames/s, 60 min)")
	assert.Contains(t, c.Caveats[1], "different signals")
	assert.Contains(t, c.Caveats[2], "crashed")
	assert.Contains(t, c.Markdown(), "- the load differs")
}

// judged generates a trace and judges it as a soak would.
func judged(t *testing.T, id string, sp verdict.Spec, seed int64) Summary {
	t.Helper()
	tr := sp.Generate(seed)
	rep, err := verdict.JudgeSignals(map[string]verdict.Series{rundir.SignalRssAnon: tr.Series}, tr.Ctx, verdict.Config{})
	require.NoError(t, err)
	require.Equal(t, tr.Want, rep.Verdict, "%s (seed %d)", sp.Name, seed)
	return Summary{RunID: id, Hosts: 50, Rate: 50, Duration: sp.Duration, Delivery: 1, Judged: rep}
}

func TestCompareGeneratedRuns(t *testing.T) {
	healthy := verdict.Spec{Name: "healthy", Duration: 3 * time.Hour, BaseMiB: 200, WarmupMiB: 900, WarmupTau: 10 * time.Minute,
		SawtoothMiB: 60, SawtoothPeriod: 2 * time.Minute, NoiseMiB: 5}
	leaking := healthy
	leaking.Name, leaking.LeakMiBPerHour = "leaking", 240

	t.Run("a leak against a healthy baseline", func(t *testing.T) {
		c := Compare(judged(t, "a", healthy, 11), judged(t, "b", leaking, 12))
		require.True(t, c.Comparable)
		assert.True(t, c.Material, c.Sentence)
		assert.True(t, c.DiffCI[0] <= 240 && 240 <= c.DiffCI[1], "the true difference, 240, is in %v", c.DiffCI)
		assert.Regexp(t, `^B \(b\) grows 2\d\d ± [\d.]+ MiB/h more than A \(a\)$`, c.Sentence)
	})
	t.Run("two healthy runs", func(t *testing.T) {
		c := Compare(judged(t, "a", healthy, 21), judged(t, "b", healthy, 22))
		require.True(t, c.Comparable)
		assert.False(t, c.Material, c.Sentence)
		assert.Less(t, c.DiffCI[1]-c.DiffCI[0], 20.0, "healthy runs of 3 h pin the difference down")
	})
	t.Run("two runs of the same leak", func(t *testing.T) {
		c := Compare(judged(t, "a", leaking, 31), judged(t, "b", leaking, 32))
		assert.False(t, c.Material, c.Sentence)
	})
}

func TestWriteRendersTheComparisonAndSections(t *testing.T) {
	dir := t.TempDir()
	s := summary("b", verdict.Leak, 245, 225, 270)
	c := Compare(summary("a", verdict.Pass, 5, 2, 8), s)
	s.Comparison = &c
	s.Sections = []Section{{Title: "Leak sites", Markdown: "3 leaks.\n"}, {Title: "Empty", Markdown: " \n"}}
	require.NoError(t, Write(dir, s))

	md, err := os.ReadFile(filepath.Join(dir, rundir.Report))
	require.NoError(t, err)
	assert.Contains(t, string(md), "\n## Compared with a\n\n**B (b) grows 240 ± 23 MiB/h more than A (a).**")
	assert.Contains(t, string(md), "\n## Leak sites\n\n3 leaks.\n")
	assert.NotContains(t, string(md), "## Empty", "an empty section is left out")

	var back Summary
	b, err := os.ReadFile(filepath.Join(dir, rundir.Verdict))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &back))
	require.NotNil(t, back.Comparison)
	assert.Equal(t, c.Sentence, back.Comparison.Sentence)
	assert.Equal(t, s.Sections, back.Sections)
}

// A run's findings are kept in verdict.json as data: read back, they
// render the same report, every section in its place.
func TestFindingsRenderTheSameReportFromVerdictJSON(t *testing.T) {
	dir := t.TempDir()
	s := summary("f", verdict.Pass, 1, -1, 3)
	_, res, plan := attributionRun(t, 2)
	s.Findings = Findings{
		Load: &Load{Replay: replay.Config{Rate: 100, Window: time.Minute, Weights: replay.Weights{Kind: "zipf", S: 1.2}},
			Report: replay.Report{Windows: []replay.Window{{Index: 0, End: time.Minute, Frames: 5000, Target: 6000, Rate: 83.3}}}, Err: "stopped"},
		HeapGrowth:  &heapdiff.Growth{Span: time.Hour, TotalBefore: 100 << 20, TotalAfter: 150 << 20, Top: []heapdiff.Func{{Name: "main.keep", Flat: 50 << 20, Cum: 50 << 20, FlatAfter: 60 << 20}}},
		LeakSites:   &leaks.Report{Leaks: 3, Stacks: 1, Sites: []leaks.Site{{Count: 3, Share: 1, Where: leaks.Frame{Func: "resolve"}}}},
		Consumers:   &ConsumerLoad{Consumers: 10, Churn: time.Minute},
		Attribution: &Attribution{Signal: "live_heap", File: rundir.Attribution, Result: res, Plan: plan, PlotErr: "no disk"},
		OwnCost:     &OwnCost{FromS: 60, ToS: 600, CPUShare: 0.05, SystemShare: -1, RSSEndMiB: 200, PeakMiB: 210, JudgeErr: "too short"},
		Accounting:  &Accounting{Written: 100, Sent: 90, Delivered: 88, LostInRelay: 2, NeverSentAway: 7, Trimmed: 3},
	}
	s.DarkHosts, s.DarkAfter = []DarkHost{{Host: "pds0001.test", StartS: 90, Duration: time.Minute, Reason: DarkUnsubscribed, CommitsLost: 7, LogLines: []string{"dialing failed"}}}, time.Minute
	require.NoError(t, Write(dir, s))
	md, err := os.ReadFile(filepath.Join(dir, rundir.Report))
	require.NoError(t, err)
	for _, title := range []string{"## " + AccountingTitle, "## " + DarkHostsTitle, "## Load\n", "## Heap growth", "## Leak sites", "## Consumers", "## " + AttributionTitle, "## Rig\n"} {
		assert.Contains(t, string(md), title)
	}
	var back Summary
	b, err := os.ReadFile(filepath.Join(dir, rundir.Verdict))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, string(md), Markdown(back), "verdict.json renders report.md again")
}

// Two runs judged on their live heaps' floors are compared on what they
// keep, and the sentence says so.
func TestCompareWhatTheyKeep(t *testing.T) {
	a, b := summary("a", verdict.Pass, 5, 2, 8), summary("b", verdict.Leak, 245, 225, 270)
	a.Judged.CarriedBy = verdict.FloorsSignal(rundir.SignalLiveHeap)
	b.Judged.CarriedBy = verdict.FloorsSignal(rundir.SignalLiveHeap)
	c := Compare(a, b)
	assert.Equal(t, "B (b) keeps 240 ± 23 MiB/h more than A (a)", c.Sentence)
	assert.Empty(t, c.Caveats)
}
