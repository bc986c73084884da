package soak

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/relaysoak/relaysoak/internal/stats"
	"github.com/relaysoak/relaysoak/replay"
	"github.com/relaysoak/relaysoak/soak/attribute"
	"github.com/relaysoak/relaysoak/soak/report"
	"github.com/relaysoak/relaysoak/soak/rundir"
	"github.com/relaysoak/relaysoak/soak/verdict"
)

// minutePlan is warm-up 1 min and eleven 1-minute phases: B F1 B F2 … B F5 B.
func minutePlan() *attribute.PlanConfig {
	return &attribute.PlanConfig{PhaseLength: time.Minute, Warmup: time.Minute}
}

func TestAttributionPlanFillsWhatThePlanNeeds(t *testing.T) {
	var out bytes.Buffer
	cfg, plan, err := attributionPlan(Config{Attribute: minutePlan(), Duration: 5 * time.Hour, Out: &out}.withDefaults())
	require.NoError(t, err)
	require.NotNil(t, plan)
	assert.Equal(t, 12*time.Minute, cfg.Duration, "the plan sets the run's length")
	assert.Equal(t, attributionOutageEvery, cfg.Outages.Every, "host reconnects happen at baseline too")
	assert.Equal(t, attributionOutageLength, cfg.Outages.Length)
	assert.Equal(t, attributionConsumers, cfg.Consumers, "consumer reconnects happen at baseline too")
	assert.Equal(t, attributionConsumerChurn, cfg.ConsumerChurn)
	assert.Equal(t, attributionIdentityChurn, cfg.ConsumerIdentityChurn, "new identities happen at baseline too")
	assert.Contains(t, out.String(), "attribution plan: 11 phases after a 1 min warm-up, 12 min in all", "the plan is printed before the run")

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
	require.NoError(t, ld.attribute(*plan))
	rc := ld.replay
	assert.True(t, rc.ChurnPerSecond)
	assert.InDelta(t, replay.DefaultChurn.Identity*200/1000, rc.Churn.Identity, 1e-9, "identity events per second at the base rate")
	assert.Equal(t, replay.DefaultChurn.KeyRotation, rc.Churn.KeyRotation, "a fraction, not a rate")
	require.Len(t, rc.Stages, 11)
	assert.Equal(t, 2*time.Minute, rc.Stages[1].Start, "F1 after the warm-up and B1")
	assert.Equal(t, replay.Stage{Start: 2 * time.Minute, Frames: 2.5}, rc.Stages[1])
	assert.Equal(t, replay.Stage{Start: 4 * time.Minute, Churn: 2.5}, rc.Stages[3])
	assert.Equal(t, replay.Stage{Start: 6 * time.Minute, Outages: 2.5}, rc.Stages[5])
	assert.Equal(t, replay.Stage{Start: 8 * time.Minute}, rc.Stages[7], "consumer churn is the crowd's, not the replay's")
	assert.Equal(t, replay.Stage{Start: 9 * time.Minute}, rc.Stages[8])
	assert.Equal(t, replay.Stage{Start: 10 * time.Minute}, rc.Stages[9], "new identities are the crowd's too")

	reconnects, identities := ld.attr.scale(attribute.ConsumerReconnects), ld.attr.scale(attribute.NewIdentities)
	assert.Equal(t, 1.0, reconnects(), "before the load starts")
	ld.attr.started(time.Now().Add(-8*time.Minute - 30*time.Second))
	assert.Equal(t, 2.5, reconnects(), "in F4")
	assert.Equal(t, 1.0, identities(), "in F4")
	ld.attr.started(time.Now().Add(-7*time.Minute - 30*time.Second))
	assert.Equal(t, 1.0, reconnects(), "in B4")
	ld.attr.started(time.Now().Add(-10*time.Minute - 30*time.Second))
	assert.Equal(t, 2.5, identities(), "in F5")
	assert.Equal(t, 1.0, reconnects(), "in F5")
}

// From samples.jsonl to the report's section, attribution.json and the
// plots: a relay whose memory follows frames delivered (1 KiB each) and
// nothing else, under the plan's phases, is attributed to frames.
func TestAttributionSectionFromSamples(t *testing.T) {
	plan, err := attribute.NewPlan(attribute.PlanConfig{PhaseLength: 3 * time.Minute, Warmup: time.Minute})
	require.NoError(t, err)
	dir := t.TempDir()
	writePlanSamples(t, dir, plan, func(s float64, counts map[string]float64, rng *rand.Rand) map[string]float64 {
		return map[string]float64{rundir.SignalRssAnon: 50<<20 + 1024*counts["commits_delivered"] + rng.NormFloat64()*(512<<10)}
	})

	a := &attribution{plan: plan}
	found, err := a.finding(dir, verdict.Report{CarriedBy: rundir.SignalRssAnon})
	require.NoError(t, err)
	sec := report.AttributionSection(found)
	assert.Equal(t, "Leak attribution", sec.Title)
	assert.Contains(t, sec.Markdown, "growth follows frames")
	doc := readAttribution(t, dir)
	assert.Equal(t, attribute.VerdictFactor, doc.Verdict)
	doc.assertNamedAlone(t, attribute.Frames, 1024)
	for _, fct := range attribute.AllFactors {
		assert.FileExists(t, filepath.Join(dir, "attribution-"+string(fct)+".png"))
	}

	_, err = observations(filepath.Join(dir, "missing.jsonl"), rundir.SignalRssAnon)
	assert.Error(t, err, "no samples is an error, not an empty attribution")
}

// attributionDoc is what the tests read back from attribution.json.
type attributionDoc struct {
	Signal     string      `json:"signal"`
	Verdict    string      `json:"verdict"`
	Teeth      stats.Teeth `json:"teeth"`
	CrossCheck struct {
		Signal   string `json:"signal"`
		Sentence string `json:"sentence"`
	} `json:"cross_check"`
	Terms []struct {
		Factor       attribute.Factor `json:"factor"`
		BytesPerUnit float64          `json:"bytes_per_unit"`
		Named        bool             `json:"named"`
	} `json:"terms"`
}

func readAttribution(t *testing.T, dir string) attributionDoc {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, rundir.Attribution))
	require.NoError(t, err)
	var doc attributionDoc
	require.NoError(t, json.Unmarshal(b, &doc))
	return doc
}

// assertNamedAlone: f is named, at bytesPerUnit within 20%, and no other
// factor is.
func (d attributionDoc) assertNamedAlone(t *testing.T, f attribute.Factor, bytesPerUnit float64) {
	t.Helper()
	for _, term := range d.Terms {
		switch term.Factor {
		case f:
			assert.True(t, term.Named, "%s is named", f)
			assert.InEpsilon(t, bytesPerUnit, term.BytesPerUnit, 0.2, "bytes per unit of %s", f)
		case attribute.Time:
		default:
			assert.False(t, term.Named, "%s is not named", term.Factor)
		}
	}
}

// writePlanSamples writes samples.jsonl for a run that followed plan: every
// 10 s, each factor's counter at its rate (raised in its phase), after 30 s
// before the load; mem gives the memory signals from the time and counts.
func writePlanSamples(t *testing.T, dir string, plan attribute.Plan, mem func(s float64, counts map[string]float64, rng *rand.Rand) map[string]float64) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, rundir.Samples))
	require.NoError(t, err)
	enc := json.NewEncoder(f)
	rates := map[string]float64{"commits_delivered": 200, "plc_requests": 1, "host_subscribes": 2.0 / 60, "crowd_disconnects": 12.0 / 60, "crowd_new_identities": 4.0 / 60}
	raised := map[attribute.Factor]string{attribute.Frames: "commits_delivered", attribute.Resolutions: "plc_requests",
		attribute.HostReconnects: "host_subscribes", attribute.ConsumerReconnects: "crowd_disconnects", attribute.NewIdentities: "crowd_new_identities"}
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
		frames := counts["commits_delivered"]
		e := s
		sig := mem(s, counts, rng)
		for _, k := range []string{rundir.SignalLiveHeap, rundir.Goroutines} {
			if v, ok := sig[k]; ok { // context, as the sampler writes it
				delete(sig, k)
				ctx[k] = v
			}
		}
		require.NoError(t, enc.Encode(rundir.Line{Sample: rundir.Sample{ElapsedS: &e, FramesSent: &frames, Signals: sig}, Context: ctx}))
	}
	require.NoError(t, f.Close())
}

// A Go relay's RSS swings with its collector (here 130 MiB every 100 s)
// and its live heap with what it holds between flushes (70 MiB every 75 s,
// as indigo's did at HOSTS=500 RATE=200), while the live heap's floors
// follow what it keeps: attribution regresses the live heap's floors, names
// the factor the teeth would hide, and fits RSS beside it as a cross-check.
func TestAttributionRegressesTheLiveHeap(t *testing.T) {
	plan, err := attribute.NewPlan(attribute.PlanConfig{PhaseLength: 7 * time.Minute, Warmup: 6 * time.Minute})
	require.NoError(t, err)
	dir := t.TempDir()
	writePlanSamples(t, dir, plan, func(s float64, counts map[string]float64, rng *rand.Rand) map[string]float64 {
		kept := 80<<20 + 64*1024*counts["plc_requests"] + rng.NormFloat64()*(256<<10) // 64 KiB per resolution
		held := math.Mod(s, 75) / 75 * (70 << 20)
		gc := math.Mod(s, 100) / 100 * (130 << 20)
		return map[string]float64{rundir.SignalLiveHeap: kept + held, rundir.SignalRssAnon: 2*(kept+held) + gc + rng.NormFloat64()*(8<<20)}
	})
	a := &attribution{plan: plan}
	found, err := a.finding(dir, verdict.Report{CarriedBy: rundir.SignalRssAnon})
	require.NoError(t, err)
	sec := report.AttributionSection(found)
	assert.Contains(t, sec.Markdown, "Memory (live_heap)")
	assert.Contains(t, sec.Markdown, "growth follows DID resolutions")
	assert.Contains(t, sec.Markdown, "**Cross-check on rss_anon**")
	assert.Contains(t, sec.Markdown, "Memory is a sawtooth here")
	doc := readAttribution(t, dir)
	assert.Equal(t, rundir.SignalLiveHeap, doc.Signal)
	assert.Equal(t, attribute.VerdictFactor, doc.Verdict)
	assert.InDelta(t, 75, doc.Teeth.PeriodS, 10, "the live heap's teeth")
	assert.Equal(t, rundir.SignalRssAnon, doc.CrossCheck.Signal)
	assert.NotEmpty(t, doc.CrossCheck.Sentence)
	doc.assertNamedAlone(t, attribute.Resolutions, 64<<10)

	// `relaysoak report` fits the run again from its files: the same result,
	// the plots redrawn.
	plot := filepath.Join(dir, "attribution-resolutions.png")
	require.NoError(t, os.Remove(plot))
	again, ok, err := refitAttribution(dir, rundir.SignalRssAnon, 0)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, sec.Markdown, report.AttributionSection(again).Markdown)
	assert.FileExists(t, plot)
	_, ok, err = refitAttribution(t.TempDir(), "", 0)
	assert.False(t, ok, "not an attribution run")
	assert.NoError(t, err)
	bad := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(bad, rundir.Attribution), []byte(`{"verdict":"none"}`), 0o644))
	_, ok, err = refitAttribution(bad, "", 0)
	assert.True(t, ok)
	assert.ErrorContains(t, err, filepath.Join(bad, rundir.Attribution))

	// The warm-up's noise is the live heap's, not the sawtooth's.
	var out bytes.Buffer
	a.started(time.Now().Add(-plan.Warmup - time.Minute))
	a.checkNoise(context.Background(), dir, &out, func(string, any) {})
	require.NotNil(t, a.noise, out.String())
	assert.Less(t, a.noise.SDMiB, 5.0, "the floors scatter far less than the teeth (about 20 MiB)")
	assert.Contains(t, out.String(), "(live_heap)")
	assert.Contains(t, out.String(), "warm-up noise of the floors")
}

// When the warm-up ends the run measures memory's noise from samples.jsonl
// and says, on the console and in events, whether the plan's promise holds;
// without samples enough it says it could not, and the run goes on.
func TestAttributionChecksTheWarmupNoise(t *testing.T) {
	plan, err := attribute.NewPlan(attribute.PlanConfig{Warmup: 4 * time.Minute, SampleInterval: 5 * time.Second, PhaseLength: 3 * time.Minute})
	require.NoError(t, err)
	write := func(dir string, sdMiB float64, until float64) {
		f, err := os.Create(filepath.Join(dir, rundir.Samples))
		require.NoError(t, err)
		enc := json.NewEncoder(f)
		rng := rand.New(rand.NewPCG(7, 8))
		for s := 5.0; s <= until; s += 5 {
			e, frames := s, 100*s
			mem := 200<<20 + rng.NormFloat64()*sdMiB*(1<<20)
			require.NoError(t, enc.Encode(rundir.Line{Sample: rundir.Sample{ElapsedS: &e, FramesSent: &frames, Signals: map[string]float64{rundir.SignalRssAnon: mem}},
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

// A relay that keeps a goroutine (and 140 KiB) per consumer reconnect,
// under a heap too noisy to name it: the goroutine count, regressed on the
// same factors, names consumer reconnects at one goroutine each.
func TestAttributionRegressesGoroutines(t *testing.T) {
	plan, err := attribute.NewPlan(attribute.PlanConfig{PhaseLength: 7 * time.Minute, Warmup: 6 * time.Minute})
	require.NoError(t, err)
	dir := t.TempDir()
	writePlanSamples(t, dir, plan, func(s float64, counts map[string]float64, rng *rand.Rand) map[string]float64 {
		n := counts["crowd_disconnects"]
		mem := 300<<20 + 140*1024*n + rng.NormFloat64()*(40<<20) // noise far above the plan's
		g := 20000 + n + float64(rng.IntN(30))                   // consumers come and go around it
		return map[string]float64{rundir.SignalRssAnon: mem, rundir.Goroutines: g}
	})
	found, err := (&attribution{plan: plan}).finding(dir, verdict.Report{CarriedBy: rundir.SignalRssAnon})
	require.NoError(t, err)
	require.NotNil(t, found.Goroutines)
	g := *found.Goroutines
	assert.Equal(t, attribute.VerdictFactor, g.Verdict, g.Reason)
	assert.Equal(t, []attribute.Factor{attribute.ConsumerReconnects}, g.Named())
	term, ok := g.Term(attribute.ConsumerReconnects)
	require.True(t, ok)
	assert.InDelta(t, 1, term.BytesPerUnit/(1<<20), 0.2, "goroutines per consumer reconnect")
	var doc struct {
		Goroutines *attribute.Result `json:"goroutines"`
	}
	raw, err := os.ReadFile(filepath.Join(dir, rundir.Attribution))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &doc))
	require.NotNil(t, doc.Goroutines, "attribution.json holds the goroutine fit")
	assert.Equal(t, []attribute.Factor{attribute.ConsumerReconnects}, doc.Goroutines.Named())
	md := report.AttributionSection(found).Markdown
	assert.Contains(t, md, "**Goroutines**, regressed on the same factors")
	assert.Regexp(t, `they follow \+(0\.[89]\d|1\.[01]\d) goroutines per consumer reconnect`, md)

	// Without a count in the samples, no goroutine fit.
	other := t.TempDir()
	writePlanSamples(t, other, plan, func(s float64, counts map[string]float64, rng *rand.Rand) map[string]float64 {
		return map[string]float64{rundir.SignalRssAnon: 300<<20 + rng.NormFloat64()*(2<<20)}
	})
	found, err = (&attribution{plan: plan}).finding(other, verdict.Report{CarriedBy: rundir.SignalRssAnon})
	require.NoError(t, err)
	assert.Nil(t, found.Goroutines)
}
