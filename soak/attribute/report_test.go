package attribute

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOutputs(t *testing.T) {
	plan, err := NewPlan(PlanConfig{})
	require.NoError(t, err)
	obs := defaultSim(leakOf(Resolutions)).run(plan, 3)
	r, err := Fit(obs, FitConfig{WarmupEndS: plan.Warmup.Seconds()})
	require.NoError(t, err)
	require.Equal(t, VerdictFactor, r.Verdict)
	assert.Regexp(t, `^growth follows DID resolutions: [0-9.]+ KiB retained per resolution \(CI [0-9.]+ to [0-9.]+\)`, r.Sentence())
	assert.Contains(t, r.Sentence(), "frames explain none")

	md := Markdown(r, plan)
	assert.Contains(t, md, "| DID resolutions |")
	assert.Contains(t, md, "(named)")
	assert.Contains(t, md, "F2")

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

	files, err := Plot(obs, r, plan, plan.Spans(), filepath.Join(dir, "plots"))
	require.NoError(t, err)
	require.Len(t, files, 4)
	for _, f := range files {
		st, err := os.Stat(f)
		require.NoError(t, err)
		assert.Greater(t, st.Size(), int64(1000))
	}
	if out := os.Getenv("ATTRIBUTE_PLOTS"); out != "" {
		_, err := Plot(obs, r, plan, plan.Spans(), out)
		require.NoError(t, err)
	}
}

func TestHumanUnits(t *testing.T) {
	assert.Equal(t, "1.1 KiB retained per resolution (CI 0.9 to 1.3)",
		perUnit(Term{Factor: Resolutions, BytesPerUnit: 1.1 * 1024, Lo: 0.9 * 1024, Hi: 1.3 * 1024}))
	assert.Equal(t, "frames explain none (-2 to 3 B/frame)", explainsNone(Term{Factor: Frames, Lo: -2, Hi: 3}))
	assert.Equal(t, "12.0 MiB/hour (CI 10.0 to 14.0)", perUnit(Term{Factor: Time, BytesPerHour: 12 << 20, Lo: 10 << 20 / 3600.0, Hi: 14 << 20 / 3600.0}))
}

// The report says when a run was noisier than its plan assumed, and by
// about how much the intervals widened: not at the plan's own noise, and
// about tenfold at ten times the noise.
func TestNoisierThanPlanned(t *testing.T) {
	plan, err := NewPlan(PlanConfig{})
	require.NoError(t, err)
	require.Greater(t, plan.HalfWidthMiBPerHour, 0.0)
	for _, tc := range []struct {
		noise     float64
		lo, hi    float64
		mentioned bool
	}{{2, 0.5, 1.5, false}, {20, 7, 14, true}} {
		s := defaultSim(leakOf(Frames))
		s.noiseMiB = tc.noise
		obs := s.run(plan, 5)
		r, err := Fit(obs, FitConfig{WarmupEndS: plan.Warmup.Seconds()})
		require.NoError(t, err)
		k := WiderThanPlanned(r, plan)
		assert.GreaterOrEqual(t, k, tc.lo, "noise %g MiB", tc.noise)
		assert.LessOrEqual(t, k, tc.hi, "noise %g MiB", tc.noise)
		assert.Equal(t, tc.mentioned, strings.Contains(Markdown(r, plan), "Noisier than planned"), "noise %g MiB: %.2f× wider", tc.noise, k)
	}
}
