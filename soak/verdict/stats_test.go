package verdict

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/relaysoak/relaysoak/internal/stats"
)

func TestFitTrendKnown(t *testing.T) {
	// An exact line: Sen's slope is exact, S is n(n−1)/2.
	tt := []float64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	y := make([]float64, len(tt))
	for i := range tt {
		y[i] = 3 + 2*tt[i]
	}
	f, _ := fitTrend(tt, y, 0.05, nil)
	assert.InDelta(t, 2, f.slope, 1e-12)
	assert.InDelta(t, 3, f.intercept, 1e-12)
	assert.Equal(t, 45.0, f.s)
	assert.Less(t, f.p, 1e-4)

	// Hand-checked: S for 1,3,2,4 is +5 − 1 = 4... pairs: (1,3)+ (1,2)+ (1,4)+ (3,2)− (3,4)+ (2,4)+.
	f, _ = fitTrend([]float64{0, 1, 2, 3}, []float64{1, 3, 2, 4}, 0.05, nil)
	assert.Equal(t, 4.0, f.s)
}

// TestHamedRao checks that the correction widens the variance for
// autocorrelated noise and keeps false positives near alpha: on AR(1) noise
// without trend the uncorrected test rejects far more often than 5%.
func TestHamedRao(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n, trials = 200, 200
	tt := make([]float64, n)
	for i := range tt {
		tt[i] = float64(i)
	}
	rejected, naive := 0, 0
	var meanFactor float64
	for range trials {
		y := make([]float64, n)
		var ar float64
		for i := range y {
			ar = 0.8*ar + rng.NormFloat64()
			y[i] = ar
		}
		f, _ := fitTrend(tt, y, 0.05, nil)
		meanFactor += float64(n) / f.nEff / trials
		if f.p < 0.05 {
			rejected++
		}
		// The uncorrected test, for comparison.
		v := float64(n) * (n - 1) * (2*n + 5) / 18
		if 2*(1-stats.NormalCDF(math.Abs(f.s)/math.Sqrt(v))) < 0.05 {
			naive++
		}
		require.False(t, math.IsNaN(f.p))
		assert.LessOrEqual(t, f.lo, f.slope)
		assert.GreaterOrEqual(t, f.hi, f.slope)
	}
	t.Logf("AR(1) φ=0.8, n=%d: mean variance factor %.1f; rejection rate at α=0.05: %.3f corrected, %.3f uncorrected",
		n, meanFactor, float64(rejected)/trials, float64(naive)/trials)
	assert.Greater(t, meanFactor, 2.0)
	assert.Less(t, float64(rejected)/trials, 0.3)
	assert.Less(t, rejected, naive)
}

func TestRemoveShifts(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	th := thinned{}
	for i := range 300 {
		th.t = append(th.t, float64(i)/60)
		y := 1000 + rng.NormFloat64()
		if i >= 120 {
			y += 200 // a one-off step
		}
		if i == 200 {
			y += 500 // an outlier
		}
		th.y = append(th.y, y)
	}
	sh, k := removeShifts(th)
	assert.Equal(t, 1, k)
	f, _ := fitTrend(sh.t, sh.y, 0.01, nil)
	assert.InDelta(t, 0, f.slope, 1)
}
