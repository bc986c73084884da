package report

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaysoak/relaysoak/soak/rundir"
	"github.com/relaysoak/relaysoak/soak/verdict"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writeSamples writes a generated leak trace as the rig's samples.jsonl.
func writeSamples(t *testing.T, dir string, tr verdict.Trace) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, rundir.Samples))
	require.NoError(t, err)
	defer f.Close()
	enc := json.NewEncoder(f)
	for _, p := range tr.Series {
		el := p.T
		require.NoError(t, enc.Encode(rundir.Sample{ElapsedS: &el, Signals: map[string]float64{
			rundir.SignalRssAnon: p.Bytes, rundir.SignalHeapInuse: p.Bytes * 0.6}}))
	}
}

func TestWriteReportForALeak(t *testing.T) {
	dir := t.TempDir()
	tr := verdict.Spec{Name: "leak", Duration: 3 * time.Hour, BaseMiB: 800, WarmupMiB: 400, WarmupTau: 15 * time.Minute,
		LeakMiBPerHour: 290, NoiseMiB: 5}.Generate(1)
	writeSamples(t, dir, tr)
	f, err := os.Open(filepath.Join(dir, rundir.Samples))
	require.NoError(t, err)
	run, err := verdict.ReadSamples(f, "samples.jsonl")
	f.Close()
	require.NoError(t, err)
	judged, err := verdict.JudgeSignals(run.Signals, run.Context, verdict.Config{})
	require.NoError(t, err)
	require.Equal(t, verdict.Leak, judged.Verdict)

	s := Summary{RunID: "test-run", Relay: "relaysoak/indigo-relay:v0", Started: time.Unix(0, 0), Duration: 3 * time.Hour,
		Hosts: 50, Rate: 50, Judged: judged, FramesSent: 540000, CommitsSent: 530000, CommitsOut: 529000, Delivery: 529000.0 / 530000,
		LagP50Ms: 12, LagP99Ms: 80, LogWarnings: map[string]int{"failed handling event": 0}}
	require.NoError(t, Write(dir, s))

	md, err := os.ReadFile(filepath.Join(dir, rundir.Report))
	require.NoError(t, err)
	assert.Regexp(t, `^# relaysoak test-run — LEAK\n\n\*\*LEAK: rss_anon grows 2[89]\d MiB/h`, string(md), "verdict first")
	assert.Contains(t, string(md), "p50 12 ms, p99 80 ms")

	png, err := os.ReadFile(filepath.Join(dir, rundir.Plot))
	require.NoError(t, err)
	assert.Equal(t, "\x89PNG", string(png[:4]))
	assert.NotContains(t, string(md), "no plot")

	var v struct {
		Verdict struct {
			Verdict string  `json:"verdict"`
			Slope   float64 `json:"slope_mib_per_hour"`
		} `json:"verdict"`
	}
	b, err := os.ReadFile(filepath.Join(dir, rundir.Verdict))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &v))
	assert.Equal(t, "LEAK", v.Verdict.Verdict)
	assert.InDelta(t, 290, v.Verdict.Slope, 29)

	var j junitSuites
	b, err = os.ReadFile(filepath.Join(dir, rundir.JUnit))
	require.NoError(t, err)
	require.NoError(t, xml.Unmarshal(b, &j))
	require.Len(t, j.Suites, 1)
	assert.Positive(t, j.Suites[0].Failures, "a LEAK fails the JUnit suite")
	assert.Equal(t, "verdict", j.Suites[0].Cases[0].Name)
}

func TestJUnitInconclusiveIsSkippedAndPassPasses(t *testing.T) {
	for _, c := range []struct {
		v                 verdict.Verdict
		failures, skipped int
	}{{verdict.Pass, 0, 0}, {verdict.Inconclusive, 0, 1}, {verdict.Crashed, 1, 0}} {
		b, err := JUnit(Summary{RunID: "x", Judged: verdict.Report{Result: verdict.Result{Verdict: c.v, Reason: "r"}}})
		require.NoError(t, err)
		var j junitSuites
		require.NoError(t, xml.Unmarshal(b, &j))
		assert.Equal(t, c.failures, j.Suites[0].Failures, fmt.Sprint(c.v))
		assert.Equal(t, c.skipped, j.Suites[0].Skipped, fmt.Sprint(c.v))
	}
}

func TestPlotOfMissingSamplesIsANoteNotAFailure(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, Write(dir, Summary{RunID: "empty", Judged: verdict.Report{Result: verdict.Result{Verdict: verdict.Inconclusive}}}))
	md, err := os.ReadFile(filepath.Join(dir, rundir.Report))
	require.NoError(t, err)
	assert.Contains(t, string(md), "no plot:")
}

// TestMarkdownOfATooShortRun: numbers the judge never computed read "not
// yet", never as zeros; an estimate from too little data says so.
func TestMarkdownOfATooShortRun(t *testing.T) {
	tr := verdict.Spec{Name: "short", Duration: 30 * time.Minute, BaseMiB: 400, WarmupMiB: 800, WarmupTau: 2 * time.Minute,
		LeakMiBPerHour: 290, NoiseMiB: 3}.Generate(3)
	judge := func(upTo time.Duration) string {
		t.Helper()
		var s verdict.Series
		for _, p := range tr.Series {
			if p.T <= upTo.Seconds() {
				s = append(s, p)
			}
		}
		j, err := verdict.JudgeSignals(map[string]verdict.Series{rundir.SignalRssAnon: s}, verdict.Context{}, verdict.Config{})
		require.NoError(t, err)
		require.Equal(t, verdict.Inconclusive, j.Verdict, j.Reason)
		return Markdown(Summary{RunID: "short", Duration: upTo, Judged: j})
	}

	// 40 seconds: five samples, nothing to estimate.
	md := judge(40 * time.Second)
	assert.Contains(t, md, "| slope | not yet (too little data) |")
	assert.Contains(t, md, "| warm-up ended | not yet (too few samples to tell) |")
	assert.Contains(t, md, "| late-window slope | not yet |")
	assert.Contains(t, md, "| growth over the window | not yet |")
	assert.Contains(t, md, "| rss_anon | INCONCLUSIVE | not yet |")
	assert.NotContains(t, md, "0.0 MiB/h (99% CI 0.0 to 0.0)")
	assert.NotContains(t, md, "warm-up ended | 0.0 min")

	// 15 minutes: the warm-up is over and there is an estimate, but too
	// little after it for a verdict.
	md = judge(15 * time.Minute)
	assert.Regexp(t, `\| slope \| \d+\.\d MiB/h \(99% CI \d+\.\d to \d+\.\d\), provisional: too little data to judge \|`, md)
	assert.Regexp(t, `\| warm-up ended \| [4-9]\.\d min \|`, md)
	assert.Contains(t, md, "| late-window slope | not yet |")
	assert.Contains(t, md, "more minutes needed")
}

// Frames lost to a host's history are named beside delivery, with their
// share; a run that lost none has no such row.
func TestMarkdownNamesFramesPastHistory(t *testing.T) {
	s := Summary{RunID: "r", Duration: time.Hour, FramesSent: 1_000_000, CommitsSent: 970_000, CommitsOut: 960_000, Delivery: 0.9897}
	assert.NotContains(t, Markdown(s), "never saw")
	s.PastHistory = 12_345
	assert.Contains(t, Markdown(s), "| frames the relay never saw | 12345 (1.23% of frames sent)")
}

// A relay whose RSS grows while its live heap's floors are flat is
// RETAINED: the headline says which grows and which is flat, JUnit fails
// it, and LOST comes before it.
func TestRetainedHeadlineJUnitAndOutcome(t *testing.T) {
	rss := verdict.Result{Signal: rundir.SignalRssAnon, Verdict: verdict.Leak, JudgedPoints: 300, CILevel: 0.99,
		SlopeMiBPerHour: 120, SlopeCIMiBPerHour: [2]float64{100, 140}}
	floors := verdict.Result{Signal: verdict.FloorsSignal(rundir.SignalLiveHeap), Verdict: verdict.Pass, JudgedPoints: 30, CILevel: 0.99,
		SlopeMiBPerHour: 1.2, SlopeCIMiBPerHour: [2]float64{-3, 5}}
	j := verdict.Report{Result: floors, CarriedBy: floors.Signal, Signals: []verdict.Result{rss, floors},
		Kept: &verdict.Kept{Signal: rundir.SignalLiveHeap, OSView: rundir.SignalRssAnon, Floors: 30}}
	j.Verdict = verdict.Retained
	s := Summary{RunID: "r", Judged: j}

	assert.Equal(t, verdict.Retained, Outcome(s))
	assert.Equal(t, "RETAINED: rss_anon grows +120.0 MiB/h (100 to 140) while what the relay keeps is flat — the live heap's floors +1.2 MiB/h (-3.0 to 5.0): the allocator or runtime holds freed pages, or memory outside the heap grows", Headline(s))
	md := Markdown(s)
	assert.Contains(t, md, "# relaysoak r — RETAINED")
	assert.Contains(t, md, "| what the relay keeps | the floors of live_heap:")
	assert.Contains(t, md, "| the OS's view | rss_anon LEAK: 120.0 MiB/h (99% CI 100.0 to 140.0) |")

	b, err := JUnit(s)
	require.NoError(t, err)
	var ju junitSuites
	require.NoError(t, xml.Unmarshal(b, &ju))
	require.NotEmpty(t, ju.Suites[0].Cases)
	require.NotNil(t, ju.Suites[0].Cases[0].Failure, "RETAINED fails")
	assert.Equal(t, "RETAINED", ju.Suites[0].Cases[0].Failure.Message)

	s.Delivered = &JudgedDelivery{Ratio: 0.9, Min: 0.999, Due: 100, Delivered: 90}
	assert.Equal(t, Lost, Outcome(s), "LOST comes before RETAINED")

	// Before the floors, the OS's view carries the verdict, and the report
	// says why.
	j = verdict.Report{Result: rss, CarriedBy: rundir.SignalRssAnon, Signals: []verdict.Result{rss},
		Kept: &verdict.Kept{Signal: rundir.SignalLiveHeap, OSView: rundir.SignalRssAnon, NotYet: "floors not yet: 2 of the live heap's teeth seen, 4 needed"}}
	s = Summary{RunID: "r", Judged: j}
	assert.Contains(t, Headline(s), "LEAK: rss_anon grows 120 MiB/h")
	assert.Contains(t, Markdown(s), "| what the relay keeps | floors not yet: 2 of the live heap's teeth seen, 4 needed; the verdict rests on rss_anon alone |")
}

// Goroutines that grow make a LEAK whose headline counts them, with
// memory's own verdict beside; JUnit has a case of their own.
func TestGoroutineLeakHeadline(t *testing.T) {
	rss := verdict.Result{Signal: rundir.SignalRssAnon, Verdict: verdict.Pass, Reason: "flat", JudgedPoints: 300, CILevel: 0.99,
		SlopeMiBPerHour: 2, SlopeCIMiBPerHour: [2]float64{-4, 8}}
	g := verdict.Result{Signal: rundir.Goroutines, Verdict: verdict.Leak, JudgedPoints: 300, CILevel: 0.99,
		SlopeMiBPerHour: 400, SlopeCIMiBPerHour: [2]float64{380, 420}, GateMiBPerHour: 104, LevelMiB: 5420}
	j := verdict.Report{Result: rss, CarriedBy: rundir.SignalRssAnon, Signals: []verdict.Result{rss}, Goroutines: &g,
		MemoryVerdict: verdict.Pass, MemoryReason: "flat"}
	j.Verdict, j.Reason = verdict.Leak, "goroutines grow"
	s := Summary{RunID: "g", Judged: j}
	h := Headline(s)
	assert.True(t, strings.HasPrefix(h, "LEAK: the relay's goroutines grow +400 an hour (380 to 420), 5420 at the end · memory: PASS: rss_anon flat"), h)
	assert.Contains(t, Markdown(s), "| goroutines | LEAK: +400 an hour (99% CI 380 to 420; gate 104 an hour), 5420 at the end |")
	b, err := JUnit(s)
	require.NoError(t, err)
	assert.Contains(t, string(b), `name="goroutines"`)
}
