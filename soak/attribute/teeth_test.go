package attribute

import (
	"testing"

	"github.com/relaysoak/relaysoak/internal/stats"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sawtoothSim is a relay like indigo at HOSTS=500 RATE=200: its live heap
// climbs 70 MiB in 75 s and drops back, around what it keeps.
func sawtoothSim(leak map[Factor]float64) sim {
	return sim{leak: leak, noiseMiB: 1, phi: 0.5, sawMiB: 70, sawPeriodS: 75, dtS: 10}
}

func TestFindTeethInASawtooth(t *testing.T) {
	p, err := NewPlan(fourFactors)
	require.NoError(t, err)
	obs := sawtoothSim(nil).run(p, 1)
	th := stats.FindTeeth(obs.T, obs.Memory, 600, obs.T[len(obs.T)-1], 300)
	require.True(t, th.Found(), "%+v", th)
	assert.InDelta(t, 75, th.PeriodS, 10)
	assert.InDelta(t, 70, th.DepthMiB, 15)
	assert.InDelta(t, (obs.T[len(obs.T)-1]-600)/75, th.Drops, 8)
	assert.Equal(t, 1.5*th.PeriodS, th.WindowS)

	th = stats.FindTeeth(obs.T, obs.Memory, 600, obs.T[len(obs.T)-1], 60)
	assert.False(t, th.Found(), "a window wider than allowed is no floor")
	assert.Positive(t, th.PeriodS, "but the teeth are still described")
}

// Noise around a trend, or a step, is not a sawtooth: no seed finds teeth.
func TestFindTeethNotInNoise(t *testing.T) {
	p, err := NewPlan(fourFactors)
	require.NoError(t, err)
	for seed := uint64(1); seed <= 20; seed++ {
		s := defaultSim(map[Factor]float64{Time: 10 << 20 / 3600.0})
		obs := s.run(p, seed)
		th := stats.FindTeeth(obs.T, obs.Memory, 600, obs.T[len(obs.T)-1], 300)
		assert.False(t, th.Found(), "seed %d: %+v", seed, th)
	}
	tt := []float64{0, 10, 20, 30, 40, 50, 60, 70, 80, 90}
	step := []float64{5, 5, 5, 5, 5, 1, 1, 1, 1, 1}
	assert.False(t, stats.FindTeeth(tt, step, 0, 90, 90).Found(), "one drop")
}

func TestFloorsKeepTheLowestSampleAndItsCounts(t *testing.T) {
	obs := Observations{
		T:      []float64{0, 10, 20, 30, 40, 50, 60, 70},
		Memory: []float64{9, 8, 5, 3, 7, 6, 4, 2},
		Counts: map[Factor][]float64{Frames: {0, 1, 2, 3, 4, 5, 6, 7}},
	}
	f := obs.Floors(10, 30)
	assert.Equal(t, []float64{0, 30, 60}, f.T, "the warm-up as it is, then the lowest of [10,40) and [40,70); [70,100) is cut short by the end")
	assert.Equal(t, []float64{9, 3, 4}, f.Memory)
	assert.Equal(t, []float64{0, 3, 6}, f.Counts[Frames], "a floor's counts are its own sample's")
}

// Through the teeth, every sample leaves 32 KiB per resolution unnamed
// half the time; the floors' intervals are a third as wide, and they name it.
// A sawtooth around a flat level is no growth.
func TestFitFloorsOfASawtooth(t *testing.T) {
	p, err := NewPlan(fourFactors)
	require.NoError(t, err)
	cfg := FitConfig{WarmupEndS: p.Warmup.Seconds()}
	floors := cfg
	floors.Floors = true

	leaky := sawtoothSim(map[Factor]float64{Resolutions: 32 << 10})
	named, covered := 0, 0
	for seed := uint64(1); seed <= 10; seed++ {
		obs := leaky.run(p, seed)
		raw, err := Fit(obs, cfg)
		require.NoError(t, err)
		res, err := Fit(obs, floors)
		require.NoError(t, err)
		require.NotNil(t, res.Teeth, "seed %d", seed)
		rt, _ := raw.Term(Resolutions)
		tm, ok := res.Term(Resolutions)
		require.True(t, ok)
		if tm.Named {
			named++
		}
		if tm.Lo <= 32<<10 && 32<<10 <= tm.Hi {
			covered++
		}
		assert.Less(t, tm.Hi-tm.Lo, (rt.Hi-rt.Lo)/2, "seed %d: the floors' interval is far narrower", seed)
	}
	assert.GreaterOrEqual(t, named, 9, "floors name the resolutions")
	assert.GreaterOrEqual(t, covered, 8, "their 95% intervals hold the truth")

	flat := sawtoothSim(nil)
	grows := 0
	for seed := uint64(1); seed <= 10; seed++ {
		res, err := Fit(flat.run(p, seed), floors)
		require.NoError(t, err)
		if res.Verdict == VerdictFactor || res.Verdict == VerdictTime {
			grows++
		}
	}
	assert.LessOrEqual(t, grows, 1, "a sawtooth around a flat level is not growth")
}

// The warm-up's check measures the floors' noise when memory is a
// sawtooth: what the fit will see, not the teeth.
func TestWarmupNoiseOfTheFloors(t *testing.T) {
	p, err := NewPlan(fourFactors)
	require.NoError(t, err)
	obs := sawtoothSim(nil).run(p, 2)
	n, err := p.MeasureWarmupNoise(obs.T, obs.Memory)
	require.NoError(t, err)
	require.NotNil(t, n.Teeth)
	assert.GreaterOrEqual(t, n.Points, minFloorPoints)
	assert.Less(t, n.SDMiB, 6.0, "the sampling's phase in each tooth, ~2.7 MiB, and the noise; not the 20 MiB of the teeth")
	text, wider := p.NoiseCheck(n)
	assert.Contains(t, text, "of the floors")
	assert.Contains(t, text, "floors from")
	// Its fits' intervals come out about 1.2 times the promise (see
	// TestFitFloorsOfASawtooth); the few floors of a warm-up err high.
	assert.Less(t, wider, 3.0, "the floors, not the teeth (which make it 10 times)")

	raw, err := MeasureNoise(obs.T, obs.Memory, p.Warmup.Seconds()/2, p.Warmup.Seconds())
	require.NoError(t, err)
	assert.Greater(t, raw.SDMiB, 15.0)
}

// A heap growing faster after the warm-up than its teeth fall hides their
// drops, not its collector's cycle: the fit takes the floors of the teeth
// the warm-up showed, one a window after it. Memory here moves as a Go
// heap's goal does, once a cycle (16 s): 1.5 MiB up and back down each
// cycle, and after the warm-up 2 MiB more each cycle, so no sample falls.
func TestFitFloorsOfTeethGrowthHides(t *testing.T) {
	const mib = 1 << 20
	var obs Observations
	obs.Counts = map[Factor][]float64{Frames: nil, Resolutions: nil}
	for i := 0; i <= 600; i++ {
		s := 2 * float64(i)
		cycle, pos := i/8, i%8
		m := 50*mib + 0.01*mib*float64(i) // a slow drift: steps are not all 0
		if pos >= 1 {
			m += 1.5 * mib
		}
		m += 2 * mib * float64(max(0, cycle-180/16))
		obs.T = append(obs.T, s)
		obs.Memory = append(obs.Memory, m)
		obs.Counts[Frames] = append(obs.Counts[Frames], 100*s)
		obs.Counts[Resolutions] = append(obs.Counts[Resolutions], float64(i/15))
	}
	require.False(t, stats.FindTeeth(obs.T, obs.Memory, 180, 1200, 1020.0/minFitFloors).Found(), "after the warm-up no sample falls")
	res, err := Fit(obs, FitConfig{WarmupEndS: 180, Floors: true})
	require.NoError(t, err)
	require.NotNil(t, res.Teeth, "the warm-up's teeth")
	assert.InDelta(t, 16, res.Teeth.PeriodS, 1)
	assert.InDelta(t, 1020/res.Teeth.WindowS, res.Points, 2, "a floor a window after the warm-up, not every sample")
}
