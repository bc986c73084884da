package attribute

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
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
	// "none". Default 1 MiB.
	MinGrowthMiB float64
	// MinShare: a significant factor is named only if it explains at least
	// this share of the fitted growth. Default 0.1.
	MinShare float64
	// MinPoints after the warm-up. Default 30.
	MinPoints int
	// Lags of the Newey–West estimator. Default 0: Andrews' AR(1) plug-in.
	Lags int
}

func (c FitConfig) withDefaults() FitConfig {
	if c.Level <= 0 || c.Level >= 1 {
		c.Level = 0.95
	}
	if c.MinGrowthMiB <= 0 {
		c.MinGrowthMiB = 1
	}
	if c.MinShare <= 0 {
		c.MinShare = 0.1
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
	Named       bool    `json:"named"`       // the verdict blames it
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
	// GrowthBytes is the total fitted growth over the window.
	GrowthBytes float64 `json:"growth_bytes"`
	// ResidualSDBytes, ResidualAR1 describe the noise; Lags is the HAC lag.
	ResidualSDBytes float64 `json:"residual_sd_bytes"`
	ResidualAR1     float64 `json:"residual_ar1"`
	Lags            int     `json:"hac_lags"`
	// Downweighted is how many samples the Huber pass down-weighted.
	Downweighted int     `json:"downweighted"`
	MinGrowthMiB float64 `json:"min_growth_mib"`
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

func (o Observations) validate() ([]Factor, error) {
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

// huberK is the Huber tuning constant in MADs of the residuals: a sawtooth
// and AR noise put ordinary samples within ~2σ, so only spikes beyond are
// down-weighted (k·s/|r|).
const huberK = 2.0

// Fit regresses memory on [1, time, cumulative counts…] after the warm-up
// and judges which factors drive growth. Malformed input is an error; too
// little or inseparable data is an inconclusive Result.
func Fit(obs Observations, cfg FitConfig) (Result, error) {
	c := cfg.withDefaults()
	fs, err := obs.validate()
	if err != nil {
		return Result{}, err
	}
	res := Result{Level: c.Level, MinGrowthMiB: c.MinGrowthMiB}
	first := sort.SearchFloat64s(obs.T, c.WarmupEndS)
	n := len(obs.T) - first
	res.Points = n
	terms := make([]Term, 0, len(fs)+1)
	for _, f := range fs {
		terms = append(terms, Term{Factor: f})
	}
	terms = append(terms, Term{Factor: Time})
	res.Terms = terms
	if n < c.MinPoints {
		res.Verdict = VerdictInconclusive
		res.Reason = fmt.Sprintf("%d samples after the warm-up, at least %d needed", n, c.MinPoints)
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
			collinear = append(collinear, tm.Factor.label())
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
	// One Huber pass.
	s := mad(u)
	if s > 0 {
		for i, r := range u {
			if a := math.Abs(r); a > huberK*s {
				w[i] = huberK * s / a
				res.Downweighted++
			}
		}
	}
	beta, ainv, u, err := d.wls(y, w, keep)
	if err != nil {
		return res, fmt.Errorf("attribute: %w", err)
	}
	wu := make([]float64, n)
	var ss float64
	for i := range u {
		wu[i] = w[i] * u[i]
		ss += u[i] * u[i]
	}
	res.ResidualSDBytes = math.Sqrt(ss / float64(max(n-len(keep), 1)))
	res.ResidualAR1 = lag1(wu)
	res.Lags = c.Lags
	if res.Lags <= 0 {
		res.Lags = andrewsLag(res.ResidualAR1, n)
	}
	cov := hacCov(d, keep, w, u, ainv, res.Lags)
	z := normalQuantile(1 - (1-c.Level)/2)
	for k, j := range keep {
		if j == 0 {
			continue
		}
		tm := &terms[termOf[j]]
		b := beta[k] / d.scale[j]
		se := math.Sqrt(math.Max(cov[k][k], 0)) / d.scale[j]
		tm.BytesPerUnit, tm.Lo, tm.Hi = b, b-z*se, b+z*se
		tm.Significant = tm.Lo > 0 || tm.Hi < 0
		tm.Growth = b * tm.Delta
		res.GrowthBytes += tm.Growth
	}
	tt := &terms[len(fs)]
	tt.BytesPerHour = tt.BytesPerUnit * 3600
	floor := c.MinGrowthMiB * (1 << 20)
	if res.GrowthBytes >= floor {
		for i := range terms {
			terms[i].Share = terms[i].Growth / res.GrowthBytes
		}
	}
	judge(&res, c, floor, collinear)
	return res, nil
}

// judge sets the verdict from the terms.
func judge(res *Result, c FitConfig, floor float64, collinear []string) {
	terms := res.Terms
	grows := res.GrowthBytes >= floor
	anySig := false
	for _, t := range terms {
		if t.Significant && t.BytesPerUnit > 0 {
			anySig = true
		}
	}
	if !grows || !anySig {
		res.Verdict = VerdictNone
		if len(collinear) > 0 {
			res.Reason = fmt.Sprintf("not separable: %v", collinear)
		}
		return
	}
	if len(collinear) > 0 {
		res.Verdict = VerdictInconclusive
		res.Reason = fmt.Sprintf("memory grows but %v could not be separated from time or the other factors (their rates never changed independently)", collinear)
		return
	}
	for i := range terms {
		t := &terms[i]
		if t.Factor == Time {
			continue
		}
		if t.Significant && t.BytesPerUnit > 0 && t.Growth >= floor && t.Share >= c.MinShare {
			t.Named = true
		}
	}
	if len(res.Named()) > 0 {
		res.Verdict = VerdictFactor
		return
	}
	tt := terms[len(terms)-1]
	if tt.Significant && tt.BytesPerUnit > 0 && tt.Growth >= floor {
		res.Verdict = VerdictTime
		return
	}
	res.Verdict = VerdictNone
}
