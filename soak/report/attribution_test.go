package report

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/relaysoak/relaysoak/soak/attribute"
)

// attributionRun is a synthetic attribution run: every factor counted at
// its phase's rate, memory keeping 1 KiB per DID resolution over white
// noise, sampled every 10 s through the default plan.
func attributionRun(t *testing.T, noiseMiB float64) (attribute.Observations, attribute.Result, attribute.Plan) {
	t.Helper()
	plan, err := attribute.NewPlan(attribute.PlanConfig{})
	require.NoError(t, err)
	rates := map[attribute.Factor]float64{attribute.Frames: 200, attribute.Resolutions: 20, attribute.HostReconnects: 0.5, attribute.ConsumerReconnects: 0.2}
	r := rand.New(rand.NewPCG(1, 2))
	obs := attribute.Observations{Counts: map[attribute.Factor][]float64{}}
	cum := map[attribute.Factor]float64{}
	spans := plan.Spans()
	for s := 10.0; s <= plan.Total().Seconds(); s += 10 {
		mult, raised := 1.0, attribute.Factor("")
		for _, sp := range spans {
			if s > sp.StartS && s <= sp.EndS && sp.Raised != "" {
				raised, mult = sp.Raised, 2.5
			}
		}
		for f, rate := range rates {
			if f == raised {
				rate *= mult
			}
			cum[f] += 10 * rate
			obs.Counts[f] = append(obs.Counts[f], cum[f])
		}
		obs.T = append(obs.T, s)
		obs.Memory = append(obs.Memory, 500<<20+1024*cum[attribute.Resolutions]+noiseMiB*(1<<20)*r.NormFloat64())
	}
	res, err := attribute.Fit(obs, attribute.FitConfig{WarmupEndS: plan.Warmup.Seconds()})
	require.NoError(t, err)
	return obs, res, plan
}

func TestAttributionSection(t *testing.T) {
	obs, res, plan := attributionRun(t, 2)
	require.Equal(t, attribute.VerdictFactor, res.Verdict, res.Sentence())
	dir := t.TempDir()
	files, err := AttributionPlots(obs, res, plan, plan.Spans(), filepath.Join(dir, "plots"))
	require.NoError(t, err)
	require.Len(t, files, 4)
	for _, f := range files {
		st, err := os.Stat(f)
		require.NoError(t, err)
		assert.Greater(t, st.Size(), int64(1000), f)
	}

	sec := AttributionSection(Attribution{Signal: "live_heap", File: "attribution.json", Result: res, Plan: plan, Plots: files})
	assert.Equal(t, AttributionTitle, sec.Title)
	md := sec.Markdown
	assert.Contains(t, md, "Memory (live_heap) regressed on what the rig did, per factor; attribution.json holds it all.\n")
	assert.Contains(t, md, "**factor** — "+res.Sentence())
	assert.Contains(t, md, "| DID resolutions | ")
	assert.Contains(t, md, "(named)")
	assert.Contains(t, md, "F2", "the plan is printed")
	assert.Contains(t, md, "![attribution-resolutions.png](attribution-resolutions.png)")
	assert.NotContains(t, md, "Warm-up check", "not measured, not said")
	assert.NotContains(t, md, "Noisier than planned", "the plan's own noise")
	assert.NotContains(t, md, "past the plan's")

	// A late fit, a measured warm-up, and plots that failed are each said.
	n, err := plan.MeasureWarmupNoise(obs.T, obs.Memory)
	require.NoError(t, err)
	plan.WarmupNoise = &n
	md = AttributionSection(Attribution{Signal: "rss_anon", Result: res, Plan: plan, FitFrom: plan.Warmup + 6*60e9, Plots: files, PlotErr: "disk full"}).Markdown
	assert.Contains(t, md, "**Warm-up check.** Warm-up noise: sd ")
	assert.Contains(t, md, "past the plan's 10m0s warm-up")
	assert.Contains(t, md, "No plots: disk full")
	assert.NotContains(t, md, "![", "no plots listed when drawing them failed")
}

// The section says when a run was noisier than its plan assumed, exactly
// when its intervals came out half as wide again as promised.
func TestAttributionSectionSaysNoisierThanPlanned(t *testing.T) {
	for _, noise := range []float64{2, 20} {
		_, res, plan := attributionRun(t, noise)
		k := attribute.WiderThanPlanned(res, plan)
		md := AttributionSection(Attribution{Result: res, Plan: plan}).Markdown
		assert.Equal(t, k >= 1.5, strings.Contains(md, "Noisier than planned"), "noise %g MiB: %.2f× wider", noise, k)
		if noise == 20 {
			assert.GreaterOrEqual(t, k, 1.5, "ten times the plan's noise")
		}
	}
}
