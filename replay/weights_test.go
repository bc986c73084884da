package replay

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestZipfWeightsAreSkewedLikeTheNetwork(t *testing.T) {
	w := ZipfWeights(2750, DefaultZipfS)
	var sum, top10, top100 float64
	for i, x := range w {
		sum += x
		if i < 10 {
			top10 += x
		}
		if i < 100 {
			top100 += x
		}
		if i > 0 {
			require.Less(t, x, w[i-1], "weights fall with rank")
		}
	}
	assert.InDelta(t, 1, sum, 1e-9)
	assert.InDelta(t, 0.219, w[0], 0.001)
	assert.InDelta(t, 0.54, top10, 0.01, "a few large hosts carry most")
	assert.InDelta(t, 0.79, top100, 0.01)
	assert.Less(t, 1-top100-0.14, 0.1, "the long tail carries little")
	// s = 0 is uniform.
	for _, x := range ZipfWeights(10, 0) {
		assert.InDelta(t, 0.1, x, 1e-12)
	}
}

func TestAliasSamplesByWeight(t *testing.T) {
	w := ZipfWeights(50, 1.2)
	a, err := newAlias(w)
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 1_000_000
	counts := make([]int, len(w))
	for i := 0; i < n; i++ {
		counts[a.pick(rng)]++
	}
	for i, x := range w {
		sd := math.Sqrt(x * n * (1 - x))
		assert.InDelta(t, x*n, float64(counts[i]), 5*sd+1, "host %d", i)
	}
	_, err = newAlias([]float64{0, 0})
	assert.Error(t, err)
	_, err = Weights{Kind: "pareto"}.withDefaults()
	assert.ErrorContains(t, err, "zipf, uniform or capture")
}
