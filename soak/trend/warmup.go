package trend

import "math"

// warmup is the fitted start-up transient A·exp(−(t−t0)/τ); zero A when
// the data show none.
type warmup struct {
	end        float64 // hours: when the warm-up is over
	t0, a, tau float64
}

// at is the transient's value at t (hours).
func (w warmup) at(t float64) float64 {
	if w.a == 0 {
		return 0
	}
	return w.a * math.Exp(-(t-w.t0)/w.tau)
}

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
	if best > 0.5*noExp {
		return none
	}
	sigma := math.Sqrt(best / float64(n-5))
	if math.Abs(bestA) < 5*sigma {
		return none
	}
	return warmup{end: t0 + 3*bestTau, t0: t0, a: bestA, tau: bestTau}
}

// findOnset looks for a leak that starts after a flat stretch: a continuous
// two-segment (hinge) fit whose second segment rises by more than the gate
// and at least four times as fast as the first. Guards, because a late window inside one
// slow flush cycle looks just like this: the hinge must explain clearly more
// than a line, the rising part must be long enough to judge, and the series
// must not have dropped sharply by as much as half the rise (a flush
// sawtooth) anywhere in the window.
func findOnset(w window, gate, minW float64, cfg Config) (float64, bool) {
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
	if before > 0.25*after || after < before+gate || post < max(minW, cfg.MinWindowFraction*dur) {
		return 0, false
	}
	rise := after * post
	for i := 1; i < n; i++ {
		if w.raw.y[i-1]-w.raw.y[i] > 0.5*rise {
			return 0, false
		}
	}
	return t0 + bestC, true
}
