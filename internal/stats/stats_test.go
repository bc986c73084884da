package stats

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestLocationAndScale(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3}
	assert.Equal(t, 3.0, Median(xs))
	assert.Equal(t, []float64{5, 1, 4, 2, 3}, xs, "Median leaves its input as it was")
	assert.Equal(t, 2.5, Median([]float64{4, 1, 3, 2}))
	assert.True(t, math.IsNaN(Median(nil)))
	assert.True(t, math.IsNaN(MAD(nil)))
	assert.InDelta(t, 1.4826, MAD([]float64{1, 2, 3, 4, 5}), 1e-12, "median |x−3| is 1")

	rng := rand.New(rand.NewPCG(1, 2))
	normal := make([]float64, 20000)
	for i := range normal {
		normal[i] = 7 + 2*rng.NormFloat64()
	}
	assert.InDelta(t, 2, MAD(normal), 0.05, "MAD estimates σ of normal data")
}

func TestNormal(t *testing.T) {
	assert.InDelta(t, 0.975, NormalCDF(1.959964), 1e-6)
	assert.InDelta(t, 1.959964, NormalQuantile(0.975), 1e-6)
	assert.InDelta(t, 0.3, NormalCDF(NormalQuantile(0.3)), 1e-12)
}

func TestLag1AndItsCap(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	ar := make([]float64, 20000)
	for i := 1; i < len(ar); i++ {
		ar[i] = 0.6*ar[i-1] + rng.NormFloat64()
	}
	assert.InDelta(t, 0.6, Lag1(ar), 0.02)
	assert.Zero(t, Lag1([]float64{1, 2}), "too short")
	assert.Zero(t, Lag1([]float64{3, 3, 3, 3}), "no variance")
	assert.Equal(t, MaxRho, ClampRho(0.999))
	assert.Zero(t, ClampRho(-0.4))
	assert.Equal(t, 0.5, ClampRho(0.5))
}
