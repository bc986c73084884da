package soak

import (
	"math"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/relaysoak/relaysoak/soak/rundir"
	"github.com/relaysoak/relaysoak/soak/verdict"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestProgressText feeds a series to the live judgement the way the sampler
// does (one judgement per 10-second sample) and checks the progress line at
// fixed times: nothing computed reads "not yet", then an estimate with its
// interval, the warm-up's state and the minutes a verdict still needs.
func TestProgressText(t *testing.T) {
	// Warm-up to 95% at 6 min (τ = 2 min), then a 290 MiB/hour leak.
	tr := verdict.Spec{Name: "progress", Duration: time.Hour, BaseMiB: 400, WarmupMiB: 800, WarmupTau: 2 * time.Minute,
		LeakMiBPerHour: 290, NoiseMiB: 3}.Generate(7)
	total := 90 * time.Minute
	live := verdict.NewLive(720)
	next := 0
	var last *verdict.Result
	at := func(el time.Duration) string {
		t.Helper()
		for next < len(tr.Series) && tr.Series[next].T <= el.Seconds() {
			live.Add(tr.Series[next])
			if r, err := live.Judge(verdict.Context{}, verdict.Config{}); err == nil {
				last = &r
			}
			next++
		}
		frames := 700 * el.Seconds()
		l := rundir.Line{Sample: rundir.Sample{Signals: map[string]float64{rundir.SignalRssAnon: tr.Series[next-1].Bytes}, FramesSent: &frames}}
		out := progressText(l, last, nil, el, total)
		t.Logf("%v: %s", el, out)
		return out
	}
	ci := regexp.MustCompile(`slope ([+-]\d+) MiB/h \(99% CI ([+-]\d+) to ([+-]\d+)\)`)
	need := regexp.MustCompile(`verdict needs ~(\d+) more min`)
	num := func(s string) float64 { v, err := strconv.ParseFloat(s, 64); require.NoError(t, err); return v }

	// Before the first judgement.
	assert.Contains(t, progressText(rundir.Line{}, nil, nil, 0, total), "slope not yet · warm-up not yet known · verdict not yet")

	// 30 s: four samples, no slope yet; no zeros pretending to be numbers.
	l := at(30 * time.Second)
	assert.Contains(t, l, "slope not yet")
	assert.Contains(t, l, "warm-up not yet known")
	assert.NotContains(t, l, "+0 MiB/h")
	m := need.FindStringSubmatch(l)
	require.NotNil(t, m, l)
	assert.InDelta(t, 20, num(m[1]), 1, "a verdict needs the minimum window: %s", l)

	// 3 min: enough points for an estimate (with its interval), too few
	// to tell the warm-up.
	l = at(3 * time.Minute)
	c := ci.FindStringSubmatch(l)
	require.NotNil(t, c, l)
	assert.LessOrEqual(t, num(c[2]), num(c[1]))
	assert.GreaterOrEqual(t, num(c[3]), num(c[1]))
	assert.Contains(t, l, "warm-up not yet known")
	require.Regexp(t, need, l)

	// 15 min: the warm-up is over, found at about 6 min; still too little
	// data after it for a verdict, and the line says how much more.
	l = at(15 * time.Minute)
	wm := regexp.MustCompile(`warm-up ended at (\d+) min`).FindStringSubmatch(l)
	require.NotNil(t, wm, l)
	assert.InDelta(t, 6, num(wm[1]), 2, l)
	m = need.FindStringSubmatch(l)
	require.NotNil(t, m, l)
	assert.InDelta(t, num(wm[1])+20-15, num(m[1]), 2, "minutes to the minimum window after warm-up: %s", l)
	assert.Regexp(t, ci, l)

	// 40 min: LEAK, with the leak's slope inside the interval shown.
	l = at(40 * time.Minute)
	assert.Contains(t, l, "LEAK so far", l)
	c = ci.FindStringSubmatch(l)
	require.NotNil(t, c, l)
	assert.InDelta(t, 290, num(c[1]), 0.15*290, l)
	assert.Contains(t, l, "50m0s left")
	assert.Contains(t, l, "700/s")

	// A verdict that needs longer than the run has left says so.
	r := verdict.Result{Verdict: verdict.Inconclusive, JudgedPoints: 100, CILevel: 0.99, WarmupState: verdict.WarmingUp}
	more := 30.0
	r.NeedMoreMinutes = &more
	assert.Contains(t, judgementText(&r, nil, 10*time.Minute), "warming up · verdict needs ~30 more min (10 left in the run)")
}

// The hosts dark at the latest sample are counted beside delivery, and
// not mentioned when there are none.
func TestProgressTextCountsDarkHosts(t *testing.T) {
	l := rundir.Line{Context: map[string]float64{rundir.DarkHosts: 3}}
	assert.Contains(t, progressText(l, nil, nil, 0, time.Hour), "delivered 0.00% · 3 hosts dark · lag")
	assert.NotContains(t, progressText(rundir.Line{}, nil, nil, 0, time.Hour), "dark")
}

// A relay that serves its live heap: before its teeth the line says
// "floors not yet" beside RSS's slope; then what it keeps comes first, and
// the verdict so far is on it.
func TestProgressTextShowsWhatTheRelayKeeps(t *testing.T) {
	rss := verdict.Result{Verdict: verdict.Leak, JudgedPoints: 200, CILevel: 0.99, SlopeMiBPerHour: 60, SlopeCIMiBPerHour: [2]float64{40, 80},
		WarmupState: verdict.WarmupEnded, WarmupEndS: 600}
	notYet := judgementText(&rss, &verdict.KeptView{NotYet: "floors not yet: 2 of 4 teeth"}, time.Hour)
	assert.Contains(t, notYet, "slope +60 MiB/h (99% CI +40 to +80) · floors not yet: 2 of 4 teeth")
	assert.Contains(t, notYet, "LEAK so far", "without floors, RSS's verdict")

	kept := verdict.KeptView{Verdict: verdict.Retained,
		Floors: verdict.Result{Verdict: verdict.Pass, JudgedPoints: 30, CILevel: 0.99, SlopeMiBPerHour: 1.5, SlopeCIMiBPerHour: [2]float64{-2, 5}}}
	l := judgementText(&rss, &kept, time.Hour)
	assert.Contains(t, l, "kept +1.5 MiB/h (99% CI -2.0 to +5.0) · RSS slope +60 MiB/h (99% CI +40 to +80)")
	assert.Contains(t, l, "warm-up ended at 10 min")
	assert.Contains(t, l, "RETAINED so far")

	more := 12.0
	kept = verdict.KeptView{Verdict: verdict.Inconclusive, NeedMoreMinutes: &more, Floors: verdict.Result{Verdict: verdict.Inconclusive}}
	l = judgementText(&rss, &kept, time.Hour)
	assert.Contains(t, l, "kept: floors not yet judged")
	assert.Contains(t, l, "verdict needs ~12 more min")
}

// The minutes still needed, as the live line shows them, do not follow a
// single judgement's jump (seen: 45 → 72 → 84 → 50 → 206 in five minutes
// of a healthy run); they count down as time passes.
func TestSteadyNeedDoesNotJumpAbout(t *testing.T) {
	var s steadyNeed
	show := func(el float64, need float64) float64 { return *s.steady(el, &need) }
	var shown []float64
	for i, n := range []float64{45, 72, 84, 50, 206, 48, 47, 46} {
		shown = append(shown, show(float64(i)*60, n))
	}
	for i := 1; i < len(shown); i++ {
		assert.Less(t, math.Abs(shown[i]-shown[i-1]), 25.0, "shown %v", shown)
	}
	assert.InDelta(t, 47, shown[len(shown)-1], 6, "settles on the estimates that agree, less the time passed: %v", shown)
	assert.Nil(t, s.steady(600, nil), "no estimate, none shown")
	assert.Equal(t, 30.0, show(660, 30), "and it starts over")
}
