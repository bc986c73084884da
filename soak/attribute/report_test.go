package attribute

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOutputs(t *testing.T) {
	plan, err := NewPlan(fourFactors)
	require.NoError(t, err)
	obs := defaultSim(leakOf(Resolutions)).run(plan, 3)
	r, err := Fit(obs, FitConfig{WarmupEndS: plan.Warmup.Seconds()})
	require.NoError(t, err)
	require.Equal(t, VerdictFactor, r.Verdict)
	assert.Regexp(t, `^growth follows DID resolutions: [0-9.]+ KiB retained per resolution \(CI [0-9.]+ to [0-9.]+\)`, r.Sentence())
	assert.Contains(t, r.Sentence(), "frames explain none")

	dir := t.TempDir()
	path := filepath.Join(dir, "attribution.json")
	require.NoError(t, WriteJSON(path, r, plan))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(b, &doc))
	assert.Equal(t, "factor", doc["verdict"])
	assert.Equal(t, r.Sentence(), doc["sentence"])
	assert.Len(t, doc["terms"], 5)
	assert.InDelta(t, plan.Total().Seconds(), doc["plan"].(map[string]any)["total_s"], 0)

}

func TestHumanUnits(t *testing.T) {
	assert.Equal(t, "1.1 KiB retained per resolution (CI 0.9 to 1.3)",
		(Term{Factor: Resolutions, BytesPerUnit: 1.1 * 1024, Lo: 0.9 * 1024, Hi: 1.3 * 1024}).PerUnit())
	assert.Equal(t, "frames explain none (-2 to 3 B/frame)", explainsNone(Term{Factor: Frames, Lo: -2, Hi: 3}))
	assert.Equal(t, "12.0 MiB/hour (CI 10.0 to 14.0)", (Term{Factor: Time, BytesPerHour: 12 << 20, Lo: 10 << 20 / 3600.0, Hi: 14 << 20 / 3600.0}).PerUnit())
}

// WiderThanPlanned measures by about how much a run's intervals widened
// over the plan's promise: not at the plan's own noise, and about tenfold
// at ten times the noise.
func TestNoisierThanPlanned(t *testing.T) {
	plan, err := NewPlan(fourFactors)
	require.NoError(t, err)
	require.Greater(t, plan.HalfWidthMiBPerHour, 0.0)
	for _, tc := range []struct {
		noise  float64
		lo, hi float64
	}{{2, 0.5, 1.5}, {20, 7, 14}} {
		s := defaultSim(leakOf(Frames))
		s.noiseMiB = tc.noise
		obs := s.run(plan, 5)
		r, err := Fit(obs, FitConfig{WarmupEndS: plan.Warmup.Seconds()})
		require.NoError(t, err)
		k := WiderThanPlanned(r, plan)
		assert.GreaterOrEqual(t, k, tc.lo, "noise %g MiB", tc.noise)
		assert.LessOrEqual(t, k, tc.hi, "noise %g MiB", tc.noise)
	}
}
