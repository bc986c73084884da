package verdict

import "github.com/relaysoak/relaysoak/internal/stats"

// evidence is what a series shows before any rule turns it into a verdict:
// its restarts and exits, and either the OOM cycles or the last process
// lifetime. decide reads nothing else.
type evidence struct {
	gate     float64   // MiB/hour: the effective slope gate (Config.gate)
	restarts []float64 // seconds: the detected restarts
	// oom says the restarts are an OOM sawtooth: two or more, or one from
	// within 15% of the memory limit. cycleSlope is then the growth per
	// cycle (MiB/hour; see judgeCycles) and life is unset.
	oom        bool
	cycleSlope float64
	exits      []float64 // seconds: the exits the run recorded
	life       lifetime  // the last process lifetime, when not oom
}

// lifetime is what one process lifetime shows. Times are hours, levels MiB,
// slopes MiB/hour.
type lifetime struct {
	start, end  float64
	level       float64 // at the end (endLevel)
	warm        float64 // the warm-up's end: where the judged window starts, unless at an onset
	warmupState string  // a Warmup constant
	// The fitted warm-up: capped when its time constant tau is as long as
	// the data allow (it may go on past them); climb is its rise rate at
	// the end.
	warmupCapped           bool
	warmupTau, warmupClimb float64

	// shortfall is how much the window after warm-up lacks of the least
	// judged (MinWindow, MinWindowFraction; ≤ 0: nothing); windowPoints and
	// windowHours are its thinned points and span.
	shortfall    float64
	windowPoints int
	windowHours  float64

	// fit is the judged window's trend (see judgeWindow; from the onset when
	// there is one) over fitHours. A window too short to judge has only the
	// estimate so far, when it has enough points for one (provisional).
	fit         trendFit
	fitHours    float64
	provisional bool
	onset       float64 // the start of growth after a flat stretch, when hasOnset
	hasOnset    bool
	shifts      int // level shifts taken out of the variant behind fit
	// late is the trend of the judged window's second half (lateHours
	// long), when it has enough points (lateOK).
	late      trendFit
	lateOK    bool
	lateHours float64
	plateau   float64 // the median level over the window's last quarter, as recorded

	flush flushFindings
}

// judgeable says whether the window after warm-up is long enough to judge.
func (l lifetime) judgeable() bool {
	return l.shortfall <= 0 && l.windowPoints >= minFitPoint
}

// flushFindings is what slow flush cycles (see findFlush) show in a
// lifetime. It is set only while their drops are recent (the last within two
// periods of the end): drops that stopped earlier were a one-off, or the
// cycles ended. Times are hours, slopes MiB/hour.
type flushFindings struct {
	drops  int     // drops in the lifetime; 0: none recent
	period float64 // the median spacing of the drops; 0 with one
	whole  int     // whole cycles in the window after warm-up: its drops less one
	// toThird is the time until the window's third drop at the period seen
	// (with one drop, the time its tooth took to climb by the drop); set
	// with fewer than two whole cycles.
	toThird float64
	// The trends of the floors and the peaks and their standard errors;
	// set with two whole cycles or more.
	floor, floorSE float64
	peak, peakSE   float64
}

// examineLifetime gathers the evidence of one process lifetime: warm-up,
// flush cycles, the judged window (from a leak's onset, if one follows a flat
// stretch) and the fits of it and of its second half.
func examineLifetime(seg Series, gate float64, cfg Config) lifetime {
	th := thin(seg, 0, cfg.MaxPoints)
	start, end := th.t[0], th.t[th.len()-1]
	l := lifetime{start: start, end: end, level: endLevel(th)}

	wu := fitWarmup(th)
	flush := findFlush(th)
	if flush.drops() > 0 && wu.a != 0 && wu.end > flush.t[0] {
		// A warm-up is a rise; one that spans a flush cycle's drop was
		// fitted to the teeth (the slow start of the first one, typically).
		wu = warmup{end: start, t0: start, known: true}
	}
	warm := max(wu.end, start+cfg.Warmup.Hours())
	l.warm = warm
	l.warmupState = warmupState(wu, start, end, cfg)
	const dt = 1.0 / 60
	l.warmupCapped, l.warmupTau, l.warmupClimb = wu.capped, wu.tau, (wu.at(end)-wu.at(end-dt))/dt

	minW := cfg.MinWindow.Hours()
	l.shortfall = warm + minW - end
	if f := cfg.MinWindowFraction; f > 0 {
		l.shortfall = max(l.shortfall, start+(warm-start)/(1-f)-end)
	}
	wth := th.sub(warm, end)
	l.windowPoints, l.windowHours = wth.len(), wth.duration()
	l.flush = examineFlush(flush, warm, end)

	if !l.judgeable() {
		// The estimate so far, for the live view and for a strong leak's
		// early call (see decideEarly); no other verdict rests on it.
		if wth.len() >= minFitPoint && wth.duration() > 0 {
			var buf []float64
			l.fit, buf = fitTrend(wth.t, wth.y, cfg.Alpha, nil)
			l.fitHours = wth.duration()
			l.provisional = true
			late := wth.sub(wth.t[0]+l.fitHours/2, end)
			if late.len() >= minFitPoint {
				l.late, _ = fitTrend(late.t, late.y, cfg.Alpha, buf)
				l.lateOK = true
			}
			l.lateHours = late.duration()
		}
		return l
	}

	var buf []float64
	w, buf := judgeWindow(wth, wu, cfg, buf)
	// A leak that starts after a flat stretch: judged from its onset.
	if c, ok := findOnset(w, gate, minW); ok {
		w, buf = judgeWindow(wth.sub(c, end), wu, cfg, buf)
		l.onset, l.hasOnset = c, true
	}
	l.fit, l.shifts = w.fit, w.shifts
	l.fitHours = w.series.duration()

	mid := w.series.t[0] + l.fitHours/2
	late := w.series.sub(mid, end)
	if late.len() >= minFitPoint {
		l.late, _ = fitTrend(late.t, late.y, cfg.Alpha, buf)
		l.lateOK = true
	}
	l.lateHours = late.duration()
	l.plateau = stats.Median(tail(w.raw, 0.25))
	return l
}

// warmupState says what the warm-up's end means (see Result.WarmupState).
func warmupState(wu warmup, start, end float64, cfg Config) string {
	switch {
	case cfg.Warmup > 0 && end < start+cfg.Warmup.Hours():
		return WarmingUp
	case !wu.known && cfg.Warmup == 0:
		return WarmupUnknown
	case wu.a == 0 && cfg.Warmup == 0:
		return WarmupNone
	case wu.capped:
		return WarmingUp
	}
	return WarmupEnded
}

// examineFlush gathers what fl, the flush cycles of a lifetime ending at
// end, show in its window after warm-up (from warm).
func examineFlush(fl flushCycles, warm, end float64) flushFindings {
	if fl.drops() == 0 {
		return flushFindings{}
	}
	last := fl.t[fl.drops()-1]
	period := fl.period
	if period == 0 {
		period = fl.climb[0]
	}
	if end-last > 2*period {
		return flushFindings{}
	}
	wf := fl.in(warm, end)
	f := flushFindings{drops: fl.drops(), period: fl.period, whole: wf.drops() - 1}
	if f.whole < 2 {
		from := warm
		if wf.drops() > 0 {
			from = last
		}
		f.toThird = from + float64(3-wf.drops())*period - end
		return f
	}
	f.floor, f.floorSE = levelTrend(wf.t, wf.floor, wf.levelSE)
	f.peak, f.peakSE = levelTrend(wf.t, wf.peak, wf.levelSE)
	return f
}

// report fills res with the lifetime's numbers, given d, the decision on
// the lifetime (before a restart or an exit is taken into account).
func (l lifetime) report(res *Result, d decision, ctx Context) {
	res.WindowEndS = l.end * secPerHour
	res.LevelMiB = l.level
	res.WarmupEndS = l.warm * secPerHour
	res.WindowStartS = l.warm * secPerHour
	res.WarmupState = l.warmupState
	judged := l.judgeable()
	switch {
	case judged:
		if l.hasOnset {
			cs := l.onset * secPerHour
			res.WindowStartS = cs
			res.LeakOnsetS = &cs
		}
		res.LevelShifts = l.shifts
		setFit(res, l.fit, l.fitHours)
		if l.lateOK {
			res.LateSlopeMiBPerHour = l.late.slope
		}
	case l.provisional:
		res.Provisional = d.verdict != Leak // a strong leak called early rests on it
		setFit(res, l.fit, l.fitHours)
		if l.lateOK {
			res.LateSlopeMiBPerHour = l.late.slope
		}
	}
	if f := l.flush; f.drops > 0 {
		res.FlushDrops = f.drops
		res.FlushPeriodS = f.period * secPerHour
		if f.whole >= 2 {
			fs, ps := f.floor, f.peak
			res.FloorSlopeMiBPerHour, res.PeakSlopeMiBPerHour = &fs, &ps
		}
	}
	// A verdict on the floors reports their slope.
	if w, ok := d.why.(flatCycles); ok {
		res.Provisional = false
		res.SlopeMiBPerHour = w.floor
		res.SlopeCIMiBPerHour = [2]float64{w.floor - w.floorPM, w.floor + w.floorPM}
	}
	if judged || !res.Provisional && l.provisional {
		if d.verdict == Pass {
			p := l.plateau // the level as recorded, not shift-corrected
			res.PlateauMiB = &p
		}
		setDerived(res, ctx)
	}
}

// setFit fills the numbers of a trend fit over a window of hours.
func setFit(res *Result, f trendFit, hours float64) {
	res.SlopeMiBPerHour = f.slope
	res.SlopeCIMiBPerHour = [2]float64{f.lo, f.hi}
	res.MannKendallS, res.MannKendallZ, res.PValue, res.EffectiveN = f.s, f.z, f.p, f.nEff
	res.JudgedPoints = f.n
	res.GrowthMiB = f.slope * hours
}
