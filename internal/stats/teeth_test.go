package stats

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sawtooth is n points 10 s apart that climb one unit a point for period
// points and drop back, with noise of sd sd.
func sawtooth(n, period int, sd float64, seed uint64) (t, y []float64) {
	rng := rand.New(rand.NewPCG(seed, 1))
	t, y = make([]float64, n), make([]float64, n)
	for i := range n {
		t[i] = 10 * float64(i)
		y[i] = 100 + float64(i%period) + sd*rng.NormFloat64()
	}
	return t, y
}

func TestFindDropsInASawtooth(t *testing.T) {
	tt, y := sawtooth(200, 20, 0.05, 1)
	want := []int{20, 40, 60, 80, 100, 120, 140, 160, 180}
	depth := map[int]float64{0: 19, 1: 19, 3: 17} // the medians either side: the top and bottom, or one point in
	for _, side := range []int{0, 1, 3} {
		d := FindDrops(tt, y, DropConfig{Side: side})
		assert.Equal(t, want, d.At, "side %d: every drop, at the first point after it", side)
		assert.Equal(t, 200.0, d.Period, "side %d: 20 points of 10 s", side)
		require.Len(t, d.Depth, len(want))
		for k := range d.At {
			assert.Equal(t, d.Before[k]-d.After[k], d.Depth[k])
			assert.InDelta(t, depth[side], d.Depth[k], 0.5, "side %d", side)
		}
		assert.InDelta(t, 0.05, d.Scale, 0.02, "side %d: σ of the noise, not the rises or drops", side)
		assert.Equal(t, 8*d.Scale, d.Threshold)
	}
}

func TestFindDropsNotInNoise(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 3))
	for draw := range 20 {
		tt, y := make([]float64, 500), make([]float64, 500)
		for i := range y {
			tt[i] = float64(i)
			y[i] = 50 + 0.01*float64(i) + rng.NormFloat64()
		}
		assert.Empty(t, FindDrops(tt, y, DropConfig{}).At, "draw %d", draw)
		assert.Empty(t, FindDrops(tt, y, DropConfig{Side: 3}).At, "draw %d", draw)
	}
}

// A drop over two points is one drop, at its deeper half, unless every
// point that passes is wanted.
func TestFindDropsRunsOfCandidates(t *testing.T) {
	tt := []float64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	y := []float64{10, 11, 12, 13, 6, 1, 2, 3, 4, 5}
	c := DropConfig{Scale: StepScale, Times: 4}
	d := FindDrops(tt, y, c)
	assert.Equal(t, 4.0, d.Threshold, "4 × the median step")
	assert.Equal(t, []int{4}, d.At)
	assert.Equal(t, []float64{7}, d.Depth)
	assert.Zero(t, d.Period, "one drop has no period")

	c.EachCandidate = true
	d = FindDrops(tt, y, c)
	assert.Equal(t, []int{4, 5}, d.At)
	assert.Equal(t, []float64{13, 6}, d.Before)
	assert.Equal(t, []float64{6, 1}, d.After)
	assert.Equal(t, 1.0, d.Period)
}

func TestFindDropsOfLevel(t *testing.T) {
	tt, y := sawtooth(200, 20, 0.05, 4)
	assert.NotEmpty(t, FindDrops(tt, y, DropConfig{OfLevel: 0.1}).At, "drops of 19 on a level of about 110")
	d := FindDrops(tt, y, DropConfig{OfLevel: 0.2})
	assert.Empty(t, d.At, "not above 20% of it")
	assert.Equal(t, 0.2*Median(y), d.Threshold)
}

func TestFindDropsShortOrFlat(t *testing.T) {
	assert.Empty(t, FindDrops(nil, nil, DropConfig{}).At)
	assert.Empty(t, FindDrops([]float64{0, 1, 2, 3, 4}, []float64{9, 9, 9, 1, 1}, DropConfig{Side: 3}).At, "fewer than 2·Side points")
	d := FindDrops([]float64{0, 1, 2, 3}, []float64{5, 5, 5, 5}, DropConfig{Scale: StepScale})
	assert.Zero(t, d.Threshold)
	assert.Empty(t, d.At, "no fall is no drop")
}

func TestMedianSpacing(t *testing.T) {
	assert.Zero(t, MedianSpacing(nil))
	assert.Zero(t, MedianSpacing([]float64{3}))
	assert.Equal(t, 2.0, MedianSpacing([]float64{0, 2, 4, 9}))
}
