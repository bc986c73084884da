package verdict

import (
	"math"
	"slices"

	"github.com/relaysoak/relaysoak/internal/stats"
)

// Verdict is the judge's answer for a series.
type Verdict string

// The verdicts of one series (and Retained, of a run's kept memory beside
// its resident set: see Report.WithKept).
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
	// OOMSawtooth says the restarts were read as an OOM sawtooth (two or
	// more, or one from near the memory limit): a LEAK whatever else says.
	OOMSawtooth bool `json:"oom_sawtooth,omitempty"`
	Exits       int  `json:"exits"` // exits the run recorded

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

	ev := evidence{gate: res.GateMiBPerHour, exits: ctx.Exits}
	restarts := findRestarts(s, cfg.RestartFraction)
	res.Restarts = len(restarts)
	for _, i := range restarts {
		ev.restarts = append(ev.restarts, s[i].T)
	}
	bounds := segmentStarts(s, restarts, ctx.Exits)
	ev.oom = len(restarts) >= 2
	if len(restarts) == 1 && ctx.MemoryLimit > 0 {
		ev.oom = peakBefore(s, restarts[0]) >= 0.85*ctx.MemoryLimit
	}
	if ev.oom {
		res.OOMSawtooth = true
		judgeCycles(&res, s, bounds, ctx, cfg)
		ev.cycleSlope = res.SlopeMiBPerHour
	} else {
		ev.life = examineLifetime(s[bounds[len(bounds)-1]:], ev.gate, cfg)
	}

	d := decide(ev, cfg)
	if !ev.oom {
		ev.life.report(&res, d.lifetime(), ctx)
	}
	res.Verdict, res.Reason = d.verdict, reason(d)
	if d.need > 0 {
		setNeed(&res, d.need)
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
