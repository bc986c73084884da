package attribute

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/relaysoak/relaysoak/internal/bytesize"
	"github.com/relaysoak/relaysoak/internal/stats"
)

// Observations are one run's samples: at each time, memory and the
// cumulative count of every factor.
type Observations struct {
	T      []float64            // seconds since the run's start, increasing
	Memory []float64            // bytes
	Counts map[Factor][]float64 // cumulative counts, non-decreasing, same length as T
}

// FitConfig tunes Fit; zero values mean the defaults given per field.
type FitConfig struct {
	// WarmupEndS: samples before it are dropped (the caller decides it).
	WarmupEndS float64
	// Level of the intervals. Default 0.95.
	Level float64
	// MinGrowthMiB: fitted growth over the judged window smaller than this is
	// "none". Default 4 MiB: twice the noise a relay's memory shows around
	// its trend (sd ≈ 2 MiB, the plan's NoiseMiB); less is not told from a
	// sawtooth in 200 flat test runs.
	MinGrowthMiB float64
	// MinShare: a significant factor is named only if it explains at least
	// this share of the fitted growth. Default 0.25: growth with time alone
	// leaks 10–22% into some factor's count now and then (each count also
	// rises with time), and a factor explaining less is not where to look.
	MinShare float64
	// MinPoints after the warm-up. Default 30.
	MinPoints int
	// Lags of the Newey–West estimator. Default 0: Andrews' AR(1) plug-in.
	Lags int
	// Floors: when memory is a fast sawtooth (FindTeeth, from the first
	// sample: growth after the warm-up can hide the drops while the teeth
	// go on), fit each tooth's floor after the warm-up instead of every
	// sample.
	Floors bool
}

func (c FitConfig) withDefaults() FitConfig {
	if c.Level <= 0 || c.Level >= 1 {
		c.Level = 0.95
	}
	if c.MinGrowthMiB <= 0 {
		c.MinGrowthMiB = 4
	}
	if c.MinShare <= 0 {
		c.MinShare = 0.25
	}
	if c.MinPoints <= 0 {
		c.MinPoints = 30
	}
	return c
}

// Verdict kinds.
const (
	VerdictFactor       = "factor"       // one or more factors named
	VerdictTime         = "time"         // growth follows time, no factor
	VerdictNone         = "none"         // nothing grows
	VerdictInconclusive = "inconclusive" // too few points, or factors not separable
)

// Term is one regressor's estimate.
type Term struct {
	Factor       Factor  `json:"factor"`
	BytesPerUnit float64 `json:"bytes_per_unit"` // for Time: bytes per second
	Lo           float64 `json:"lo"`
	Hi           float64 `json:"hi"`
	// BytesPerHour is BytesPerUnit×3600, for Time only.
	BytesPerHour float64 `json:"bytes_per_hour,omitempty"`
	// Delta is the count's rise over the judged window (seconds for Time).
	Delta float64 `json:"delta"`
	// Growth is BytesPerUnit·Delta, the bytes this term explains.
	Growth float64 `json:"growth_bytes"`
	// Share is Growth over the total fitted growth (0 when that is below the
	// floor, where shares mean nothing).
	Share       float64 `json:"share"`
	Significant bool    `json:"significant"` // the interval excludes 0
	// Firm: the Bonferroni interval (level 1−(1−Level)/m over the m terms in
	// the model) excludes 0 too. Only firm terms are named.
	Firm  bool `json:"firm"`
	Named bool `json:"named"` // the verdict blames it
	// Dropped says why the term is not in the model ("" when it is).
	Dropped string `json:"dropped,omitempty"`
	// Note flags an estimate to read with care (near-collinear).
	Note string `json:"note,omitempty"`
}

// Result is what Fit found.
type Result struct {
	Verdict string `json:"verdict"`
	Reason  string `json:"reason,omitempty"`
	// Terms: the factors in canonical order, then Time.
	Terms        []Term  `json:"terms"`
	Level        float64 `json:"level"`
	Points       int     `json:"points"`
	WindowStartS float64 `json:"window_start_s"`
	WindowEndS   float64 `json:"window_end_s"`
	// GrowthBytes is the total fitted growth over the window, with its
	// interval (the total is well determined even when its split is not).
	GrowthBytes float64 `json:"growth_bytes"`
	GrowthLo    float64 `json:"growth_lo"`
	GrowthHi    float64 `json:"growth_hi"`
	// FactorsWald is the joint Wald statistic that every factor's β is 0,
	// against its χ² critical value at Level.
	FactorsWald         float64 `json:"factors_wald"`
	FactorsWaldCritical float64 `json:"factors_wald_critical"`
	// TimeAlone is memory fitted on time only: the slope a "time" verdict
	// reports.
	TimeAlone *Term `json:"time_alone,omitempty"`
	// ResidualSDBytes, ResidualAR1 describe the noise; Lags is the HAC lag.
	ResidualSDBytes float64 `json:"residual_sd_bytes"`
	ResidualAR1     float64 `json:"residual_ar1"`
	Lags            int     `json:"hac_lags"`
	// Downweighted is how many samples the Huber pass down-weighted.
	Downweighted int     `json:"downweighted"`
	MinGrowthMiB float64 `json:"min_growth_mib"`
	// Signal names the memory series fitted, and CrossCheck is the same fit
	// on another (RSS beside a live heap: growth outside the heap shows
	// only there); Goroutines is the same fit on the goroutine count,
	// whose units are goroutines; the caller fills all three.
	Signal string `json:"signal,omitempty"`
	// Teeth is the sawtooth whose floors were fitted, when they were.
	Teeth      *stats.Teeth `json:"teeth,omitempty"`
	CrossCheck *Result      `json:"-"`
	Goroutines *Result      `json:"-"`
	growthFirm bool
}

// Term returns f's term, if any.
func (r Result) Term(f Factor) (Term, bool) {
	for _, t := range r.Terms {
		if t.Factor == f {
			return t, true
		}
	}
	return Term{}, false
}

// Named are the factors the verdict blames.
func (r Result) Named() []Factor {
	var out []Factor
	for _, t := range r.Terms {
		if t.Named {
			out = append(out, t.Factor)
		}
	}
	return out
}

// factorOrder is AllFactors first, then any other names sorted.
func factorOrder(counts map[Factor][]float64) []Factor {
	var out, rest []Factor
	for _, f := range AllFactors {
		if _, ok := counts[f]; ok {
			out = append(out, f)
		}
	}
	for f := range counts {
		if !slices.Contains(AllFactors, f) {
			rest = append(rest, f)
		}
	}
	sort.Slice(rest, func(i, j int) bool { return rest[i] < rest[j] })
	return append(out, rest...)
}

// Factors checks that o's series line up and returns the factors it
// counts, in plan order.
func (o Observations) Factors() ([]Factor, error) {
	n := len(o.T)
	if len(o.Memory) != n {
		return nil, fmt.Errorf("attribute: %d times but %d memory samples", n, len(o.Memory))
	}
	if len(o.Counts) == 0 {
		return nil, errors.New("attribute: no factor counts")
	}
	for i, t := range o.T {
		if math.IsNaN(t) || math.IsInf(t, 0) || math.IsNaN(o.Memory[i]) || math.IsInf(o.Memory[i], 0) {
			return nil, fmt.Errorf("attribute: sample %d: time or memory not a number", i)
		}
		if i > 0 && t <= o.T[i-1] {
			return nil, fmt.Errorf("attribute: sample %d: time %.3f not after %.3f", i, t, o.T[i-1])
		}
	}
	fs := factorOrder(o.Counts)
	for _, f := range fs {
		c := o.Counts[f]
		if f == "" || f == Time {
			return nil, fmt.Errorf("attribute: factor name %q reserved", f)
		}
		if len(c) != n {
			return nil, fmt.Errorf("attribute: %s: %d counts for %d samples", f, len(c), n)
		}
		for i, v := range c {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("attribute: %s: sample %d not a number", f, i)
			}
			if i > 0 && v < c[i-1] {
				return nil, fmt.Errorf("attribute: %s: cumulative count falls at sample %d (%.0f after %.0f)", f, i, v, c[i-1])
			}
		}
	}
	return fs, nil
}

// minFitFloors is the fewest floors a fit takes instead of every sample:
// floors a window apart are nearly independent, where thirty samples 10 s
// apart hold far less (the six-term model keeps 18 degrees of freedom).
const minFitFloors = 24

// huberK is the Huber tuning constant in MADs of the residuals: only spikes
// beyond 3σ are down-weighted (weight k·s/|r|). A smaller k (2) touched
// ordinary samples too, and since the weights depend on the noise the
// sandwich treats them as fixed, it narrowed the intervals (null terms
// excluding 0 went from 5.7% to 7.2% on white noise).
const huberK = 3.0

// Fit regresses memory on [1, time, cumulative counts…] after the warm-up
// and judges which factors drive growth. Malformed input is an error; too
// little or inseparable data is an inconclusive Result.
func Fit(obs Observations, cfg FitConfig) (Result, error) {
	c := cfg.withDefaults()
	fs, err := obs.Factors()
	if err != nil {
		return Result{}, err
	}
	res := Result{Level: c.Level, MinGrowthMiB: c.MinGrowthMiB}
	minPoints := c.MinPoints
	if c.Floors && len(obs.T) > 0 {
		end := obs.T[len(obs.T)-1]
		if th := stats.FindTeeth(obs.T, obs.Memory, obs.T[0], end, (end-c.WarmupEndS)/minFitFloors); th.Found() {
			obs = obs.Floors(c.WarmupEndS, th.WindowS)
			res.Teeth = &th
			minPoints = min(minPoints, minFitFloors)
		}
	}
	first := sort.SearchFloat64s(obs.T, c.WarmupEndS)
	n := len(obs.T) - first
	res.Points = n
	terms := make([]Term, 0, len(fs)+1)
	for _, f := range fs {
		terms = append(terms, Term{Factor: f})
	}
	terms = append(terms, Term{Factor: Time})
	res.Terms = terms
	if n < minPoints {
		res.Verdict = VerdictInconclusive
		res.Reason = fmt.Sprintf("%d samples after the warm-up, at least %d needed", n, minPoints)
		return res, nil
	}
	t := obs.T[first:]
	y := obs.Memory[first:]
	res.WindowStartS, res.WindowEndS = t[0], t[n-1]
	// Columns: intercept, time, factors (time before factors: a factor whose
	// count only follows the clock is the one dropped, being the one the plan
	// failed to vary).
	x := [][]float64{nil, t}
	termOf := []int{-1, len(fs)}
	for i, f := range fs {
		cnt := obs.Counts[f][first:]
		col := make([]float64, n)
		for k := range col {
			col[k] = cnt[k] - cnt[0]
		}
		x = append(x, col)
		termOf = append(termOf, i)
		terms[i].Delta = col[n-1]
	}
	terms[len(fs)].Delta = t[n-1] - t[0]
	x[0] = make([]float64, n)
	d := newScaledDesign(x)
	resid, keepMask := d.independence()
	var keep []int
	var collinear []string
	for j := range x {
		if j == 0 {
			keep = append(keep, 0)
			continue
		}
		tm := &terms[termOf[j]]
		switch {
		case d.scale[j] == 0:
			tm.Dropped = "never changed in the judged window"
		case !keepMask[j]:
			tm.Dropped = "collinear with time or the factors before it"
			collinear = append(collinear, tm.Factor.Label())
		default:
			keep = append(keep, j)
			if resid[j] < nearCollinearTol {
				tm.Note = "nearly collinear with the others: wide interval"
			}
		}
	}
	if len(keep) <= 1 {
		res.Verdict = VerdictInconclusive
		res.Reason = "no regressor varies in the judged window"
		return res, nil
	}
	w := make([]float64, n)
	for i := range w {
		w[i] = 1
	}
	_, _, u, err := d.wls(y, w, keep)
	if err != nil {
		return res, fmt.Errorf("attribute: %w", err)
	}
	var ss float64
	for _, v := range u {
		ss += v * v
	}
	res.ResidualSDBytes = math.Sqrt(ss / float64(max(n-len(keep), 1)))
	// Prewhiten (Cochrane–Orcutt): quasi-difference memory and every column
	// by the residuals' lag-1 autocorrelation ρ. Memory noise is persistent
	// (sawtooth, lazily returned pages); on the raw series Newey–West
	// intervals came out far too narrow (16% of null terms excluded 0 at a
	// nominal 5%), on the whitened one the kernel only mops up what AR(1)
	// misses. The slopes keep their meaning: x_t − ρx_{t−1} is linear in β.
	rho := stats.ClampRho(stats.Lag1(u))
	res.ResidualAR1 = rho
	xw := make([][]float64, len(x))
	for j, col := range x {
		xw[j] = make([]float64, n-1)
		if j == 0 {
			continue
		}
		for i := range xw[j] {
			xw[j][i] = col[i+1] - rho*col[i]
		}
	}
	yw := make([]float64, n-1)
	for i := range yw {
		yw[i] = y[i+1] - rho*y[i]
	}
	d = newScaledDesign(xw)
	w = w[:n-1]
	_, _, u, err = d.wls(yw, w, keep)
	if err != nil {
		return res, fmt.Errorf("attribute: %w", err)
	}
	// One Huber pass.
	s := stats.MAD(u)
	if s > 0 {
		for i, r := range u {
			if a := math.Abs(r); a > huberK*s {
				w[i] = huberK * s / a
				res.Downweighted++
			}
		}
	}
	beta, cov, lags, err := estimate(d, yw, w, keep, c.Lags)
	if err != nil {
		return res, fmt.Errorf("attribute: %w", err)
	}
	res.Lags = lags
	z := stats.NormalQuantile(1 - (1-c.Level)/2)
	// Five terms tested at once: at 95% each, a flat run shows some
	// "significant" term one time in four. Naming asks every term to pass the
	// family-wise (Bonferroni) level; and the HAC intervals, even on the
	// prewhitened series, cover a little under their nominal level on
	// persistent noise (≈92% at AR 0.8 in the tests), another reason.
	zFirm := stats.NormalQuantile(1 - (1-c.Level)/2/float64(len(keep)-1))
	var gVar float64
	var fb []float64 // factor coefficients (scaled), for the joint test
	var fk []int
	for k, j := range keep {
		if j == 0 {
			continue
		}
		tm := &terms[termOf[j]]
		b := beta[k] / d.scale[j]
		se := math.Sqrt(math.Max(cov[k][k], 0)) / d.scale[j]
		tm.BytesPerUnit, tm.Lo, tm.Hi = b, b-z*se, b+z*se
		tm.Significant = tm.Lo > 0 || tm.Hi < 0
		tm.Firm = math.Abs(b) > zFirm*se
		tm.Growth = b * tm.Delta
		res.GrowthBytes += tm.Growth
		for l, j2 := range keep {
			if j2 != 0 {
				gVar += tm.Delta / d.scale[j] * terms[termOf[j2]].Delta / d.scale[j2] * cov[k][l]
			}
		}
		if j >= 2 {
			fb = append(fb, beta[k])
			fk = append(fk, k)
		}
	}
	// The total growth is well determined even when its split is not (every
	// count also rises with time): its own interval says whether memory grows.
	gse := math.Sqrt(math.Max(gVar, 0))
	res.GrowthLo, res.GrowthHi = res.GrowthBytes-z*gse, res.GrowthBytes+z*gse
	res.growthFirm = res.GrowthBytes > zFirm*gse
	// Joint Wald test that no factor matters (HAC covariance, χ²).
	if len(fk) > 0 {
		sub := make([][]float64, len(fk))
		for a, ka := range fk {
			sub[a] = make([]float64, len(fk))
			for b2, kb := range fk {
				sub[a][b2] = cov[ka][kb]
			}
		}
		if x, ok := solveSym(sub, fb); ok {
			res.FactorsWald = dot(fb, x)
			res.FactorsWaldCritical = chi2Quantile(c.Level, len(fk))
		}
	}
	// Growth with time alone: memory on [1, time] only, for the slope the
	// "time" verdict reports (far tighter than the full model's time term).
	if slices.Contains(keep, 1) {
		bt, ct, _, err := estimate(d, yw, w, []int{0, 1}, c.Lags)
		if err == nil {
			b := bt[1] / d.scale[1]
			se := math.Sqrt(math.Max(ct[1][1], 0)) / d.scale[1]
			td := terms[len(fs)].Delta
			res.TimeAlone = &Term{Factor: Time, BytesPerUnit: b, Lo: b - z*se, Hi: b + z*se, BytesPerHour: b * 3600,
				Delta: td, Growth: b * td, Share: 1, Significant: math.Abs(b) > z*se, Firm: math.Abs(b) > zFirm*se}
		}
	}
	tt := &terms[len(fs)]
	tt.BytesPerHour = tt.BytesPerUnit * 3600
	floor := c.MinGrowthMiB * (1 << 20)
	// Share: β·Δcount over Σ|β·Δcount| — the plain β·Δcount / Σ when no
	// term is negative (the usual case), and still within [−1, 1] when terms
	// cancel (a factor's fit below 0 offset by time above it), where the signed
	// sum would give shares of ±1000%. Zero when the growth is under the floor.
	var abs float64
	for _, t := range terms {
		abs += math.Abs(t.Growth)
	}
	if res.GrowthBytes >= floor && abs > 0 {
		for i := range terms {
			terms[i].Share = terms[i].Growth / abs
		}
	}
	judge(&res, c, floor, collinear)
	return res, nil
}

// judge sets the verdict from the terms.
func judge(res *Result, c FitConfig, floor float64, collinear []string) {
	terms := res.Terms
	if res.GrowthBytes < floor || !res.growthFirm {
		res.Verdict = VerdictNone
		if len(collinear) > 0 {
			res.Reason = "not separable: " + strings.Join(collinear, ", ")
		}
		return
	}
	if len(collinear) > 0 {
		res.Verdict = VerdictInconclusive
		res.Reason = fmt.Sprintf("memory grows but %s could not be separated from time or the other factors (their rates never changed independently)", strings.Join(collinear, " and "))
		return
	}
	for i := range terms {
		t := &terms[i]
		if t.Factor == Time || t.Dropped != "" {
			continue
		}
		if t.Firm && t.BytesPerUnit > 0 && t.Growth >= floor && t.Share >= c.MinShare {
			t.Named = true
		}
	}
	if len(res.Named()) > 0 {
		res.Verdict = VerdictFactor
		return
	}
	if ta := res.TimeAlone; res.FactorsWald <= res.FactorsWaldCritical && ta != nil && ta.Firm && ta.BytesPerUnit > 0 && ta.Growth >= floor {
		// Time is named only when the run could have seen each factor:
		// a factor whose interval holds the rate that would explain all
		// the growth is not ruled out, however insignificant.
		if open := notRuledOut(terms, res.GrowthBytes); len(open) > 0 {
			res.Verdict = VerdictInconclusive
			res.Reason = fmt.Sprintf("memory grows (%s over the window), but the intervals are too wide to tell growth with time from growth with %s: each holds the rate that would explain all of it. A plan for the noise this run had (ATTRIBUTE_NOISE), or longer phases (ATTRIBUTE_PHASE), separates them",
				bytesize.Scaled(res.GrowthBytes, res.GrowthBytes), strings.Join(open, " or "))
			return
		}
		res.Verdict = VerdictTime
		return
	}
	res.Verdict = VerdictInconclusive
	res.Reason = fmt.Sprintf("memory grows (%s over the window) and the factors jointly matter (Wald %.1f > %.1f), but no single factor explains it firmly",
		bytesize.Scaled(res.GrowthBytes, res.GrowthBytes), res.FactorsWald, res.FactorsWaldCritical)
}

// notRuledOut names the factors whose interval holds the rate per unit
// that would explain all of growth over their rise in the window.
func notRuledOut(terms []Term, growth float64) []string {
	var out []string
	for _, t := range terms {
		if t.Factor == Time || t.Dropped != "" || t.Delta <= 0 {
			continue
		}
		if all := growth / t.Delta; t.Lo <= all && all <= t.Hi {
			out = append(out, t.Factor.Label())
		}
	}
	return out
}

// estimate is the weighted fit of the kept columns with its Newey–West
// covariance (scaled coordinates), and the lag used.
func estimate(d scaledDesign, y, w []float64, keep []int, lags int) (beta []float64, cov [][]float64, lag int, err error) {
	beta, ainv, u, err := d.wls(y, w, keep)
	if err != nil {
		return nil, nil, 0, err
	}
	wu := make([]float64, len(u))
	for i := range u {
		wu[i] = w[i] * u[i]
	}
	lag = lags
	if lag <= 0 {
		lag = andrewsLag(stats.Lag1(wu), len(u))
	}
	return beta, hacCov(d, keep, w, u, ainv, lag), lag, nil
}

// solveSym solves Ax = b for a small symmetric positive definite A by
// Cholesky; false if A is not.
func solveSym(a [][]float64, b []float64) ([]float64, bool) {
	n := len(b)
	l := make([][]float64, n)
	for i := range l {
		l[i] = make([]float64, n)
		for j := 0; j <= i; j++ {
			s := a[i][j]
			for k := 0; k < j; k++ {
				s -= l[i][k] * l[j][k]
			}
			if i == j {
				if s <= 0 {
					return nil, false
				}
				l[i][i] = math.Sqrt(s)
			} else {
				l[i][j] = s / l[j][j]
			}
		}
	}
	y := make([]float64, n)
	for i := range y {
		s := b[i]
		for k := 0; k < i; k++ {
			s -= l[i][k] * y[k]
		}
		y[i] = s / l[i][i]
	}
	x := make([]float64, n)
	for i := n - 1; i >= 0; i-- {
		s := y[i]
		for k := i + 1; k < n; k++ {
			s -= l[k][i] * x[k]
		}
		x[i] = s / l[i][i]
	}
	return x, true
}

// chi2Quantile is the p-quantile of χ² with k degrees of freedom
// (Wilson–Hilferty; within 1% for k ≥ 1 at p = 0.95).
func chi2Quantile(p float64, k int) float64 {
	kf := float64(k)
	h := 2 / (9 * kf)
	v := 1 - h + stats.NormalQuantile(p)*math.Sqrt(h)
	return kf * v * v * v
}
