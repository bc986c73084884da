package verdict

import "math"

// warmup is the fitted start-up transient: A·exp(−(t−t0)/τ), or with mid
// set the S-shaped A·(1 − logistic((t−t0−mid)/τ)); zero A when the data show
// none. A is negative for a rise.
type warmup struct {
	end        float64 // hours: when the warm-up is over
	t0, a, tau float64
	mid        float64 // hours after t0: the logistic's midpoint; 0 for the exponential
	// known is false when there were too few points to fit at all; capped
	// when the fitted warm-up ends about as late as the data let it (τ at
	// its cap): it may well go on past what the data show.
	known, capped bool
}

// at is the transient's value at t (hours).
func (w warmup) at(t float64) float64 {
	if w.a == 0 {
		return 0
	}
	if w.mid > 0 {
		return w.a * logisticTail((t-w.t0-w.mid)/w.tau)
	}
	return w.a * math.Exp(-(t-w.t0)/w.tau)
}

// logisticTail is 1 − 1/(1+e^−x): what is left of an S-shaped rise at x.
func logisticTail(x float64) float64 { return 1 / (1 + math.Exp(x)) }

// fitWarmup finds where warm-up ends. It fits
//
//	y = a + b·t + A·exp(−t/τ) [+ d·(t−c)₊]
//
// over a grid of τ (and of hinge points c, or none): a line for whatever
// steady growth there is (zero when healthy, the leak rate otherwise), a
// saturating approach from below, the shape of caches filling (a logistic
// warm-up's upper half has the same exponential tail), and optionally a
// hinge, so that a leak starting after a long plateau does not distort the
// warm-up. The warm-up ends at 3τ (95% of the way to the plateau); the rest of
// the transient is subtracted from the judged window as one of its variants
// (see judgeWindow), so that a long warm-up does not hide a leak for hours.
// The transient must earn its place: it must leave less than half of what the
// best fit without it leaves, and be 5σ of the noise (a sawtooth aliased by
// the sampling makes slow wiggles that a lax test takes for a warm-up). τ is
// at most a quarter of the data, so a warm-up never swallows the whole run.
func fitWarmup(th thinned) warmup {
	n := th.len()
	t0 := th.t[0]
	none := warmup{end: t0, t0: t0}
	dur := th.duration()
	if n < 3*minFitPoint || dur <= 0 {
		return none
	}
	x := make([]float64, n)
	ones := make([]float64, n)
	for i := range x {
		x[i] = th.t[i] - t0
		ones[i] = 1
	}
	y := runningMedian5(th.y)

	dtMed := dur / float64(n-1)
	tauMin := max(2*dtMed, 1.0/60)
	tauMax := dur / 4
	if tauMin >= tauMax {
		return none
	}
	none.known = true
	const tauGrid = 40
	hinges := [][]float64{nil}
	for frac := 0.1; frac <= 0.901; frac += 0.025 {
		h := make([]float64, n)
		for i := range x {
			h[i] = math.Max(0, x[i]-frac*dur)
		}
		hinges = append(hinges, h)
	}
	withHinge := func(base [][]float64, h []float64) [][]float64 {
		if h == nil {
			return base
		}
		return append(base, h)
	}
	noExp := math.Inf(1)
	for _, h := range hinges {
		if _, sse, ok := leastSquares(withHinge([][]float64{ones, x}, h), y); ok {
			noExp = min(noExp, sse)
		}
	}
	e := make([]float64, n)
	best, bestTau, bestA := math.Inf(1), 0.0, 0.0
	var bestHinge []float64
	for g := 0; g < tauGrid; g++ {
		tau := tauMin * math.Pow(tauMax/tauMin, float64(g)/(tauGrid-1))
		for i := range x {
			e[i] = math.Exp(-x[i] / tau)
		}
		for _, h := range hinges {
			c, sse, ok := leastSquares(withHinge([][]float64{ones, x, e}, h), y)
			if !ok || c[2] >= 0 { // only a rise towards a plateau is a warm-up
				continue
			}
			if sse < best {
				best, bestTau, bestA, bestHinge = sse, tau, c[2], h
			}
		}
	}
	if math.IsInf(best, 1) {
		return none
	}
	// Refine τ between the grid's neighbours (golden section), the hinge of
	// the best fit kept: the grid is 11% coarse, and an error in τ goes
	// straight into the slope of the corrected window.
	sseAt := func(tau float64) (float64, float64) {
		for i := range x {
			e[i] = math.Exp(-x[i] / tau)
		}
		c, sse, ok := leastSquares(withHinge([][]float64{ones, x, e}, bestHinge), y)
		if !ok || c[2] >= 0 {
			return math.Inf(1), 0
		}
		return sse, c[2]
	}
	step := math.Pow(tauMax/tauMin, 1.0/(tauGrid-1))
	lo, hi := bestTau/step, bestTau*step
	const phi = 0.6180339887
	for range 20 {
		a, b := hi-phi*(hi-lo), lo+phi*(hi-lo)
		if sa, _ := sseAt(a); sa < func() float64 { sb, _ := sseAt(b); return sb }() {
			hi = b
		} else {
			lo = a
		}
	}
	if sse, a := sseAt((lo + hi) / 2); sse < best {
		best, bestTau, bestA = sse, (lo+hi)/2, a
	}
	wu := warmup{end: t0 + 3*bestTau, t0: t0, a: bestA, tau: bestTau}
	// An S-shaped warm-up (slow start, fast middle, saturation: a cache
	// filling as hosts connect) has an exponential upper tail, but a fit of
	// the exponential from t0 takes the slow start for growth and leaves the
	// fast middle in the slope; the logistic is fitted too and kept when it
	// fits better. No hinge: a leak after an S-shaped plateau is still found
	// by findOnset.
	if lw, sse, ok := fitLogistic(x, y, ones, tauMin, tauMax, dur); ok && sse < best {
		best = sse
		wu = warmup{end: t0 + lw.mid + 3*lw.tau, t0: t0, a: lw.a, tau: lw.tau, mid: lw.mid}
	}
	if best > 0.5*noExp {
		return none
	}
	sigma := math.Sqrt(best / float64(n-5))
	if math.Abs(wu.a) < 5*sigma {
		return none
	}
	wu.known = true
	wu.capped = wu.end-t0 >= 0.9*3*tauMax
	return wu
}

// fitLogistic fits y = a + b·t + A·(1 − logistic((t−mid)/τ)) over a grid of
// τ and mid, refined once around the best, with the warm-up's end (mid+3τ)
// inside the data like the exponential's.
func fitLogistic(x, y, ones []float64, tauMin, tauMax, dur float64) (warmup, float64, bool) {
	n := len(x)
	g := make([]float64, n)
	best := math.Inf(1)
	var out warmup
	try := func(tau, mid float64) {
		if tau <= 0 || mid <= 0 || mid+3*tau > 3*tauMax {
			return
		}
		for i := range x {
			g[i] = logisticTail((x[i] - mid) / tau)
		}
		c, sse, ok := leastSquares([][]float64{ones, x, g}, y)
		if !ok || c[2] >= 0 {
			return
		}
		if sse < best {
			best, out = sse, warmup{a: c[2], tau: tau, mid: mid}
		}
	}
	const grid = 16
	for gi := 0; gi < grid; gi++ {
		tau := tauMin * math.Pow(tauMax/tauMin, float64(gi)/(grid-1))
		for mi := 1; mi <= grid; mi++ {
			try(tau, float64(mi)/grid*0.75*dur)
		}
	}
	if math.IsInf(best, 1) {
		return out, best, false
	}
	// One finer pass around the best grid point.
	step := math.Pow(tauMax/tauMin, 1.0/(grid-1))
	dm := 0.75 * dur / grid
	t0, m0 := out.tau, out.mid
	for _, ft := range []float64{1 / step, 1 / math.Sqrt(step), 1, math.Sqrt(step), step} {
		for _, fm := range []float64{-1, -0.5, -0.25, 0, 0.25, 0.5, 1} {
			try(t0*ft, m0+fm*dm)
		}
	}
	return out, best, true
}

// onsetMinFraction: the rising part of a hinge must be at least this share
// of the window, so that the last tooth of a flush cycle is no onset.
const onsetMinFraction = 0.25

// findOnset looks for a leak that starts after a flat stretch: a continuous
// two-segment (hinge) fit whose second segment rises by more than the gate
// and at least four times as fast as the first. Guards, because a late window inside one
// slow flush cycle looks just like this: the hinge must explain clearly more
// than a line, the rising part must be long enough to judge, and the series
// must not have dropped sharply by as much as half the rise (a flush
// sawtooth) anywhere in the window, and the rise must exceed the flat
// stretch's own excursions.
func findOnset(w window, gate, minW float64) (float64, bool) {
	// Without its level shifts, so that a one-off step is no onset.
	th, _ := removeShifts(w.base)
	n := th.len()
	if n < 4*minFitPoint {
		return 0, false
	}
	t0, end := th.t[0], th.t[n-1]
	dur := end - t0
	y := runningMedian5(th.y)
	x := make([]float64, n)
	ones := make([]float64, n)
	h := make([]float64, n)
	for i := range x {
		x[i] = th.t[i] - t0
		ones[i] = 1
	}
	sse0 := lineSSE(x, y)
	best, bestC, bestB := math.Inf(1), 0.0, [4]float64{}
	for frac := 0.1; frac <= 0.751; frac += 0.0125 {
		c := frac * dur
		for i := range x {
			h[i] = math.Max(0, x[i]-c)
		}
		b, sse, ok := leastSquares([][]float64{ones, x, h}, y)
		if ok && sse < best {
			best, bestC, bestB = sse, c, b
		}
	}
	if math.IsInf(best, 1) || best > 0.5*sse0 {
		return 0, false
	}
	before, after := bestB[1], bestB[1]+bestB[2]
	post := dur - bestC
	if before > 0.25*after || after < before+gate || post < max(minW, onsetMinFraction*dur) {
		return 0, false
	}
	rise := after * post
	// The climb must stand out of how far the "flat" stretch wandered
	// around its own line: slow, strongly autocorrelated noise has hinges
	// too, whose rise is no larger than its excursions.
	lo, hi := math.Inf(1), math.Inf(-1)
	for i := range x {
		if x[i] >= bestC {
			break
		}
		r := y[i] - bestB[0] - bestB[1]*x[i]
		lo, hi = min(lo, r), max(hi, r)
	}
	if rise <= hi-lo {
		return 0, false
	}
	for i := 1; i < n; i++ {
		if w.raw.y[i-1]-w.raw.y[i] > 0.5*rise {
			return 0, false
		}
	}
	return t0 + bestC, true
}
