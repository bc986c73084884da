package soak

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/relaysoak/relaysoak/replay"
	"github.com/relaysoak/relaysoak/soak/attribute"
	"github.com/relaysoak/relaysoak/soak/report"
	"github.com/relaysoak/relaysoak/soak/trend"
)

// minutePlan is warm-up 1 min and nine 1-minute phases: B F1 B F2 B F3 B F4 B.
func minutePlan() *attribute.PlanConfig {
	return &attribute.PlanConfig{PhaseLength: time.Minute, Warmup: time.Minute}
}

func TestAttributionPlanFillsWhatThePlanNeeds(t *testing.T) {
	var out bytes.Buffer
	cfg, plan, err := attributionPlan(Config{Attribute: minutePlan(), Duration: 5 * time.Hour, Out: &out}.withDefaults())
	require.NoError(t, err)
	require.NotNil(t, plan)
	assert.Equal(t, 10*time.Minute, cfg.Duration, "the plan sets the run's length")
	assert.Equal(t, attributionOutageEvery, cfg.Outages.Every, "host reconnects happen at baseline too")
	assert.Equal(t, attributionOutageLength, cfg.Outages.Length)
	assert.Equal(t, attributionConsumers, cfg.Consumers, "consumer reconnects happen at baseline too")
	assert.Equal(t, attributionConsumerChurn, cfg.ConsumerChurn)
	assert.Contains(t, out.String(), "attribution plan: 9 phases after a 1 min warm-up, 10 min in all", "the plan is printed before the run")

	cfg, _, err = attributionPlan(Config{Attribute: minutePlan(), Consumers: 9, ConsumerChurn: time.Minute,
		Outages: replay.Outages{Every: time.Hour, Length: time.Second}}.withDefaults())
	require.NoError(t, err)
	assert.Equal(t, 9, cfg.Consumers, "the run's own settings are the baseline")
	assert.Equal(t, time.Hour, cfg.Outages.Every)

	_, _, err = attributionPlan(Config{Attribute: minutePlan(), Compare: &Compare{}}.withDefaults())
	assert.ErrorContains(t, err, "A/B")
	_, _, err = attributionPlan(Config{Attribute: minutePlan(), CaptureMode: replay.Verbatim}.withDefaults())
	assert.ErrorContains(t, err, "re-hosted")
	_, _, err = attributionPlan(Config{Attribute: &attribute.PlanConfig{PhaseLength: 20 * time.Minute}}.withDefaults())
	assert.ErrorContains(t, err, "cap", "a plan over 100 minutes is refused before anything starts")
	cfg, plan, err = attributionPlan(Config{Duration: time.Minute}.withDefaults())
	require.NoError(t, err)
	assert.Nil(t, plan)
	assert.Equal(t, time.Minute, cfg.Duration, "no attribution, nothing changed")
}

// The load follows the plan: churn per second at what it was per 1,000
// frames at the base rate, one replay stage per phase raising its factor,
// and the consumers' churn raised on the same clock.
func TestLoadFollowsTheAttributionPlan(t *testing.T) {
	cfg, plan, err := attributionPlan(Config{Attribute: minutePlan(), Hosts: 10, Rate: 200}.withDefaults())
	require.NoError(t, err)
	ld, err := prepareLoad(context.Background(), cfg, nil)
	require.NoError(t, err)
	require.NoError(t, ld.attribute(*plan, cfg.Hosts))
	rc := ld.replay
	assert.True(t, rc.ChurnPerSecond)
	assert.InDelta(t, replay.DefaultChurn.Identity*200/1000, rc.Churn.Identity, 1e-9, "identity events per second at the base rate")
	assert.Equal(t, replay.DefaultChurn.KeyRotation, rc.Churn.KeyRotation, "a fraction, not a rate")
	require.Len(t, rc.Stages, 9)
	assert.Equal(t, 2*time.Minute, rc.Stages[1].Start, "F1 after the warm-up and B1")
	assert.Equal(t, replay.Stage{Start: 2 * time.Minute, Frames: 2.5}, rc.Stages[1])
	assert.Equal(t, replay.Stage{Start: 4 * time.Minute, Churn: 2.5}, rc.Stages[3])
	assert.Equal(t, replay.Stage{Start: 6 * time.Minute, Outages: 2.5}, rc.Stages[5])
	assert.Equal(t, replay.Stage{Start: 8 * time.Minute}, rc.Stages[7], "consumer churn is the crowd's, not the replay's")
	assert.Equal(t, replay.Stage{Start: 9 * time.Minute}, rc.Stages[8])

	assert.Equal(t, 1.0, ld.attr.consumerChurnScale(), "before the load starts")
	ld.attr.started(time.Now().Add(-8*time.Minute - 30*time.Second))
	assert.Equal(t, 2.5, ld.attr.consumerChurnScale(), "in F4")
	ld.attr.started(time.Now().Add(-7*time.Minute - 30*time.Second))
	assert.Equal(t, 1.0, ld.attr.consumerChurnScale(), "in B4")
}

// From samples.jsonl to the report's section, attribution.json and the
// plots: a relay whose memory follows frames delivered (1 KiB each) and
// nothing else, under the plan's phases, is attributed to frames.
func TestAttributionSectionFromSamples(t *testing.T) {
	plan, err := attribute.NewPlan(attribute.PlanConfig{PhaseLength: 3 * time.Minute, Warmup: time.Minute})
	require.NoError(t, err)
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, report.SamplesFile))
	require.NoError(t, err)
	enc := json.NewEncoder(f)
	rates := map[string]float64{"commits_delivered": 200, "plc_requests": 1, "host_subscribes": 2.0 / 60, "crowd_disconnects": 12.0 / 60}
	raised := map[attribute.Factor]string{attribute.Frames: "commits_delivered", attribute.Resolutions: "plc_requests",
		attribute.HostReconnects: "host_subscribes", attribute.ConsumerReconnects: "crowd_disconnects"}
	counts := map[string]float64{}
	rng := rand.New(rand.NewPCG(3, 4))
	spans := plan.Spans()
	const before = 30.0 // samples before the load are not the plan's
	for s := 0.0; s <= before+plan.Total().Seconds(); s += 10 {
		el := s - before
		mult := map[string]float64{}
		for i, sp := range spans {
			if el >= sp.StartS && el < sp.EndS && sp.Raised != "" {
				mult[raised[sp.Raised]] = plan.Phases[i].Multiplier
			}
		}
		if el > 0 {
			for k, r := range rates {
				m := mult[k]
				if m == 0 {
					m = 1
				}
				counts[k] += 10 * r * m
			}
		}
		ctx := map[string]float64{}
		for k, v := range counts {
			ctx[k] = v
		}
		mem := 50<<20 + 1024*counts["commits_delivered"] + rng.NormFloat64()*(512<<10)
		frames := counts["commits_delivered"]
		e := s
		require.NoError(t, enc.Encode(Line{Sample: trend.Sample{ElapsedS: &e, FramesSent: &frames,
			Signals: map[string]float64{trend.SignalRssAnon: mem}}, Context: ctx}))
	}
	require.NoError(t, f.Close())

	a := &attribution{plan: plan}
	sec, err := a.section(dir, trend.Report{CarriedBy: trend.SignalRssAnon})
	require.NoError(t, err)
	assert.Equal(t, "Leak attribution", sec.Title)
	assert.Contains(t, sec.Markdown, "growth follows frames")
	b, err := os.ReadFile(filepath.Join(dir, AttributionFile))
	require.NoError(t, err)
	var doc struct {
		Verdict string `json:"verdict"`
		Terms   []struct {
			Factor       attribute.Factor `json:"factor"`
			BytesPerUnit float64          `json:"bytes_per_unit"`
			Named        bool             `json:"named"`
		} `json:"terms"`
	}
	require.NoError(t, json.Unmarshal(b, &doc))
	assert.Equal(t, attribute.VerdictFactor, doc.Verdict)
	for _, term := range doc.Terms {
		if term.Factor == attribute.Frames {
			assert.True(t, term.Named)
			assert.InEpsilon(t, 1024, term.BytesPerUnit, 0.2, "bytes per frame")
		} else {
			assert.False(t, term.Named, "%s is not named", term.Factor)
		}
	}
	for _, fct := range attribute.AllFactors {
		assert.FileExists(t, filepath.Join(dir, "attribution-"+string(fct)+".png"))
	}

	_, err = observations(filepath.Join(dir, "missing.jsonl"), trend.SignalRssAnon)
	assert.Error(t, err, "no samples is an error, not an empty attribution")
}

// When the warm-up ends the run measures memory's noise from samples.jsonl
// and says, on the console and in events, whether the plan's promise holds;
// without samples enough it says it could not, and the run goes on.
func TestAttributionChecksTheWarmupNoise(t *testing.T) {
	plan, err := attribute.NewPlan(attribute.PlanConfig{Warmup: 4 * time.Minute, SampleInterval: 5 * time.Second, PhaseLength: 3 * time.Minute})
	require.NoError(t, err)
	write := func(dir string, sdMiB float64, until float64) {
		f, err := os.Create(filepath.Join(dir, report.SamplesFile))
		require.NoError(t, err)
		enc := json.NewEncoder(f)
		rng := rand.New(rand.NewPCG(7, 8))
		for s := 5.0; s <= until; s += 5 {
			e, frames := s, 100*s
			mem := 200<<20 + rng.NormFloat64()*sdMiB*(1<<20)
			require.NoError(t, enc.Encode(Line{Sample: trend.Sample{ElapsedS: &e, FramesSent: &frames, Signals: map[string]float64{trend.SignalRssAnon: mem}},
				Context: map[string]float64{"commits_delivered": frames, "plc_requests": s, "host_subscribes": 10, "crowd_disconnects": 0}}))
		}
		require.NoError(t, f.Close())
	}
	type event struct {
		kind   string
		detail any
	}
	check := func(dir string) (string, *attribute.Noise, []event) {
		var out bytes.Buffer
		var evs []event
		a := &attribution{plan: plan}
		a.started(time.Now().Add(-plan.Warmup - time.Minute)) // the warm-up is over
		a.checkNoise(context.Background(), dir, &out, func(k string, d any) { evs = append(evs, event{k, d}) })
		return out.String(), a.noise, evs
	}

	dir := t.TempDir()
	write(dir, 8, 300) // four times the planned 2 MiB
	out, n, evs := check(dir)
	require.NotNil(t, n, out)
	assert.InDelta(t, 8, n.SDMiB, 2.5)
	assert.Contains(t, out, "Noisier than planned")
	require.Len(t, evs, 1)
	assert.Equal(t, "attribution_noise", evs[0].kind)

	dir = t.TempDir()
	write(dir, 1, 300)
	out, n, _ = check(dir)
	require.NotNil(t, n, out)
	assert.NotContains(t, out, "Noisier")

	dir = t.TempDir()
	write(dir, 1, 30) // a relay that produced no samples past the first half-minute
	out, n, evs = check(dir)
	assert.Nil(t, n)
	assert.Contains(t, out, "could not be measured")
	require.Len(t, evs, 1)
}
