package attribute

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The warm-up's second half, around its bend, gives back the scatter the
// simulator put in; a warm-up three times noisier than planned is flagged in
// nearly every run and one as noisy as planned in almost none. Twenty
// seeds, because 31 persistent samples say little each.
func TestWarmupNoiseTellsANoisyRelayFromAPlannedOne(t *testing.T) {
	plan, err := NewPlan(fourFactors)
	require.NoError(t, err)
	measure := func(s sim) (sds []float64, flagged int) {
		for seed := range uint64(20) {
			obs := s.run(plan, seed)
			n, err := plan.MeasureWarmupNoise(obs.T, obs.Memory)
			require.NoError(t, err)
			assert.Equal(t, 31, n.Points, "samples every 10 s over the warm-up's second half")
			sds = append(sds, n.SDMiB)
			if _, wider := plan.NoiseCheck(n); wider >= 1.5 {
				flagged++
			}
		}
		slices.Sort(sds)
		return sds, flagged
	}
	white := sim{noiseMiB: 2, phi: 0.2, dtS: 10, sawPeriodS: 130, warmFillMiB: 80}
	sds, _ := measure(white)
	assert.InDelta(t, 2, sds[len(sds)/2], 0.5, "median sd of white-ish noise: %v", sds)

	planned := defaultSim(nil)
	_, flagged := measure(planned)
	assert.LessOrEqual(t, flagged, 2, "noise as planned, flagged in %d of 20", flagged)
	noisy := defaultSim(nil)
	noisy.noiseMiB, noisy.sawMiB = 6, 9
	sds, flagged = measure(noisy)
	assert.GreaterOrEqual(t, flagged, 18, "three times the noise, flagged in %d of 20 (sd %v)", flagged, sds)
}

func TestNoiseCheckSaysWhatToDo(t *testing.T) {
	plan, err := NewPlan(fourFactors)
	require.NoError(t, err)
	text, wider := plan.NoiseCheck(Noise{SDMiB: DefaultNoiseMiB, AR1: DefaultNoiseAR, Points: 30, FromS: 300, ToS: 600})
	assert.InDelta(t, 1, wider, 1e-9, "the noise the plan assumed gives what it promised")
	assert.NotContains(t, text, "Noisier")
	_, wider = plan.NoiseCheck(Noise{SDMiB: DefaultNoiseMiB, AR1: 0.3, Points: 30, FromS: 300, ToS: 600})
	assert.InDelta(t, 1, wider, 1e-9, "a short warm-up understates persistence: the plan's is kept")
	text, wider = plan.NoiseCheck(Noise{SDMiB: 3 * DefaultNoiseMiB, AR1: DefaultNoiseAR, Points: 30, FromS: 300, ToS: 600})
	assert.InDelta(t, 3, wider, 1e-9, "the half-width is proportional to the sd")
	assert.Contains(t, text, "Noisier than planned")
	assert.Contains(t, text, "--attribute-noise=6.0")

	_, err = MeasureNoise([]float64{1, 2, 3}, []float64{1, 2, 3}, 0, 10)
	assert.ErrorContains(t, err, "at least 12")
	_, err = MeasureNoise([]float64{1, 2}, []float64{1}, 0, 10)
	assert.Error(t, err)
}

func TestWarmupNoiseInTheOutputs(t *testing.T) {
	plan, err := NewPlan(fourFactors)
	require.NoError(t, err)
	obs := defaultSim(leakOf(Frames)).run(plan, 5)
	r, err := Fit(obs, FitConfig{WarmupEndS: plan.Warmup.Seconds()})
	require.NoError(t, err)
	n, err := plan.MeasureWarmupNoise(obs.T, obs.Memory)
	require.NoError(t, err)
	plan.WarmupNoise = &n
	path := filepath.Join(t.TempDir(), "attribution.json")
	require.NoError(t, WriteJSON(path, r, plan))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var doc struct {
		Plan struct {
			WarmupNoise *Noise  `json:"warmup_noise"`
			Wider       float64 `json:"warmup_wider_than_planned"`
		} `json:"plan"`
	}
	require.NoError(t, json.Unmarshal(b, &doc))
	require.NotNil(t, doc.Plan.WarmupNoise)
	assert.Equal(t, n, *doc.Plan.WarmupNoise)
	assert.Greater(t, doc.Plan.Wider, 0.0)
}
