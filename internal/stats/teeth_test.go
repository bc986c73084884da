package stats

import (
	"encoding/csv"
	"math/rand/v2"
	"os"
	"strconv"
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

// Teeth of a few samples each (a Go relay's heap at production load, a
// tooth a minute sampled every 10 s): each drop is three rises, under four
// median steps, but the drops come regularly, so they are teeth. Falls of
// white noise as large come at random, and are not.
func TestFindTeethOfAFewSamplesEach(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 5))
	var tt, y []float64
	for i := range 360 {
		tt = append(tt, 10*float64(i))
		phase := i % 4 // a tooth of 40 s: three rises of 40, one drop of 120
		y = append(y, 180+float64(phase)*40+rng.Float64()*10)
	}
	require.Empty(t, FindDrops(tt, y, DropConfig{Side: 1, Scale: StepScale, Times: dropOfStep}).At, "no drop is four steps")
	assert.False(t, FindTeeth(tt, y, 0, tt[len(tt)-1], 300).Found(), "four steps or none")
	th := FindFastTeeth(tt, y, 0, tt[len(tt)-1], 300)
	require.True(t, th.Found(), "%+v", th)
	assert.InDelta(t, 40, th.PeriodS, 1e-9)
	assert.InDelta(t, 60, th.WindowS, 1e-9)
	assert.InDelta(t, 90, th.Drops, 1, "one drop a tooth")

	noisy := 0
	for seed := range uint64(100) {
		rng := rand.New(rand.NewPCG(seed, 6))
		for i := range y {
			y[i] = 200 + 40*rng.NormFloat64()
		}
		if FindFastTeeth(tt, y, 0, tt[len(tt)-1], 300).Found() {
			noisy++
		}
	}
	t.Logf("white noise passed for teeth in %d of 100 draws", noisy)
	assert.LessOrEqual(t, noisy, 25, "white noise's falls come at random: it passes for teeth now and then at most")
}

// The live heap of the pinned indigo at HOSTS=2750 RATE=700 with ten
// consumers churning, sampled every 10 s (testdata/indigo-2750-live-heap.csv,
// from a production-shape soak): a tooth about a minute long, too few
// samples each for drops of four median steps, found as fast teeth.
func TestFindFastTeethInIndigosHeapAtProductionShape(t *testing.T) {
	f, err := os.Open("testdata/indigo-2750-live-heap.csv")
	require.NoError(t, err)
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	require.NoError(t, err)
	var tt, y []float64
	for _, r := range rows[1:] {
		s, err := strconv.ParseFloat(r[0], 64)
		require.NoError(t, err)
		b, err := strconv.ParseFloat(r[1], 64)
		require.NoError(t, err)
		tt, y = append(tt, s), append(y, b)
	}
	require.Greater(t, len(tt), 300, "an hour of samples")
	assert.False(t, FindTeeth(tt, y, 120, tt[len(tt)-1], 300).Found(), "no drop is four median steps")
	th := FindFastTeeth(tt, y, 120, tt[len(tt)-1], 300)
	require.True(t, th.Found(), "%+v", th)
	t.Logf("%+v", th)
	assert.InDelta(t, 60, th.PeriodS, 15, "a tooth about a minute long")
	assert.Greater(t, th.DepthMiB, 50.0)
}
