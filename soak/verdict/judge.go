package verdict

import (
	"fmt"
	"math"
	"slices"

	"github.com/relaysoak/relaysoak/internal/stats"
)

// Verdict is the judge's answer for a series.
type Verdict string

// The four verdicts.
const (
	Pass         Verdict = "PASS"         // flat, or rose and then plateaued
	Leak         Verdict = "LEAK"         // sustained growth after warm-up, or an OOM sawtooth
	Inconclusive Verdict = "INCONCLUSIVE" // too short or too noisy to say; see NeedMoreMinutes
	Crashed      Verdict = "CRASHED"      // the target exited during the run
)

// Result is the verdict on one signal and the numbers behind it. Times are
// seconds since the run started; memory is MiB unless a key says otherwise.
// Optional numbers are nil when they do not apply.
type Result struct {
	Signal  string  `json:"signal,omitempty"`
	Verdict Verdict `json:"verdict"`
	Reason  string  `json:"reason"`

	Samples   int     `json:"samples"`
	DurationS float64 `json:"duration_s"`

	WarmupEndS float64 `json:"warmup_end_s"`
	// WarmupState says what WarmupEndS means: WarmupUnknown (too few
	// points to tell; WarmupEndS is not a finding), WarmupNone (none seen),
	// WarmingUp (the fitted warm-up may still be going on) or WarmupEnded.
	// Empty in results from before it existed.
	WarmupState  string  `json:"warmup_state,omitempty"`
	WindowStartS float64 `json:"window_start_s"` // start of the judged window (warm-up end, or a later leak onset)
	WindowEndS   float64 `json:"window_end_s"`
	// LeakOnsetS is set when growth started only after a flat stretch.
	LeakOnsetS *float64 `json:"leak_onset_s,omitempty"`

	SlopeMiBPerHour   float64    `json:"slope_mib_per_hour"`
	SlopeCIMiBPerHour [2]float64 `json:"slope_ci_mib_per_hour"`
	CILevel           float64    `json:"ci_level"`
	// LateSlopeMiBPerHour is the slope of the judged window's second half:
	// close to the whole window's for a leak, near zero for a plateau.
	LateSlopeMiBPerHour float64  `json:"late_slope_mib_per_hour"`
	GateMiBPerHour      float64  `json:"gate_mib_per_hour"`
	BytesPerFrame       *float64 `json:"bytes_per_frame,omitempty"`
	GrowthMiB           float64  `json:"growth_mib"` // slope × judged window
	LevelMiB            float64  `json:"level_mib"`  // level at the end of the run
	PlateauMiB          *float64 `json:"plateau_mib,omitempty"`
	TimeToLimitHours    *float64 `json:"time_to_limit_hours,omitempty"`

	// Provisional says the slope and its interval come from too little data
	// to judge (see NeedMoreMinutes): an estimate, no verdict rests on it.
	// With JudgedPoints 0 no slope was computed at all.
	Provisional bool `json:"provisional,omitempty"`

	MannKendallS float64 `json:"mann_kendall_s"`
	MannKendallZ float64 `json:"mann_kendall_z"`
	PValue       float64 `json:"p_value"` // two-sided, Hamed–Rao corrected
	EffectiveN   float64 `json:"effective_n"`
	JudgedPoints int     `json:"judged_points"`

	LevelShifts int `json:"level_shifts"` // one-off steps taken out before judging
	Restarts    int `json:"restarts"`     // sharp drops to the starting level
	Exits       int `json:"exits"`        // exits the run recorded

	// Slow flush cycles (drops back to a floor, no exit recorded) seen in the
	// judged lifetime: how many, their period, and the trends of their floors
	// and peaks, which the verdict rests on when the window holds two whole
	// cycles.
	FlushDrops           int      `json:"flush_drops,omitempty"`
	FlushPeriodS         float64  `json:"flush_period_s,omitempty"`
	FloorSlopeMiBPerHour *float64 `json:"floor_slope_mib_per_hour,omitempty"`
	PeakSlopeMiBPerHour  *float64 `json:"peak_slope_mib_per_hour,omitempty"`

	NeedMoreMinutes *float64 `json:"need_more_minutes,omitempty"` // for INCONCLUSIVE
}

// Warm-up states (Result.WarmupState).
const (
	WarmupUnknown = "unknown"
	WarmupNone    = "none"
	WarmingUp     = "warming up"
	WarmupEnded   = "ended"
)

// Judge decides whether one memory series leaks. It returns an error only for
// a series it cannot read (see Series.Validate); a series too short to judge
// is INCONCLUSIVE. Cost is O(n) in the samples plus a bounded amount of work
// on at most cfg.MaxPoints thinned points.
func Judge(s Series, ctx Context, cfg Config) (Result, error) {
	if err := s.Validate(); err != nil {
		return Result{}, err
	}
	cfg = cfg.withDefaults()
	res := Result{
		Samples:        len(s),
		DurationS:      s[len(s)-1].T - s[0].T,
		CILevel:        1 - cfg.Alpha,
		GateMiBPerHour: cfg.gate(ctx.FrameRate),
		Exits:          len(ctx.Exits),
	}

	restarts := findRestarts(s, cfg.RestartFraction)
	res.Restarts = len(restarts)
	bounds := segmentStarts(s, restarts, ctx.Exits)
	last := s[bounds[len(bounds)-1]:]

	oom := len(restarts) >= 2
	if len(restarts) == 1 && ctx.MemoryLimit > 0 {
		oom = peakBefore(s, restarts[0]) >= 0.85*ctx.MemoryLimit
	}
	switch {
	case oom:
		judgeCycles(&res, s, bounds, ctx, cfg)
		res.Verdict = Leak
		res.Reason = fmt.Sprintf("%d restarts: memory repeatedly fell to its starting level (an OOM sawtooth); growth per cycle %.0f MiB/hour", len(restarts), res.SlopeMiBPerHour)
	default:
		judgeSegment(&res, last, ctx, cfg)
		if len(restarts) == 1 {
			res.Reason = fmt.Sprintf("one restart at %.0f s (judged after it): %s", s[restarts[0]].T, res.Reason)
		}
	}
	if len(ctx.Exits) > 0 {
		res.Reason = fmt.Sprintf("the target exited %d time(s), first at %.0f s; memory: %s %s", len(ctx.Exits), ctx.Exits[0], res.Verdict, res.Reason)
		res.Verdict = Crashed
		res.NeedMoreMinutes = nil
	}
	return res, nil
}

// findRestarts returns the indices of samples where the series dropped sharply
// (within three samples) to below frac of the level it fell from and to near
// the run's starting level. GC and allocator sawtooth drop too, but not that
// low: their troughs sit at the live heap, far above a fresh process. The
// levels are 5-point running medians, so a single outlier is no restart.
func findRestarts(s Series, frac float64) []int {
	const minCycle = 10 // samples: a restart sawtooth is slow, GC is not
	y := make([]float64, len(s))
	for i, p := range s {
		y[i] = p.Bytes
	}
	y = runningMedian5(y)
	baseline := math.Inf(1)
	for _, v := range y[:min(5, len(y))] {
		baseline = min(baseline, v)
	}
	var out []int
	segStart := 0
	peak := y[0]
	for i := 1; i < len(y); i++ {
		recent := 0.0
		for k := max(i-3, segStart); k < i; k++ {
			recent = max(recent, y[k])
		}
		if i-segStart >= minCycle && y[i] <= frac*recent && y[i] <= baseline+0.25*(peak-baseline) {
			out = append(out, i)
			segStart = i
			peak = y[i]
			continue
		}
		peak = max(peak, y[i])
	}
	return out
}

func peakBefore(s Series, i int) float64 {
	p := 0.0
	for k := max(i-3, 0); k < i; k++ {
		p = max(p, s[k].Bytes)
	}
	return p
}

// segmentStarts returns the first index of each process lifetime: after each
// detected restart and after each recorded exit.
func segmentStarts(s Series, restarts []int, exits []float64) []int {
	starts := []int{0}
	starts = append(starts, restarts...)
	for _, e := range exits {
		i, _ := slices.BinarySearchFunc(s, e, func(p Point, t float64) int {
			switch {
			case p.T < t:
				return -1
			case p.T > t:
				return 1
			}
			return 0
		})
		// The sample at the exit time itself still belongs to the old process.
		if i < len(s) && s[i].T == e {
			i++
		}
		if i > 0 && i < len(s) {
			starts = append(starts, i)
		}
	}
	slices.Sort(starts)
	starts = slices.Compact(starts)
	// A lifetime needs two samples to be judged; merge stubs into the next.
	out := starts[:1]
	for _, st := range starts[1:] {
		if st-out[len(out)-1] >= 2 && len(s)-st >= 2 {
			out = append(out, st)
		}
	}
	return out
}

// judgeCycles fills the numbers for an OOM sawtooth: the slope is the median
// of the completed cycles' Sen slopes (each cycle's growth to the limit).
func judgeCycles(res *Result, s Series, bounds []int, ctx Context, cfg Config) {
	type cyc struct {
		f        trendFit
		dur, end float64
	}
	var cycles []cyc
	var buf []float64
	for k := 0; k+1 < len(bounds); k++ {
		seg := s[bounds[k]:bounds[k+1]]
		th := thin(seg, 0, cfg.MaxPoints/2)
		if th.len() < minFitPoint {
			continue
		}
		var f trendFit
		f, buf = fitTrend(th.t, th.y, cfg.Alpha, buf)
		cycles = append(cycles, cyc{f: f, dur: th.duration(), end: th.t[th.len()-1]})
	}
	res.WindowStartS = s[0].T
	res.WindowEndS = s[len(s)-1].T
	if len(cycles) == 0 {
		return
	}
	slices.SortFunc(cycles, func(a, b cyc) int {
		switch {
		case a.f.slope < b.f.slope:
			return -1
		case a.f.slope > b.f.slope:
			return 1
		}
		return 0
	})
	m := cycles[len(cycles)/2]
	res.SlopeMiBPerHour = m.f.slope
	res.SlopeCIMiBPerHour = [2]float64{m.f.lo, m.f.hi}
	res.GrowthMiB = m.f.slope * m.dur
	res.MannKendallS, res.MannKendallZ, res.PValue, res.EffectiveN = m.f.s, m.f.z, m.f.p, m.f.nEff
	res.JudgedPoints = m.f.n
	res.LateSlopeMiBPerHour = m.f.slope
	res.LevelMiB = s[len(s)-1].Bytes / mib
	setDerived(res, ctx)
}

// setDerived fills the numbers computed from the slope and the context.
func setDerived(res *Result, ctx Context) {
	if ctx.FrameRate > 0 {
		bpf := res.SlopeMiBPerHour * mib / secPerHour / ctx.FrameRate
		res.BytesPerFrame = &bpf
	}
	if ctx.MemoryLimit > 0 && res.SlopeMiBPerHour > 0 {
		h := math.Max(0, (ctx.MemoryLimit/mib-res.LevelMiB)/res.SlopeMiBPerHour)
		res.TimeToLimitHours = &h
	}
}

// window is one judged stretch: the variant of its series that carries the
// verdict, the fit of that variant, and the series as recorded.
type window struct {
	raw    thinned
	base   thinned // raw less the warm-up transient, if there is one
	series thinned // the variant behind fit
	fit    trendFit
	shifts int
}

// judgeWindow fits up to four variants of th: as recorded, with its level
// shifts taken out, with the fitted warm-up transient subtracted, and both;
// and keeps the smallest slope. A leak must show in all of them: as recorded
// (so that sawtooth drops, which the shift remover takes for steps down,
// cannot make one: removing drops only steepens), without level shifts (so
// that a one-off step up or a staircase of allocator steps cannot), and
// without the warm-up's tail (so that a slow warm-up cannot, while a leak
// under a warm-up is still measured).
func judgeWindow(th thinned, wu warmup, cfg Config, buf []float64) (window, []float64) {
	w := window{raw: th, base: th}
	variants := []thinned{th}
	if wu.a != 0 {
		d := thinned{t: th.t, y: make([]float64, th.len())}
		for i := range th.y {
			d.y[i] = th.y[i] - wu.at(th.t[i])
		}
		variants = append(variants, d)
		w.base = d
	}
	fits := make([]trendFit, 0, 4)
	for _, v := range variants {
		var f trendFit
		f, buf = fitTrend(v.t, v.y, cfg.Alpha, buf)
		fits = append(fits, f)
	}
	// A shifted variant counts only when taking the shifts out really
	// tightens the series around its trend (by a fifth): real steps do;
	// "shifts" found in a sawtooth's noise do not, and would only bias.
	for i, v := range variants[:len(variants):len(variants)] {
		sh, k := removeShifts(v)
		// More than four shifts an hour (and four in all) are a sawtooth
		// read as steps: taking them out would remove its rises as well.
		if k == 0 || k > max(4, int(4*v.duration())) {
			continue
		}
		var f trendFit
		f, buf = fitTrend(sh.t, sh.y, cfg.Alpha, buf)
		if residualScale(sh, f) < 0.8*residualScale(v, fits[i]) {
			variants = append(variants, sh)
			fits = append(fits, f)
			w.shifts = max(w.shifts, k)
		}
	}
	for i, f := range fits {
		if i == 0 || f.slope < w.fit.slope {
			w.fit, w.series = f, variants[i]
		}
	}
	return w, buf
}

// residualScale is the robust scale of th around the fitted line.
func residualScale(th thinned, f trendFit) float64 {
	r := make([]float64, th.len())
	for i := range r {
		r[i] = th.y[i] - f.intercept - f.slope*th.t[i]
	}
	return stats.MAD(r)
}

// removeShifts takes out level shifts. At each point it compares the median
// of the next four points with the median of the previous four (corrected for
// the series' median drift): a shift is a local maximum of that difference
// beyond six robust standard deviations of it (and 0.2% of the level).
// Medians over four points catch a step that binning spread over two points
// and ignore a one- or two-point outlier, which Sen's slope shrugs off anyway.
func removeShifts(th thinned) (thinned, int) {
	const k = 4
	n := th.len()
	if n < 4*k {
		return th, 0
	}
	// The drift, from pairs n/16 apart: neighbouring points are too close for
	// their noise to average out, and pairs far apart straddle the very steps
	// being looked for (at most 1/16 of these pairs straddle any one step).
	lag := max(n/16, 2)
	rates := make([]float64, n-lag)
	for i := range rates {
		rates[i] = (th.y[i+lag] - th.y[i]) / (th.t[i+lag] - th.t[i])
	}
	m := stats.Median(rates)
	d := make([]float64, n) // d[i]: level change between points i−1 and i
	// A window across a sampling gap is not judged: the level moved during
	// the gap by a drift only roughly known.
	gaps := make([]int, n+1) // gaps[i]: sampling gaps before point i
	spacing := th.duration() / float64(n-1)
	for i := 1; i < n; i++ {
		gaps[i+1] = gaps[i]
		if th.t[i]-th.t[i-1] > 3*spacing {
			gaps[i+1]++
		}
	}
	var w [k]float64
	for i := k; i <= n-k; i++ {
		if gaps[i+k] != gaps[i-k+1] {
			continue
		}
		copy(w[:], th.y[i:i+k])
		r := stats.MedianInPlace(w[:])
		copy(w[:], th.y[i-k:i])
		l := stats.MedianInPlace(w[:])
		dt := (th.t[i+k-1]+th.t[i])/2 - (th.t[i-1]+th.t[i-k])/2
		d[i] = r - l - m*dt
	}
	sigma := stats.MAD(d[k : n-k+1])
	thr := max(6*sigma, 0.002*stats.Median(th.y), 0.25)
	out := thinned{t: th.t, y: make([]float64, n)}
	var offset float64
	shifts := 0
	next := 0
	for i := 0; i < n; i++ {
		if i >= next && math.Abs(d[i]) > thr {
			// The largest change nearby is where the step is.
			best := i
			for j := i + 1; j < min(i+k, n); j++ {
				if math.Abs(d[j]) > math.Abs(d[best]) {
					best = j
				}
			}
			if best == i {
				offset += d[i]
				shifts++
				next = i + k
			}
		}
		out.y[i] = th.y[i] - offset
	}
	return out, shifts
}

// judgeSegment judges one process lifetime.
func judgeSegment(res *Result, seg Series, ctx Context, cfg Config) {
	gate := res.GateMiBPerHour
	alpha := cfg.Alpha
	th := thin(seg, 0, cfg.MaxPoints)
	start, end := th.t[0], th.t[th.len()-1]
	res.WindowEndS = end * secPerHour
	res.LevelMiB = endLevel(th)

	wu := fitWarmup(th)
	flush := findFlush(th)
	if flush.drops() > 0 && wu.a != 0 && wu.end > flush.t[0] {
		// A warm-up is a rise; one that spans a flush cycle's drop was
		// fitted to the teeth (the slow start of the first one, typically).
		wu = warmup{end: start, t0: start, known: true}
	}
	warm := max(wu.end, start+cfg.Warmup.Hours())
	res.WarmupEndS = warm * secPerHour
	res.WindowStartS = warm * secPerHour
	switch {
	case cfg.Warmup > 0 && end < start+cfg.Warmup.Hours():
		res.WarmupState = WarmingUp
	case !wu.known && cfg.Warmup == 0:
		res.WarmupState = WarmupUnknown
	case wu.a == 0 && cfg.Warmup == 0:
		res.WarmupState = WarmupNone
	case wu.capped:
		res.WarmupState = WarmingUp
	default:
		res.WarmupState = WarmupEnded
	}

	minW := cfg.MinWindow.Hours()
	need := warm + minW - end
	if f := cfg.MinWindowFraction; f > 0 {
		need = max(need, start+(warm-start)/(1-f)-end)
	}
	wth := th.sub(warm, end)
	if need > 0 || wth.len() < minFitPoint {
		res.Verdict = Inconclusive
		if need <= 0 {
			need = minW
		}
		res.Reason = fmt.Sprintf("too little data after warm-up (%.0f min judged, %d points)", wth.duration()*60, wth.len())
		setNeed(res, need)
		// The estimate so far, for the live view: no verdict rests on it.
		if wth.len() >= minFitPoint && wth.duration() > 0 {
			f, _ := fitTrend(wth.t, wth.y, cfg.Alpha, nil)
			res.Provisional = true
			res.SlopeMiBPerHour = f.slope
			res.SlopeCIMiBPerHour = [2]float64{f.lo, f.hi}
			res.MannKendallS, res.MannKendallZ, res.PValue, res.EffectiveN = f.s, f.z, f.p, f.nEff
			res.JudgedPoints = f.n
			res.GrowthMiB = f.slope * wth.duration()
		}
		judgeFlush(res, flush, th, warm, end, gate, cfg)
		return
	}

	var buf []float64
	w, buf := judgeWindow(wth, wu, cfg, buf)

	// A leak that starts after a flat stretch: judge from its onset.
	if c, ok := findOnset(w, gate, minW); ok {
		ow := wth.sub(c, end)
		var o window
		o, buf = judgeWindow(ow, wu, cfg, buf)
		w = o
		res.WindowStartS = c * secPerHour
		cs := c * secPerHour
		res.LeakOnsetS = &cs
	}
	f := w.fit
	res.LevelShifts = w.shifts
	res.SlopeMiBPerHour = f.slope
	res.SlopeCIMiBPerHour = [2]float64{f.lo, f.hi}
	res.MannKendallS, res.MannKendallZ, res.PValue, res.EffectiveN = f.s, f.z, f.p, f.nEff
	res.JudgedPoints = f.n
	wDur := w.series.duration()
	res.GrowthMiB = f.slope * wDur

	// Late-window check: the second half of the judged window.
	mid := w.series.t[0] + wDur/2
	late := w.series.sub(mid, end)
	var fl trendFit
	lateOK := late.len() >= minFitPoint
	if lateOK {
		fl, _ = fitTrend(late.t, late.y, alpha, buf)
		res.LateSlopeMiBPerHour = fl.slope
	}
	// Still rising: significantly, at half the window's slope at least, and
	// with an interval that reaches 80% of it. A curve that is levelling off
	// (a warm-up not recognised as one, in a short run under a big GC
	// sawtooth) has a second half clearly slower than the whole: calling it
	// a leak would report the warm-up's climb as the leak's slope.
	rising := lateOK && fl.slope >= 0.5*f.slope && fl.hi >= 0.8*f.slope && fl.lo > 0 && fl.p < 2*alpha
	flatLate := lateOK && fl.hi < gate

	significant := f.slope >= gate && f.lo > 0 && f.p < alpha && f.z > 0
	switch {
	case significant && rising:
		res.Verdict = Leak
		res.Reason = fmt.Sprintf("sustained growth of %.1f MiB/hour (CI %.1f–%.1f, gate %.1f), still rising in the second half (%.1f MiB/hour)", f.slope, f.lo, f.hi, gate, fl.slope)
	case flatLate:
		res.Verdict = Pass
		if significant {
			res.Reason = fmt.Sprintf("rose %.0f MiB then levelled off: second-half slope %.1f MiB/hour (CI up to %.1f) is under the %.1f gate", res.GrowthMiB, fl.slope, fl.hi, gate)
		} else {
			res.Reason = fmt.Sprintf("flat: second-half slope %.1f MiB/hour (CI up to %.1f) is under the %.1f gate", fl.slope, fl.hi, gate)
		}
	case f.hi < gate:
		res.Verdict = Pass
		res.Reason = fmt.Sprintf("slope %.1f MiB/hour (CI up to %.1f) is under the %.1f gate", f.slope, f.hi, gate)
	default:
		res.Verdict = Inconclusive
		switch {
		case significant:
			res.Reason = fmt.Sprintf("growth of %.1f MiB/hour is slowing (second half %.1f): a late warm-up or a leak, not yet clear", f.slope, fl.slope)
		default:
			res.Reason = fmt.Sprintf("slope %.1f MiB/hour, CI %.1f–%.1f straddles the gate %.1f or 0", f.slope, f.lo, f.hi, gate)
		}
		n1 := extraFor(f, gate, wDur)
		if lateOK {
			n1 = max(n1, 2*extraFor(fl, gate, late.duration())+late.duration()*2-wDur)
		}
		setNeed(res, max(n1, minW/2))
	}
	// A warm-up whose time constant is as long as the data allow may not
	// be over: while its fitted tail still climbs at half the gate, a flat
	// second half can be a pause in it, or the tail overdone. Too early for
	// PASS (a LEAK survived every variant).
	const dt = 1.0 / 60
	if res.Verdict == Pass && wu.capped && (wu.at(end)-wu.at(end-dt))/dt >= gate/2 {
		res.Verdict = Inconclusive
		res.Reason = fmt.Sprintf("the warm-up may not be over (its fitted time constant, %.0f min, is as long as the data allow): %s", wu.tau*60, res.Reason)
		setNeed(res, max(4.5*wu.tau-(end-start), minW/2))
	}
	judgeFlush(res, flush, th, warm, end, gate, cfg)
	if res.Verdict == Pass {
		p := stats.Median(tail(w.raw, 0.25)) // the level as recorded, not shift-corrected
		res.PlateauMiB = &p
	}
	setDerived(res, ctx)
}

// extraFor estimates how many more hours a window of dur hours needs before
// the interval of f excludes both the gate and zero on one side. The interval
// of a trend shrinks about as dur^(-3/2) with regular sampling.
func extraFor(f trendFit, gate, dur float64) float64 {
	hw := (f.hi - f.lo) / 2
	d := math.Abs(f.slope - gate)
	if f.slope >= gate {
		d = min(d, f.slope) // also needs lo > 0
	}
	if d <= 0 || hw <= d {
		return 0
	}
	need := dur * math.Pow(hw/d, 2.0/3) * 1.2
	return min(need-dur, 7*24)
}

func setNeed(res *Result, hours float64) {
	m := math.Ceil(hours * 60)
	res.NeedMoreMinutes = &m
}

// tail returns the last frac of th by time.
func tail(th thinned, frac float64) []float64 {
	if th.len() == 0 {
		return nil
	}
	end := th.t[th.len()-1]
	return th.sub(end-frac*th.duration(), end).y
}

// endLevel is a robust level at the end of the series: the median of its
// last ten points.
func endLevel(th thinned) float64 {
	k := max(th.len()-10, 0)
	return stats.Median(th.y[k:])
}

// judgeFlush revises a lifetime's verdict when it shows slow flush cycles
// (see findFlush). This is the rule that keeps a window inside one rising
// tooth from being judged (MinWindowFraction's old job): while drops are
// recent (within two periods of the end; with one drop, the period is the
// time its tooth takes to climb by the drop), the judged window must hold
// two whole cycles (three drops) for any verdict, and the verdict then rests
// on the floors and the peaks, not on a line through the teeth: PASS when
// both are flat (their slopes' intervals under the gate), INCONCLUSIVE when
// the line said PASS but they are not. A LEAK over two whole cycles stands:
// a leak under flush cycles raises the floors too. Drops that stopped two
// periods ago were a one-off (or the cycles ended): judged as before.
func judgeFlush(res *Result, fl flushCycles, th thinned, warm, end, gate float64, cfg Config) {
	if fl.drops() == 0 {
		return
	}
	last := fl.t[fl.drops()-1]
	period := fl.period
	if period == 0 {
		period = fl.climb[0]
	}
	if end-last > 2*period {
		return
	}
	wf := fl.in(warm, end)
	res.FlushDrops = fl.drops()
	res.FlushPeriodS = fl.period * secPerHour
	whole := wf.drops() - 1
	if whole < 2 {
		// Time to the third drop in the window, at the period seen.
		from := warm
		if wf.drops() > 0 {
			from = last
		}
		need := from + float64(3-wf.drops())*period - end
		prev := res.NeedMoreMinutes
		res.Verdict = Inconclusive
		res.Reason = fmt.Sprintf("memory drops back to a floor in slow cycles (%d drop(s)%s, no exit): the judged window holds %d whole cycle(s), two are needed to tell them from a leak; %s",
			fl.drops(), periodText(fl.period), max(whole, 0), res.Reason)
		res.NeedMoreMinutes = nil
		setNeed(res, max(need, cfg.MinWindow.Hours()/2))
		if prev != nil && *prev > *res.NeedMoreMinutes {
			res.NeedMoreMinutes = prev
		}
		return
	}
	z := stats.NormalQuantile(1 - cfg.Alpha/2)
	fs, fse := levelTrend(wf.t, wf.floor, wf.levelSE)
	ps, pse := levelTrend(wf.t, wf.peak, wf.levelSE)
	res.FloorSlopeMiBPerHour, res.PeakSlopeMiBPerHour = &fs, &ps
	flat := math.Abs(fs)+z*fse < gate && math.Abs(ps)+z*pse < gate
	switch {
	case flat:
		res.Verdict = Pass
		res.NeedMoreMinutes = nil
		res.Provisional = false
		res.SlopeMiBPerHour = fs
		res.SlopeCIMiBPerHour = [2]float64{fs - z*fse, fs + z*fse}
		res.Reason = fmt.Sprintf("slow flush cycles%s, %d whole in the window, return to the same floor: floors %.1f MiB/hour (±%.1f), peaks %.1f (±%.1f), under the %.1f gate",
			periodText(fl.period), whole, fs, z*fse, ps, z*pse, gate)
	case res.Verdict == Pass:
		res.Verdict = Inconclusive
		res.Reason = fmt.Sprintf("slow flush cycles%s: floors move %.1f MiB/hour (±%.1f), peaks %.1f (±%.1f), not clearly under the %.1f gate",
			periodText(fl.period), fs, z*fse, ps, z*pse, gate)
		setNeed(res, max(fl.period, cfg.MinWindow.Hours()/2))
	}
}

func periodText(period float64) string {
	if period == 0 {
		return ""
	}
	return fmt.Sprintf(" every %.0f min", period*60)
}
