package soak

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/relaysoak/relaysoak/replay"
	"github.com/relaysoak/relaysoak/soak/attribute"
	"github.com/relaysoak/relaysoak/soak/report"
	"github.com/relaysoak/relaysoak/soak/rundir"
	"github.com/relaysoak/relaysoak/soak/verdict"
)

// The samples' counters an attribution run regresses memory on, one per
// factor: what the rig counted as it happened.
var factorColumns = map[attribute.Factor]string{
	attribute.Frames:             rundir.CommitsDelivered,
	attribute.Resolutions:        rundir.PLCRequests, // the relay's lookups, counted where they land
	attribute.HostReconnects:     rundir.HostSubscribes,
	attribute.ConsumerReconnects: rundir.CrowdDisconnects, // consumer-side leaks keep what a subscriber held when it goes
	attribute.NewIdentities:      rundir.CrowdNewIdentities,
}

// Baselines an attribution run gives the factors it raises when the run's
// settings leave them at none: each must happen at baseline too, or its
// phase has nothing to multiply.
const (
	attributionOutageEvery   = 30 * time.Second
	attributionOutageLength  = 10 * time.Second
	attributionConsumers     = 4
	attributionConsumerChurn = 20 * time.Second
	// attributionIdentityChurn leaves room for the phase's multiplier
	// (at most 3) under a chance of 1.
	attributionIdentityChurn = 0.3
)

// attributionPlan lays out an attribution run's plan, prints it, and fills
// what the plan needs: its duration, and outages and consumer churn at a
// baseline when none is set. cfg has its defaults.
func attributionPlan(cfg Config) (Config, *attribute.Plan, error) {
	if cfg.Attribute == nil {
		return cfg, nil, nil
	}
	if cfg.Compare != nil {
		return cfg, nil, errors.New("an attribution run soaks one relay: it cannot be an A/B soak (drop --compare or --attribute)")
	}
	if cfg.CaptureMode == replay.Verbatim {
		return cfg, nil, errors.New("an attribution run varies the frame rate: it needs re-hosted traffic (drop --capture-mode verbatim)")
	}
	pc := *cfg.Attribute
	if pc.SampleInterval == 0 {
		pc.SampleInterval = cfg.SampleEvery
	}
	plan, err := attribute.NewPlan(pc)
	if err != nil {
		return cfg, nil, err
	}
	cfg.Duration = plan.Total()
	for _, ph := range plan.Phases {
		switch ph.Raised {
		case attribute.HostReconnects:
			if cfg.Outages.Every == 0 {
				cfg.Outages.Every = attributionOutageEvery
				if cfg.Outages.Length == 0 {
					cfg.Outages.Length = attributionOutageLength
				}
			}
		case attribute.ConsumerReconnects, attribute.NewIdentities:
			if cfg.Consumers == 0 {
				cfg.Consumers = attributionConsumers
			}
			if cfg.ConsumerChurn == 0 {
				cfg.ConsumerChurn = attributionConsumerChurn
			}
			if ph.Raised == attribute.NewIdentities && cfg.ConsumerIdentityChurn == 0 {
				cfg.ConsumerIdentityChurn = attributionIdentityChurn
			}
		}
	}
	fmt.Fprint(cfg.Out, plan.Text())
	return cfg, &plan, nil
}

// attribution is the plan as the load runs it: replay stages for frames,
// churn and outages, and the consumers' churn scaled on the same clock.
type attribution struct {
	plan attribute.Plan
	// fitFrom, when past the plan's warm-up, is where the fit starts: a
	// relay that settled later than planned (set when fitting again).
	fitFrom time.Duration

	mu    sync.Mutex
	start time.Time        // of the load; zero before it starts
	noise *attribute.Noise // the warm-up's, once measured
}

// attribute makes the load follow plan: churn at its baseline rate per
// second (what it was per 1,000 frames at the base rate), so raising the
// frame rate does not raise resolutions, and a stage per phase.
func (l *load) attribute(plan attribute.Plan) error {
	rc := l.replay
	c := *rc.Churn
	perSecond := rc.Rate / 1000
	c.Identity *= perSecond
	c.NewAccount *= perSecond
	c.Move *= perSecond
	c.Status *= perSecond
	c.Sync *= perSecond
	rc.Churn, rc.ChurnPerSecond = &c, true
	rc.Stages = nil
	for i, sp := range plan.Spans() {
		st := replay.Stage{Start: time.Duration(sp.StartS * float64(time.Second))}
		m := plan.Phases[i].Multiplier
		switch sp.Raised {
		case attribute.Frames:
			st.Frames = m
		case attribute.Resolutions:
			st.Churn = m
		case attribute.HostReconnects:
			st.Outages = m
		}
		rc.Stages = append(rc.Stages, st)
	}
	var err error
	if l.replay, err = rc.Normalize(); err != nil {
		return fmt.Errorf("attribution plan: %w", err)
	}
	l.attr = &attribution{plan: plan}
	return nil
}

// started marks the load's start: the plan's clock.
func (a *attribution) started(t time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.start = t
}

// scale is the multiplier of f's rate on the plan's clock: the phase's
// multiplier while it raises f, else 1. The crowd raises its reconnects
// and its new identities by it.
func (a *attribution) scale(f attribute.Factor) func() float64 {
	return func() float64 {
		a.mu.Lock()
		start := a.start
		a.mu.Unlock()
		if start.IsZero() {
			return 1
		}
		el := time.Since(start).Seconds()
		for i, sp := range a.plan.Spans() {
			if el >= sp.StartS && el < sp.EndS && sp.Raised == f {
				return a.plan.Phases[i].Multiplier
			}
		}
		return 1
	}
}

// checkNoise measures memory's noise over the second half of the warm-up
// when the warm-up ends, and says what it does to the plan's promise (on
// out, in events.jsonl, and later in the report): a relay far noisier than
// planned makes intervals too wide to name anything, and the operator can
// stop an hour and a half early and plan for the noise.
func (a *attribution) checkNoise(ctx context.Context, dir string, out io.Writer, ev func(string, any)) {
	// One sample interval past the warm-up, so its last sample is on disk.
	a.mu.Lock()
	due := a.start.Add(a.plan.Warmup + a.plan.SampleInterval)
	a.mu.Unlock()
	select {
	case <-ctx.Done():
		return
	case <-time.After(time.Until(due)):
	}
	obs, signal, err := attributionObservations(filepath.Join(dir, rundir.Samples), rundir.SignalRssAnon)
	var n attribute.Noise
	if err == nil {
		n, err = a.plan.MeasureWarmupNoise(obs.T, obs.Memory)
	}
	if err != nil {
		fmt.Fprintf(out, "relaysoak: attribution: the warm-up's noise could not be measured (%v); the plan stands as printed\n", err)
		ev("attribution_noise", map[string]any{"error": err.Error()})
		return
	}
	a.mu.Lock()
	a.noise = &n
	a.mu.Unlock()
	text, wider := a.plan.NoiseCheck(n)
	fmt.Fprintf(out, "relaysoak: attribution: %s (%s)\n", text, signal)
	ev("attribution_noise", map[string]any{"signal": signal, "noise": n, "wider_than_planned": wider})
}

// fitGoroutines regresses the relay's goroutine count on the factors as
// memory is (without floors: the count has no teeth), when the samples
// hold it. The count has almost none of memory's noise, so a leak that
// keeps a goroutine per event is named even when the heap is too noisy to
// name anything. ok is false when the samples hold no count; a fit that
// fails says why in its Reason.
func fitGoroutines(path string, fc attribute.FitConfig) (attribute.Result, bool) {
	obs, err := observations(path, rundir.Goroutines)
	if err != nil || len(obs.T) == 0 {
		return attribute.Result{}, false
	}
	for i := range obs.Memory {
		obs.Memory[i] *= 1 << 20 // the fit's MiB are goroutines
	}
	fc.Floors = false
	fc.MinGrowthMiB = 4 // goroutines: fewer are no growth
	res, err := attribute.Fit(obs, fc)
	if err != nil {
		res = attribute.Result{Verdict: attribute.VerdictInconclusive, Reason: err.Error()}
	}
	res.Signal = rundir.Goroutines
	return res, true
}

// attributionObservations reads the signal an attribution run regresses:
// the relay's live heap when the samples hold it, else fallback (the
// signal that carried the verdict). A collector's sawtooth swings RSS by
// more than an hour's growth, which widens every factor's interval past use; the live heap moves only
// with what the relay keeps.
func attributionObservations(path, fallback string) (attribute.Observations, string, error) {
	obs, err := observations(path, rundir.SignalLiveHeap)
	if err == nil && len(obs.T) > 0 {
		return obs, rundir.SignalLiveHeap, nil
	}
	obs, err = observations(path, fallback)
	return obs, fallback, err
}

// observations reads an attribution run's samples: memory (the signal
// that carried the verdict) and each factor's counter, from the load's
// start.
func observations(path, signal string) (attribute.Observations, error) {
	return observationsOf(path, signal, factorColumns)
}

// observationsOf reads memory (signal) and the counters named by columns,
// from the load's start. A counter no sample holds is left out (a run
// written before it was counted); samples lacking any other are.
func observationsOf(path, signal string, columns map[attribute.Factor]string) (attribute.Observations, error) {
	// One read: every sample of the load with memory, a count missing as
	// NaN; then the counters no sample holds go, and the samples lacking
	// any other.
	var t, mem []float64
	counts := map[attribute.Factor][]float64{}
	held := map[attribute.Factor]bool{}
	t0 := -1.0
	err := rundir.ReadLinesFile(path, func(_ int, l rundir.Line) error {
		if l.ElapsedS == nil || l.FramesSent == nil || *l.FramesSent == 0 {
			return nil // before the load: the plan's clock has not started
		}
		m, ok := l.Signals[signal]
		if !ok {
			m, ok = l.Context[signal] // the live heap is context, not judged
		}
		if !ok {
			return nil
		}
		if t0 < 0 {
			t0 = *l.ElapsedS
		}
		t, mem = append(t, *l.ElapsedS-t0), append(mem, m)
		for f, col := range columns {
			v, ok := l.Context[col]
			if !ok {
				v = math.NaN()
			}
			held[f] = held[f] || ok
			counts[f] = append(counts[f], v)
		}
		return nil
	})
	obs := attribute.Observations{Counts: map[attribute.Factor][]float64{}}
	for i := range t {
		whole := true
		for f := range held {
			whole = whole && (!held[f] || !math.IsNaN(counts[f][i]))
		}
		if !whole {
			continue
		}
		obs.T, obs.Memory = append(obs.T, t[i]), append(obs.Memory, mem[i])
		for f, ok := range held {
			if ok {
				obs.Counts[f] = append(obs.Counts[f], counts[f][i])
			}
		}
	}
	return obs, err
}

// finding fits the run's samples to the plan and writes attribution.json
// and a plot per factor beside the report.
func (a *attribution) finding(dir string, judged verdict.Report) (report.Attribution, error) {
	return a.fit(dir, judged.SampledSignal())
}

// refitAttribution fits an attribution run's samples again with the plan
// its attribution.json holds (a newer fit, or the verdict's signal judged
// afresh), rewriting attribution.json and the plots; ok is false when the
// run was not an attribution run. carried is the verdict's signal as
// sampled (Report.SampledSignal); the fit starts at warmup when that is
// past the plan's (a relay that settled late).
func refitAttribution(runDir, carried string, warmup time.Duration) (found report.Attribution, ok bool, err error) {
	path := filepath.Join(runDir, rundir.Attribution)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return found, false, nil
	}
	plan, err := attribute.ReadPlan(path)
	if err != nil {
		return found, true, fmt.Errorf("attribution: the run's plan: %w", err)
	}
	found, err = (&attribution{plan: plan, fitFrom: warmup}).fit(runDir, carried)
	return found, true, err
}

// fit fits dir's samples to the plan, and writes the result beside them.
func (a *attribution) fit(dir, carried string) (report.Attribution, error) {
	if carried == "" {
		carried = rundir.SignalRssAnon
	}
	obs, signal, err := attributionObservations(filepath.Join(dir, rundir.Samples), carried)
	if err != nil {
		return report.Attribution{}, err
	}
	fc := attribute.FitConfig{WarmupEndS: max(a.plan.Warmup, a.fitFrom).Seconds(), Floors: true}
	res, err := attribute.Fit(obs, fc)
	if err != nil {
		return report.Attribution{}, fmt.Errorf("attribution of %s: %w", signal, err)
	}
	res.Signal = signal
	if signal != carried {
		// The live heap cannot see a leak outside it (cgo, mmap, stacks):
		// the verdict's signal is fitted too, and a failure there is said.
		cobs, err := observations(filepath.Join(dir, rundir.Samples), carried)
		var cres attribute.Result
		if err == nil {
			cres, err = attribute.Fit(cobs, fc)
		}
		if err != nil {
			cres = attribute.Result{Verdict: attribute.VerdictInconclusive, Reason: err.Error()}
		}
		cres.Signal = carried
		res.CrossCheck = &cres
	}
	if g, ok := fitGoroutines(filepath.Join(dir, rundir.Samples), fc); ok {
		res.Goroutines = &g
	}
	plan := a.plan
	a.mu.Lock()
	if a.noise != nil {
		plan.WarmupNoise = a.noise
	}
	a.mu.Unlock()
	if err := attribute.WriteJSON(filepath.Join(dir, rundir.Attribution), res, plan); err != nil {
		return report.Attribution{}, err
	}
	sec := report.Attribution{Signal: signal, File: rundir.Attribution, Result: res, Plan: plan, Goroutines: res.Goroutines}
	if a.fitFrom > a.plan.Warmup {
		sec.FitFrom = a.fitFrom
	}
	var perr error
	if sec.Plots, perr = report.AttributionPlots(obs, res, a.plan, a.plan.Spans(), dir); perr != nil {
		sec.Plots, sec.PlotErr = nil, perr.Error()
	}
	return sec, nil
}
