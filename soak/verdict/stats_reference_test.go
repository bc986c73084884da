package verdict

import (
	"encoding/json"
	"math"
	"os"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// scipyCase is one series of testdata/scipy_reference.json, made by
// testdata/scipy_reference.py (which says how each value was computed).
type scipyCase struct {
	Name      string     `json:"name"`
	T         []float64  `json:"t"`
	Y         []float64  `json:"y"`
	Slope     float64    `json:"slope"`
	Intercept float64    `json:"intercept"`
	CI95      [2]float64 `json:"ci95"`
	CI99      [2]float64 `json:"ci99"`
	S         float64    `json:"s"`
	VarS      float64    `json:"var_s"`
	PMK       float64    `json:"p_mk"`
}

// TestAgainstScipy checks Sen's slope and interval and Mann–Kendall's S,
// variance and p-value against scipy's theilslopes and kendalltau.
func TestAgainstScipy(t *testing.T) {
	b, err := os.ReadFile("testdata/scipy_reference.json")
	require.NoError(t, err)
	var cases []scipyCase
	require.NoError(t, json.Unmarshal(b, &cases))
	require.Len(t, cases, 4)
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			require.Len(t, c.Y, len(c.T))
			f, slopes := fitTrend(c.T, c.Y, 0.01, nil)
			assert.InDelta(t, c.Slope, f.slope, 1e-9*math.Max(1, math.Abs(c.Slope)))
			assert.InDelta(t, c.Intercept, f.intercept, 1e-9*math.Max(1, math.Abs(c.Intercept)))

			// Mann–Kendall without the autocorrelation correction.
			assert.Equal(t, c.S, f.s)
			varS := mannKendallVar(c.Y)
			assert.InEpsilon(t, c.VarS, varS, 1e-5)
			_, p := mannKendallZ(f.s, varS)
			assert.InEpsilon(t, c.PMK, p, 1e-4)

			// Sen's interval: scipy rounds the order statistics (N ± C)/2 to
			// the nearest, the judge outwards; so each bound is scipy's or
			// the next slope outwards, never inside.
			for _, lv := range []struct {
				alpha float64
				ci    [2]float64
			}{{0.05, c.CI95}, {0.01, c.CI99}} {
				lo, hi := senInterval(slopes, varS, lv.alpha)
				iLo, iHi := slopeIndex(t, slopes, lv.ci[0]), slopeIndex(t, slopes, lv.ci[1])
				jLo, jHi := slopeIndex(t, slopes, lo), slopeIndex(t, slopes, hi)
				assert.Contains(t, []int{iLo - 1, iLo}, jLo, "lower bound at %.0f%%: %v, scipy %v", 100*(1-lv.alpha), lo, lv.ci[0])
				assert.Contains(t, []int{iHi, iHi + 1}, jHi, "upper bound at %.0f%%: %v, scipy %v", 100*(1-lv.alpha), hi, lv.ci[1])
			}
		})
	}
}

// slopeIndex is the index of v among the sorted slopes, matched to within
// rounding (scipy's and Go's divisions agree to the last bit or two); of
// equal slopes the first.
func slopeIndex(t *testing.T, sorted []float64, v float64) int {
	t.Helper()
	i, _ := slices.BinarySearch(sorted, v-1e-12*math.Max(1, math.Abs(v)))
	require.Less(t, i, len(sorted), "slope %v not among the pairwise slopes", v)
	require.InDelta(t, v, sorted[i], 1e-9*math.Max(1, math.Abs(v)), "slope %v not among the pairwise slopes", v)
	return i
}

// TestHamedRaoWorkedExample checks the Hamed–Rao variance factor against a
// case worked by hand. Detrended series (already ranks, no ties):
//
//	r = 1 2 3 4 8 7 6 5, n = 8, mean rank 4.5
//	d = r − 4.5 = −3.5 −2.5 −1.5 −0.5 3.5 2.5 1.5 0.5, Σd² = 42
//
// Autocorrelations ρ_k = Σ d_i·d_{i+k} / 42 for lags 1 ≤ k < n−2 = 6:
//
//	k=1: 8.75+3.75+0.75−1.75+8.75+3.75+0.75 = 24.75 → ρ₁ = 0.589286
//	k=2: 5.25+1.25−5.25−1.25+5.25+1.25     =  6.5  → ρ₂ = 0.154762
//	k=3: 1.75−8.75−3.75−0.75+1.75          = −9.75 → ρ₃ = −0.232143
//	k=4: −12.25−6.25−2.25−0.25             = −21   → ρ₄ = −0.5
//	k=5: −8.75−3.75−0.75                   = −13.25 → ρ₅ = −0.315476
//
// At α = 0.2 a lag counts when |ρ_k| > z(0.9)/√8 = 1.281552/2.828427 =
// 0.453102: lags 1 and 4. Then
//
//	Σ (n−k)(n−k−1)(n−k−2)·ρ_k = 7·6·5·0.589286 + 4·3·2·(−0.5)
//	                          = 123.75 − 12 = 111.75
//	n/n* = 1 + 2·111.75/(8·7·6) = 1 + 223.5/336 = 1.665179
//
// At α = 0.05 the limit is 1.959964/2.828427 = 0.692952: no lag counts and
// the factor is 1.
func TestHamedRaoWorkedExample(t *testing.T) {
	r := []float64{1, 2, 3, 4, 8, 7, 6, 5}
	assert.InDelta(t, 1+223.5/336, hamedRaoFactor(r, 0.2), 1e-12)
	assert.InDelta(t, 1, hamedRaoFactor(r, 0.05), 1e-12)
	// Only ranks matter: any increasing map of the series gives the same.
	sq := make([]float64, len(r))
	for i, v := range r {
		sq[i] = 100 + v*v
	}
	assert.InDelta(t, 1+223.5/336, hamedRaoFactor(sq, 0.2), 1e-12)

	// And the judge's interval uses the corrected variance: n = 8 without
	// ties has var(S) = 8·7·21/18 = 65.333; corrected, 108.790. On the
	// series as data over t = 0..7 (Sen's slope of it is what fitTrend
	// detrends by, so its residuals differ from r: recompute the factor).
	tt := []float64{0, 1, 2, 3, 4, 5, 6, 7}
	f, slopes := fitTrend(tt, r, 0.2, nil)
	resid := make([]float64, len(r))
	for i := range r {
		resid[i] = r[i] - f.slope*tt[i]
	}
	factor := math.Max(1, hamedRaoFactor(resid, 0.2))
	assert.InDelta(t, 8*7*21/18.0, mannKendallVar(r), 1e-12)
	lo, hi := senInterval(slopes, mannKendallVar(r)*factor, 0.2)
	assert.Equal(t, lo, f.lo)
	assert.Equal(t, hi, f.hi)
	assert.InDelta(t, 8/factor, f.nEff, 1e-12)
}
