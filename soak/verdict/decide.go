package verdict

import (
	"fmt"
	"math"

	"github.com/relaysoak/relaysoak/internal/stats"
)

// decision is a verdict and the rule it rests on, with the numbers that
// rule's reason quotes (see reason).
type decision struct {
	verdict Verdict
	why     why
	need    float64 // hours more data wanted before a verdict; 0: none
}

// why is the rule a decision rests on: one of the types below. Times are
// hours unless a field says seconds; slopes MiB/hour.
type why interface{ rule() }

// The rules of a lifetime's window.
type (
	// tooLittleData: the window after warm-up is too short to judge.
	tooLittleData struct {
		minutes float64
		points  int
	}
	// sustainedGrowth: significant growth over the gate, still rising in
	// the second half (late).
	sustainedGrowth struct{ slope, lo, hi, gate, late float64 }
	// levelledOff: significant growth (growth MiB over the window), then a
	// second half whose interval (up to lateHi) is under the gate.
	levelledOff struct{ growth, late, lateHi, gate float64 }
	// flatLate: a second half whose interval is under the gate.
	flatLate struct{ late, lateHi, gate float64 }
	// underGate: the whole window's interval is under the gate.
	underGate struct{ slope, hi, gate float64 }
	// slowing: significant growth whose second half is neither rising nor
	// flat.
	slowing struct{ slope, late float64 }
	// straddles: the slope's interval straddles the gate or 0.
	straddles struct{ slope, lo, hi, gate float64 }
	// strongEarly: growth whose whole interval is over the strong slope,
	// still rising in the second half, in a window (minutes) shorter than
	// the least judged.
	strongEarly struct{ slope, lo, hi, strong, late, minutes float64 }
)

// The rules that revise a lifetime's decision.
type (
	// warmupOpen: a PASS while a warm-up whose time constant (tau) is as
	// long as the data allow still climbs at half the gate.
	warmupOpen struct {
		tau   float64
		inner decision
	}
	// fewCycles: recent flush cycles, and fewer than two whole in the
	// window: too few to tell them from a leak.
	fewCycles struct {
		drops, whole int
		period       float64 // 0 with one drop
		inner        decision
	}
	// flatCycles: two whole flush cycles or more, whose floors and peaks
	// are flat (slope ± half-interval, both under the gate).
	flatCycles struct {
		period             float64
		whole              int
		floor, floorPM     float64
		peak, peakPM, gate float64
	}
	// movingCycles: a PASS under flush cycles whose floors or peaks are not
	// clearly flat.
	movingCycles struct {
		period                             float64
		floor, floorPM, peak, peakPM, gate float64
	}
)

// The rules of a whole series.
type (
	// oomSawtooth: memory repeatedly fell to its starting level; slope is
	// the growth per cycle.
	oomSawtooth struct {
		restarts int
		slope    float64
	}
	// restarted: one restart (at, seconds); the lifetime after it is judged.
	restarted struct {
		at    float64
		inner decision
	}
	// exited: the run recorded exits (the first at first, seconds).
	exited struct {
		count int
		first float64
		inner decision
	}
)

func (tooLittleData) rule()   {}
func (sustainedGrowth) rule() {}
func (levelledOff) rule()     {}
func (flatLate) rule()        {}
func (underGate) rule()       {}
func (slowing) rule()         {}
func (straddles) rule()       {}
func (strongEarly) rule()     {}
func (warmupOpen) rule()      {}
func (fewCycles) rule()       {}
func (flatCycles) rule()      {}
func (movingCycles) rule()    {}
func (oomSawtooth) rule()     {}
func (restarted) rule()       {}
func (exited) rule()          {}

// decide turns the evidence into a verdict: an OOM sawtooth is a LEAK;
// otherwise the last lifetime is judged (see decideLifetime); recorded exits
// make it CRASHED, quoting the verdict on memory.
func decide(ev evidence, cfg Config) decision {
	var d decision
	if ev.oom {
		d = decision{verdict: Leak, why: oomSawtooth{restarts: len(ev.restarts), slope: ev.cycleSlope}}
	} else {
		d = decideLifetime(ev.life, ev.gate, cfg)
		if len(ev.restarts) == 1 {
			d = decision{verdict: d.verdict, need: d.need, why: restarted{at: ev.restarts[0], inner: d}}
		}
	}
	if len(ev.exits) > 0 {
		d = decision{verdict: Crashed, why: exited{count: len(ev.exits), first: ev.exits[0], inner: d}}
	}
	return d
}

// lifetime is the decision on the last lifetime that d quotes: d less a
// restart or an exit.
func (d decision) lifetime() decision {
	for {
		switch w := d.why.(type) {
		case restarted:
			d = w.inner
		case exited:
			d = w.inner
		default:
			return d
		}
	}
}

// decideLifetime judges one lifetime: INCONCLUSIVE when its window is too
// short, else the window's rules (decideWindow) and the warm-up's, and
// finally the flush cycles' (decideFlush).
func decideLifetime(l lifetime, gate float64, cfg Config) decision {
	minW := cfg.MinWindow.Hours()
	var d decision
	if !l.judgeable() {
		need := l.shortfall
		if need <= 0 {
			need = minW
		}
		d = decision{verdict: Inconclusive, need: need, why: tooLittleData{minutes: l.windowHours * 60, points: l.windowPoints}}
		if e, ok := decideEarly(l, cfg); ok {
			d = e
		}
	} else {
		d = decideWindow(l, gate, cfg)
		// A warm-up whose time constant is as long as the data allow may
		// not be over: while its fitted tail still climbs at half the
		// gate, a flat second half can be a pause in it, or the tail
		// overdone. Too early for PASS (a LEAK survived every variant).
		if d.verdict == Pass && l.warmupCapped && l.warmupClimb >= gate/2 {
			d = decision{verdict: Inconclusive, need: max(4.5*l.warmupTau-(l.end-l.start), minW/2), why: warmupOpen{tau: l.warmupTau, inner: d}}
		}
	}
	return decideFlush(d, l.flush, gate, cfg)
}

// decideEarly calls a strong leak before the least judged window is
// there: at least EarlyWindow after a warm-up that has ended, the slope's
// whole interval over the strong slope (far above any gate), significant,
// and the second half still rising as fast (at 70% of the slope, its
// interval over half the strong slope). A warm-up still going on, or one
// whose end the data cannot yet fix, calls nothing early: its climb can be
// that steep, and its tail slows by more than that within the window.
func decideEarly(l lifetime, cfg Config) (decision, bool) {
	f, fl := l.fit, l.late
	ok := l.provisional && l.windowHours >= cfg.EarlyWindow.Hours() && !l.warmupCapped &&
		(l.warmupState == WarmupEnded || l.warmupState == WarmupNone) &&
		f.lo >= cfg.StrongSlopeMiBPerHour && f.p < cfg.Alpha && f.z > 0 &&
		l.lateOK && fl.lo >= cfg.StrongSlopeMiBPerHour/2 && fl.slope >= 0.7*f.slope && fl.p < 2*cfg.Alpha
	if !ok {
		return decision{}, false
	}
	return decision{verdict: Leak, why: strongEarly{slope: f.slope, lo: f.lo, hi: f.hi, strong: cfg.StrongSlopeMiBPerHour, late: fl.slope, minutes: l.windowHours * 60}}, true
}

// decideWindow judges a window long enough to judge. LEAK needs a
// significant slope over the gate and a second half still rising:
// significantly, at half the window's slope at least, and with an interval
// that reaches 80% of it. A curve that is levelling off (a warm-up not
// recognised as one, in a short run under a big GC sawtooth) has a second
// half clearly slower than the whole: calling it a leak would report the
// warm-up's climb as the leak's slope. PASS needs the second half's
// interval, or the whole window's, under the gate.
func decideWindow(l lifetime, gate float64, cfg Config) decision {
	f, fl := l.fit, l.late
	alpha := cfg.Alpha
	rising := l.lateOK && fl.slope >= 0.5*f.slope && fl.hi >= 0.8*f.slope && fl.lo > 0 && fl.p < 2*alpha
	flat := l.lateOK && fl.hi < gate
	significant := f.slope >= gate && f.lo > 0 && f.p < alpha && f.z > 0
	switch {
	case significant && rising:
		return decision{verdict: Leak, why: sustainedGrowth{slope: f.slope, lo: f.lo, hi: f.hi, gate: gate, late: fl.slope}}
	case flat && significant:
		return decision{verdict: Pass, why: levelledOff{growth: f.slope * l.fitHours, late: fl.slope, lateHi: fl.hi, gate: gate}}
	case flat:
		return decision{verdict: Pass, why: flatLate{late: fl.slope, lateHi: fl.hi, gate: gate}}
	case f.hi < gate:
		return decision{verdict: Pass, why: underGate{slope: f.slope, hi: f.hi, gate: gate}}
	}
	need := extraFor(f, gate, l.fitHours)
	if l.lateOK {
		need = max(need, 2*extraFor(fl, gate, l.lateHours)+l.lateHours*2-l.fitHours)
	}
	d := decision{verdict: Inconclusive, need: max(need, cfg.MinWindow.Hours()/2)}
	if significant {
		d.why = slowing{slope: f.slope, late: fl.slope}
	} else {
		d.why = straddles{slope: f.slope, lo: f.lo, hi: f.hi, gate: gate}
	}
	return d
}

// decideFlush revises a lifetime's decision d when it shows recent slow flush
// cycles (see flushFindings). This is the rule that keeps a window inside one
// rising tooth from being judged: the window after warm-up must hold two
// whole cycles (three drops) for any verdict, and the verdict then rests on
// the floors and the peaks, not on a line through the teeth: PASS when both
// are flat (their slopes' intervals under the gate), INCONCLUSIVE when d said
// PASS but they are not. Otherwise d stands: a LEAK whose floors or peaks
// move stays a LEAK (a leak under flush cycles raises the floors too), and
// flat floors and peaks overrule a line through the teeth.
func decideFlush(d decision, f flushFindings, gate float64, cfg Config) decision {
	if f.drops == 0 {
		return d
	}
	minW := cfg.MinWindow.Hours()
	if f.whole < 2 {
		return decision{verdict: Inconclusive, need: max(f.toThird, minW/2, d.need),
			why: fewCycles{drops: f.drops, whole: max(f.whole, 0), period: f.period, inner: d}}
	}
	z := stats.NormalQuantile(1 - cfg.Alpha/2)
	floorPM, peakPM := z*f.floorSE, z*f.peakSE
	switch {
	case math.Abs(f.floor)+floorPM < gate && math.Abs(f.peak)+peakPM < gate:
		return decision{verdict: Pass, why: flatCycles{period: f.period, whole: f.whole,
			floor: f.floor, floorPM: floorPM, peak: f.peak, peakPM: peakPM, gate: gate}}
	case d.verdict == Pass:
		return decision{verdict: Inconclusive, need: max(f.period, minW/2), why: movingCycles{period: f.period,
			floor: f.floor, floorPM: floorPM, peak: f.peak, peakPM: peakPM, gate: gate}}
	}
	return d
}

// reason is the decision in words: Result.Reason.
func reason(d decision) string {
	switch w := d.why.(type) {
	case tooLittleData:
		return fmt.Sprintf("too little data after warm-up (%.0f min judged, %d points)", w.minutes, w.points)
	case sustainedGrowth:
		return fmt.Sprintf("sustained growth of %.1f MiB/hour (CI %.1f–%.1f, gate %.1f), still rising in the second half (%.1f MiB/hour)", w.slope, w.lo, w.hi, w.gate, w.late)
	case levelledOff:
		return fmt.Sprintf("rose %.0f MiB then levelled off: second-half slope %.1f MiB/hour (CI up to %.1f) is under the %.1f gate", w.growth, w.late, w.lateHi, w.gate)
	case flatLate:
		return fmt.Sprintf("flat: second-half slope %.1f MiB/hour (CI up to %.1f) is under the %.1f gate", w.late, w.lateHi, w.gate)
	case underGate:
		return fmt.Sprintf("slope %.1f MiB/hour (CI up to %.1f) is under the %.1f gate", w.slope, w.hi, w.gate)
	case slowing:
		return fmt.Sprintf("growth of %.1f MiB/hour is slowing (second half %.1f): a late warm-up or a leak, not yet clear", w.slope, w.late)
	case straddles:
		return fmt.Sprintf("slope %.1f MiB/hour, CI %.1f–%.1f straddles the gate %.1f or 0", w.slope, w.lo, w.hi, w.gate)
	case strongEarly:
		return fmt.Sprintf("strong growth of %.1f MiB/hour (CI %.1f–%.1f, all above %.0f) called early, %.0f min after warm-up; still rising in the second half (%.1f MiB/hour)", w.slope, w.lo, w.hi, w.strong, w.minutes, w.late)
	case warmupOpen:
		return fmt.Sprintf("the warm-up may not be over (its fitted time constant, %.0f min, is as long as the data allow): %s", w.tau*60, reason(w.inner))
	case fewCycles:
		return fmt.Sprintf("memory drops back to a floor in slow cycles (%d drop(s)%s, no exit): the judged window holds %d whole cycle(s), two are needed to tell them from a leak; %s",
			w.drops, periodText(w.period), w.whole, reason(w.inner))
	case flatCycles:
		return fmt.Sprintf("slow flush cycles%s, %d whole in the window, return to the same floor: floors %.1f MiB/hour (±%.1f), peaks %.1f (±%.1f), under the %.1f gate",
			periodText(w.period), w.whole, w.floor, w.floorPM, w.peak, w.peakPM, w.gate)
	case movingCycles:
		return fmt.Sprintf("slow flush cycles%s: floors move %.1f MiB/hour (±%.1f), peaks %.1f (±%.1f), not clearly under the %.1f gate",
			periodText(w.period), w.floor, w.floorPM, w.peak, w.peakPM, w.gate)
	case oomSawtooth:
		return fmt.Sprintf("%d restarts: memory repeatedly fell to its starting level (an OOM sawtooth); growth per cycle %.0f MiB/hour", w.restarts, w.slope)
	case restarted:
		return fmt.Sprintf("one restart at %.0f s (judged after it): %s", w.at, reason(w.inner))
	case exited:
		return fmt.Sprintf("the target exited %d time(s), first at %.0f s; memory: %s %s", w.count, w.first, w.inner.verdict, reason(w.inner))
	}
	panic(fmt.Sprintf("verdict: no reason text for %T", d.why))
}

func periodText(period float64) string {
	if period == 0 {
		return ""
	}
	return fmt.Sprintf(" every %.0f min", period*60)
}
