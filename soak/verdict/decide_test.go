package verdict

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/relaysoak/relaysoak/internal/stats"
)

// judgedLife is a lifetime whose window (three hours from t=0, no warm-up)
// is long enough to judge, with fit over it and late over its second half.
func judgedLife(fit, late trendFit) lifetime {
	return lifetime{end: 3, shortfall: -2.7, windowPoints: 300, windowHours: 3,
		fit: fit, fitHours: 3, late: late, lateOK: true, lateHours: 1.5}
}

// gated sets the default gate.
func gated(ev evidence) evidence { ev.gate = 10; return ev }

// TestDecide takes every branch of decide on evidence made by hand, with the
// default Config: gate 10 MiB/hour, α 0.01, MinWindow 20 min.
func TestDecide(t *testing.T) {
	cfg := Config{}.withDefaults()
	z := stats.NormalQuantile(1 - cfg.Alpha/2)

	rising := judgedLife(trendFit{slope: 25, lo: 24, hi: 26, p: 1e-9, z: 8}, trendFit{slope: 24, lo: 22, hi: 27, p: 1e-6})
	leak := decision{verdict: Leak, why: sustainedGrowth{slope: 25, lo: 24, hi: 26, gate: 10, late: 24}}
	flat := judgedLife(trendFit{slope: 2, lo: -1, hi: 5, p: 0.2, z: 1}, trendFit{slope: -0.5, lo: -3, hi: 2, p: 0.6})
	pass := decision{verdict: Pass, why: flatLate{late: -0.5, lateHi: 2, gate: 10}}
	wide := judgedLife(trendFit{slope: 5, lo: -5, hi: 15, p: 0.3, z: 1}, trendFit{})
	wide.lateOK = false
	// extraFor: half-width 10, 5 from the gate, over 3 hours.
	wideNeed := 3*math.Cbrt(4)*1.2 - 3
	straddling := decision{verdict: Inconclusive, need: wideNeed, why: straddles{slope: 5, lo: -5, hi: 15, gate: 10}}
	short := lifetime{end: 0.25, shortfall: 1.0 / 12, windowPoints: 30, windowHours: 0.25}
	tooShort := decision{verdict: Inconclusive, need: 1.0 / 12, why: tooLittleData{minutes: 15, points: 30}}

	with := func(l lifetime, edit func(*lifetime)) lifetime { edit(&l); return l }
	capped := func(climb float64) func(*lifetime) {
		return func(l *lifetime) { l.warmupCapped, l.warmupTau, l.warmupClimb = true, 0.75, climb }
	}
	cycles := func(f flushFindings) func(*lifetime) { return func(l *lifetime) { l.flush = f } }
	moving := flushFindings{drops: 4, period: 0.5, whole: 3, floor: 8, floorSE: 2, peak: 0, peakSE: 0.5}
	// 12 minutes after a warm-up that ended at 12 min: short of the least
	// window (8 min to go), past the early one (8 min), growing 800
	// MiB/hour.
	early := lifetime{end: 0.4, warm: 0.2, warmupState: WarmupEnded, shortfall: 0.2 + 1.0/3 - 0.4, windowPoints: 72, windowHours: 0.2,
		provisional: true, fit: trendFit{slope: 800, lo: 700, hi: 900, p: 1e-9, z: 8}, fitHours: 0.2,
		late: trendFit{slope: 780, lo: 600, hi: 950, p: 1e-5}, lateOK: true, lateHours: 0.1}
	notYet := func(l lifetime) decision {
		return decision{verdict: Inconclusive, need: l.shortfall, why: tooLittleData{minutes: l.windowHours * 60, points: l.windowPoints}}
	}

	for _, c := range []struct {
		name string
		ev   evidence
		want decision // need < 0: some need, however much
	}{
		{"window after warm-up too short", gated(evidence{life: short}), tooShort},
		{"too few points in a long enough window",
			gated(evidence{life: lifetime{end: 2, shortfall: -1, windowPoints: 5, windowHours: 2}}),
			decision{verdict: Inconclusive, need: 1.0 / 3, why: tooLittleData{minutes: 120, points: 5}}},

		{"significant and still rising", gated(evidence{life: rising}), leak},
		{"significant, then a flat second half",
			gated(evidence{life: judgedLife(trendFit{slope: 30, lo: 20, hi: 40, p: 1e-6, z: 5}, trendFit{slope: 1, lo: -2, hi: 4, p: 0.5})}),
			decision{verdict: Pass, why: levelledOff{growth: 90, late: 1, lateHi: 4, gate: 10}}},
		{"flat second half", gated(evidence{life: flat}), pass},
		{"no second half, interval under the gate",
			gated(evidence{life: with(wide, func(l *lifetime) { l.fit = trendFit{slope: 2, lo: -1, hi: 5, p: 0.2, z: 1} })}),
			decision{verdict: Pass, why: underGate{slope: 2, hi: 5, gate: 10}}},
		{"interval under the gate, second half not flat",
			gated(evidence{life: judgedLife(trendFit{slope: 3, lo: 1, hi: 9, p: 1e-3, z: 3}, trendFit{slope: 8, lo: -4, hi: 20, p: 0.2})}),
			decision{verdict: Pass, why: underGate{slope: 3, hi: 9, gate: 10}}},
		{"significant, second half slower than half the slope",
			gated(evidence{life: judgedLife(trendFit{slope: 20, lo: 15, hi: 25, p: 1e-6, z: 5}, trendFit{slope: 8, lo: 1, hi: 17, p: 1e-3})}),
			decision{verdict: Inconclusive, need: -1, why: slowing{slope: 20, late: 8}}},
		{"significant, second half's interval reaching 0",
			gated(evidence{life: judgedLife(trendFit{slope: 20, lo: 15, hi: 25, p: 1e-6, z: 5}, trendFit{slope: 18, lo: -1, hi: 30, p: 0.015})}),
			decision{verdict: Inconclusive, need: -1, why: slowing{slope: 20, late: 18}}},
		{"significant, second half not significant at 2α",
			gated(evidence{life: judgedLife(trendFit{slope: 20, lo: 15, hi: 25, p: 1e-6, z: 5}, trendFit{slope: 18, lo: 1, hi: 30, p: 0.05})}),
			decision{verdict: Inconclusive, need: -1, why: slowing{slope: 20, late: 18}}},
		{"significant, second half's interval short of 80% of the slope",
			gated(evidence{life: judgedLife(trendFit{slope: 20, lo: 15, hi: 25, p: 1e-6, z: 5}, trendFit{slope: 13, lo: 11, hi: 15, p: 1e-4})}),
			decision{verdict: Inconclusive, need: -1, why: slowing{slope: 20, late: 13}}},
		{"interval straddles the gate", gated(evidence{life: wide}), straddling},
		// Still rising, but the whole window is not significantly over the
		// gate: each condition alone.
		{"rising, slope under the gate",
			gated(evidence{life: judgedLife(trendFit{slope: 9, lo: 5, hi: 12, p: 1e-6, z: 5}, trendFit{slope: 9, lo: 2, hi: 16, p: 1e-3})}),
			decision{verdict: Inconclusive, need: -1, why: straddles{slope: 9, lo: 5, hi: 12, gate: 10}}},
		{"rising, interval reaching 0",
			gated(evidence{life: judgedLife(trendFit{slope: 20, lo: -1, hi: 40, p: 1e-3, z: 3}, trendFit{slope: 19, lo: 5, hi: 30, p: 1e-3})}),
			decision{verdict: Inconclusive, need: -1, why: straddles{slope: 20, lo: -1, hi: 40, gate: 10}}},
		{"rising, p not under α",
			gated(evidence{life: judgedLife(trendFit{slope: 20, lo: 1, hi: 40, p: 0.02, z: 2}, trendFit{slope: 19, lo: 5, hi: 30, p: 1e-3})}),
			decision{verdict: Inconclusive, need: -1, why: straddles{slope: 20, lo: 1, hi: 40, gate: 10}}},
		{"rising, Mann–Kendall not positive",
			gated(evidence{life: judgedLife(trendFit{slope: 20, lo: 1, hi: 40, p: 1e-3, z: 0}, trendFit{slope: 19, lo: 5, hi: 30, p: 1e-3})}),
			decision{verdict: Inconclusive, need: -1, why: straddles{slope: 20, lo: 1, hi: 40, gate: 10}}},

		{"strong growth is called early", gated(evidence{life: early}),
			decision{verdict: Leak, why: strongEarly{slope: 800, lo: 700, hi: 900, strong: 500, late: 780, minutes: early.windowHours * 60}}},
		{"strong growth before the early window", gated(evidence{life: with(early, func(l *lifetime) { l.windowHours = 0.1 })}),
			notYet(with(early, func(l *lifetime) { l.windowHours = 0.1 }))},
		{"strong growth while warming up", gated(evidence{life: with(early, func(l *lifetime) { l.warmupState = WarmingUp })}), notYet(early)},
		{"strong growth, interval reaching under the strong slope", gated(evidence{life: with(early, func(l *lifetime) { l.fit.lo = 450 })}), notYet(early)},
		{"strong growth, second half not rising", gated(evidence{life: with(early, func(l *lifetime) { l.late = trendFit{slope: 200, lo: -50, hi: 450, p: 0.2} })}), notYet(early)},
		{"strong growth, second half slowing", gated(evidence{life: with(early, func(l *lifetime) { l.late = trendFit{slope: 500, lo: 400, hi: 600, p: 1e-6} })}), notYet(early)},

		{"a PASS while a capped warm-up still climbs", gated(evidence{life: with(flat, capped(6))}),
			decision{verdict: Inconclusive, need: 4.5*0.75 - 3, why: warmupOpen{tau: 0.75, inner: pass}}},
		{"a capped warm-up that has flattened", gated(evidence{life: with(flat, capped(4))}), pass},
		{"a LEAK under a capped warm-up stands", gated(evidence{life: with(rising, capped(100))}), leak},

		{"flush cycles, one whole in the window",
			gated(evidence{life: with(rising, cycles(flushFindings{drops: 2, period: 0.5, whole: 1, toThird: 0.4}))}),
			decision{verdict: Inconclusive, need: 0.4, why: fewCycles{drops: 2, whole: 1, period: 0.5, inner: leak}}},
		{"flush cycles keep a longer need",
			gated(evidence{life: with(wide, cycles(flushFindings{drops: 1, whole: -1, toThird: 0.2}))}),
			decision{verdict: Inconclusive, need: wideNeed, why: fewCycles{drops: 1, whole: 0, inner: straddling}}},
		{"flush cycles need at least half the least window",
			gated(evidence{life: with(short, cycles(flushFindings{drops: 1, whole: 0, toThird: 0.1}))}),
			decision{verdict: Inconclusive, need: 1.0 / 6, why: fewCycles{drops: 1, whole: 0, inner: tooShort}}},
		{"flat floors and peaks are a PASS, whatever the line said",
			gated(evidence{life: with(rising, cycles(flushFindings{drops: 4, period: 0.5, whole: 3, floor: 0.5, floorSE: 0.5, peak: -0.3, peakSE: 0.5}))}),
			decision{verdict: Pass, why: flatCycles{period: 0.5, whole: 3, floor: 0.5, floorPM: z * 0.5, peak: -0.3, peakPM: z * 0.5, gate: 10}}},
		{"moving floors under a PASS", gated(evidence{life: with(flat, cycles(moving))}),
			decision{verdict: Inconclusive, need: 0.5, why: movingCycles{period: 0.5, floor: 8, floorPM: z * 2, peak: 0, peakPM: z * 0.5, gate: 10}}},
		{"moving floors under a LEAK", gated(evidence{life: with(rising, cycles(moving))}), leak},
		{"moving floors under INCONCLUSIVE", gated(evidence{life: with(wide, cycles(moving))}), straddling},

		{"an OOM sawtooth", gated(evidence{oom: true, restarts: []float64{600, 1200, 1800}, cycleSlope: 300}),
			decision{verdict: Leak, why: oomSawtooth{restarts: 3, slope: 300}}},
		{"one restart", gated(evidence{restarts: []float64{900}, life: wide}),
			decision{verdict: Inconclusive, need: wideNeed, why: restarted{at: 900, inner: straddling}}},
		{"exits", gated(evidence{exits: []float64{100, 200}, life: rising}),
			decision{verdict: Crashed, why: exited{count: 2, first: 100, inner: leak}}},
		{"exits drop the need", gated(evidence{exits: []float64{50}, life: short}),
			decision{verdict: Crashed, why: exited{count: 1, first: 50, inner: tooShort}}},
		{"exits in an OOM sawtooth", gated(evidence{oom: true, restarts: []float64{600, 1200}, cycleSlope: 300, exits: []float64{590, 1190}}),
			decision{verdict: Crashed, why: exited{count: 2, first: 590, inner: decision{verdict: Leak, why: oomSawtooth{restarts: 2, slope: 300}}}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := decide(c.ev, cfg)
			assert.Equal(t, c.want.verdict, got.verdict)
			assert.Equal(t, c.want.why, got.why)
			if c.want.need < 0 {
				assert.Greater(t, got.need, 0.0)
			} else {
				assert.InDelta(t, c.want.need, got.need, 1e-12)
			}
			assert.NotPanics(t, func() { reason(got) })
		})
	}
}

// The decision on the lifetime is what a restart or an exit quotes.
func TestDecisionLifetime(t *testing.T) {
	inner := decision{verdict: Pass, why: flatLate{late: 1, lateHi: 2, gate: 10}}
	d := decision{verdict: Crashed, why: exited{count: 1, first: 5, inner: decision{verdict: Pass, why: restarted{at: 3, inner: inner}}}}
	assert.Equal(t, inner, d.lifetime())
	assert.Equal(t, inner, inner.lifetime())
}

func TestReason(t *testing.T) {
	flat := decision{verdict: Pass, why: flatLate{late: -0.14, lateHi: 0.42, gate: 10}}
	for _, c := range []struct {
		why  why
		want string
	}{
		{tooLittleData{minutes: 14.6, points: 88}, "too little data after warm-up (15 min judged, 88 points)"},
		{sustainedGrowth{slope: 25.04, lo: 24.5, hi: 25.6, gate: 10, late: 24.9},
			"sustained growth of 25.0 MiB/hour (CI 24.5–25.6, gate 10.0), still rising in the second half (24.9 MiB/hour)"},
		{levelledOff{growth: 181.4, late: 0.3, lateHi: 1.8, gate: 10},
			"rose 181 MiB then levelled off: second-half slope 0.3 MiB/hour (CI up to 1.8) is under the 10.0 gate"},
		{flatLate{late: -0.14, lateHi: 0.42, gate: 10}, "flat: second-half slope -0.1 MiB/hour (CI up to 0.4) is under the 10.0 gate"},
		{underGate{slope: 0.7, hi: 4.3, gate: 10}, "slope 0.7 MiB/hour (CI up to 4.3) is under the 10.0 gate"},
		{slowing{slope: 14.2, late: 3.1}, "growth of 14.2 MiB/hour is slowing (second half 3.1): a late warm-up or a leak, not yet clear"},
		{straddles{slope: 9.2, lo: 8.5, hi: 10, gate: 10}, "slope 9.2 MiB/hour, CI 8.5–10.0 straddles the gate 10.0 or 0"},
		{strongEarly{slope: 801.2, lo: 700, hi: 900, strong: 500, late: 780, minutes: 12},
			"strong growth of 801.2 MiB/hour (CI 700.0–900.0, all above 500) called early, 12 min after warm-up; still rising in the second half (780.0 MiB/hour)"},
		{warmupOpen{tau: 100.0 / 60, inner: flat},
			"the warm-up may not be over (its fitted time constant, 100 min, is as long as the data allow): flat: second-half slope -0.1 MiB/hour (CI up to 0.4) is under the 10.0 gate"},
		{fewCycles{drops: 2, whole: 1, period: 2.0 / 3, inner: flat},
			"memory drops back to a floor in slow cycles (2 drop(s) every 40 min, no exit): the judged window holds 1 whole cycle(s), two are needed to tell them from a leak; flat: second-half slope -0.1 MiB/hour (CI up to 0.4) is under the 10.0 gate"},
		{fewCycles{drops: 1, inner: flat},
			"memory drops back to a floor in slow cycles (1 drop(s), no exit): the judged window holds 0 whole cycle(s), two are needed to tell them from a leak; flat: second-half slope -0.1 MiB/hour (CI up to 0.4) is under the 10.0 gate"},
		{flatCycles{period: 2.0 / 3, whole: 7, floor: -0.2, floorPM: 0.4, peak: 0.2, peakPM: 0.4, gate: 10},
			"slow flush cycles every 40 min, 7 whole in the window, return to the same floor: floors -0.2 MiB/hour (±0.4), peaks 0.2 (±0.4), under the 10.0 gate"},
		{movingCycles{period: 0.5, floor: 8, floorPM: 5.2, peak: 0, peakPM: 1.3, gate: 10},
			"slow flush cycles every 30 min: floors move 8.0 MiB/hour (±5.2), peaks 0.0 (±1.3), not clearly under the 10.0 gate"},
		{oomSawtooth{restarts: 3, slope: 301.6}, "3 restarts: memory repeatedly fell to its starting level (an OOM sawtooth); growth per cycle 302 MiB/hour"},
		{restarted{at: 3600.4, inner: flat}, "one restart at 3600 s (judged after it): flat: second-half slope -0.1 MiB/hour (CI up to 0.4) is under the 10.0 gate"},
		{exited{count: 2, first: 5400, inner: decision{verdict: Pass, why: restarted{at: 3600, inner: flat}}},
			"the target exited 2 time(s), first at 5400 s; memory: PASS one restart at 3600 s (judged after it): flat: second-half slope -0.1 MiB/hour (CI up to 0.4) is under the 10.0 gate"},
	} {
		assert.Equal(t, c.want, reason(decision{why: c.why}))
	}
	assert.Panics(t, func() { reason(decision{}) }, "a decision without a rule has no reason")
}
