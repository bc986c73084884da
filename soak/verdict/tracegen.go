package verdict

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/relaysoak/relaysoak/soak/rundir"
)

// This file generates the labelled synthetic traces the tests judge (and that
// TestWriteExamples writes to testdata/ when asked). Each component below is
// one of the shapes in ../shared/notes/memory-trends.md; a Spec adds them up.
// Library draws every free parameter from a seed, so each test run can use a
// fresh one and a failure is replayed by its seed.

// Spec describes one synthetic memory trace. Memory is in MiB, durations are
// time.Duration; zero fields leave their component out.
type Spec struct {
	Name     string
	Duration time.Duration
	Interval time.Duration // sampling interval; default 10 s

	BaseMiB float64 // level at start

	// Warm-up: a rise of WarmupMiB towards a plateau. Exponential with time
	// constant WarmupTau, or logistic (LogisticMid, width WarmupTau).
	WarmupMiB   float64
	WarmupTau   time.Duration
	Logistic    bool
	LogisticMid time.Duration

	LeakMiBPerHour float64
	LeakOnset      time.Duration // the leak starts here (default: at once)

	SawtoothMiB    float64 // GC sawtooth: rise by this much, drop back
	SawtoothPeriod time.Duration
	FlushMiB       float64 // slow flushes: the same, minutes to hours apart
	FlushPeriod    time.Duration

	StepMiB float64 // one-off step up at StepAt
	StepAt  time.Duration

	AllocSteps   int     // allocator steps up and down between levels
	AllocStepMiB float64 // size of each

	NoiseMiB float64 // white noise σ
	AR1Phi   float64 // AR(1) noise: coefficient per sample
	AR1MiB   float64 // and stationary σ

	Spikes   int     // single-sample outliers
	SpikeMiB float64 // their height

	Gaps   int           // sampling gaps
	GapLen time.Duration // each this long

	// LimitMiB: an OOM sawtooth. When the level reaches it, the process
	// restarts at BaseMiB (warm-up and leak start over).
	LimitMiB    float64
	RecordExits bool // put the OOM kills in the Context

	// Expect, when set, is the only acceptable verdict (INCONCLUSIVE for a
	// single flush tooth: neither PASS nor LEAK is honest yet).
	Expect Verdict
}

// Trace is a generated series with its ground truth.
type Trace struct {
	Spec
	Seed   int64
	Series Series
	Ctx    Context
	// Want is the right verdict: LEAK for any leak (an OOM sawtooth too),
	// CRASHED when exits are recorded, PASS otherwise.
	Want Verdict
	// WarmupEnd is when the warm-up is over (3τ for an exponential, mid+3τ
	// for a logistic) or the leak starts, whichever is later for a late leak.
	WarmupEnd time.Duration
	// PostWarmup is the data after WarmupEnd.
	PostWarmup time.Duration
}

// Generate draws the trace's noise from seed.
func (sp Spec) Generate(seed int64) Trace {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5eed))
	if sp.Interval == 0 {
		sp.Interval = 10 * time.Second
	}
	dt := sp.Interval.Seconds()
	n := int(sp.Duration.Seconds()/dt) + 1

	// Random event times, fixed up front.
	spikes := map[int]bool{}
	for range sp.Spikes {
		spikes[rng.IntN(n)] = true
	}
	type gap struct{ from, to float64 }
	var gaps []gap
	for range sp.Gaps {
		from := rng.Float64() * (sp.Duration.Seconds() - sp.GapLen.Seconds())
		gaps = append(gaps, gap{from, from + sp.GapLen.Seconds()})
	}
	var allocAt []float64
	var allocDir []float64
	level := 0
	for range sp.AllocSteps {
		allocAt = append(allocAt, rng.Float64()*sp.Duration.Seconds())
	}
	slices.Sort(allocAt)
	for range allocAt {
		// A bounded walk over four levels: up from the bottom, down from the top.
		d := 1.0
		if level == 3 || (level > 0 && rng.IntN(2) == 0) {
			d = -1
		}
		level += int(d)
		allocDir = append(allocDir, d)
	}
	sawPhase := rng.Float64()
	flushPhase := rng.Float64()

	tr := Trace{Spec: sp, Seed: seed, Want: Pass}
	var ar float64
	if sp.AR1MiB > 0 {
		ar = rng.NormFloat64() * sp.AR1MiB
	}
	arInnov := sp.AR1MiB * math.Sqrt(1-sp.AR1Phi*sp.AR1Phi)
	life := 0.0 // seconds since the process (re)started
	for i := 0; i < n; i++ {
		t := float64(i) * dt
		if i > 0 {
			life += dt
		}
		y := sp.BaseMiB
		if sp.WarmupMiB > 0 {
			tau := sp.WarmupTau.Seconds()
			if sp.Logistic {
				m := sp.LogisticMid.Seconds()
				y += sp.WarmupMiB * (1/(1+math.Exp(-(life-m)/tau)) - 1/(1+math.Exp(m/tau)))
			} else {
				y += sp.WarmupMiB * (1 - math.Exp(-life/tau))
			}
		}
		if sp.LeakMiBPerHour > 0 {
			onset := sp.LeakOnset.Seconds()
			if sp.LimitMiB > 0 {
				onset = 0
			}
			y += sp.LeakMiBPerHour * math.Max(0, life-onset) / secPerHour
		}
		if sp.SawtoothMiB > 0 {
			y += sp.SawtoothMiB * frac(t/sp.SawtoothPeriod.Seconds()+sawPhase)
		}
		if sp.FlushMiB > 0 {
			y += sp.FlushMiB * frac(t/sp.FlushPeriod.Seconds()+flushPhase)
		}
		if sp.StepMiB > 0 && t >= sp.StepAt.Seconds() {
			y += sp.StepMiB
		}
		for k, at := range allocAt {
			if t >= at {
				y += allocDir[k] * sp.AllocStepMiB
			}
		}
		if sp.AR1MiB > 0 {
			ar = sp.AR1Phi*ar + arInnov*rng.NormFloat64()
			y += ar
		}
		y += sp.NoiseMiB * rng.NormFloat64()
		if spikes[i] {
			y += sp.SpikeMiB
		}
		if sp.LimitMiB > 0 && y >= sp.LimitMiB {
			// OOM kill: this sample sees the fresh process.
			life = 0
			y = sp.BaseMiB + sp.NoiseMiB*rng.NormFloat64()
			if sp.RecordExits {
				tr.Ctx.Exits = append(tr.Ctx.Exits, t-dt/2)
			}
		}
		skip := false
		for _, g := range gaps {
			if t > g.from && t < g.to {
				skip = true
			}
		}
		if !skip {
			tr.Series = append(tr.Series, Point{T: t, Bytes: math.Max(y, 1) * mib})
		}
	}
	if sp.LimitMiB > 0 {
		tr.Ctx.MemoryLimit = sp.LimitMiB * mib
	}
	switch {
	case len(tr.Ctx.Exits) > 0:
		tr.Want = Crashed
	case sp.LeakMiBPerHour > 0:
		tr.Want = Leak
	}
	var warm time.Duration
	if sp.WarmupMiB > 0 {
		warm = 3 * sp.WarmupTau
		if sp.Logistic {
			warm += sp.LogisticMid
		}
	}
	if sp.LeakMiBPerHour > 0 && sp.LimitMiB == 0 {
		warm = max(warm, sp.LeakOnset)
	}
	tr.WarmupEnd = warm
	tr.PostWarmup = max(sp.Duration-warm, 0)
	return tr
}

func frac(x float64) float64 { return x - math.Floor(x) }

// Library returns the labelled library for one seed: every shape in the
// notes, healthy and leaking, with parameters drawn from seed (levels around
// a relay's 1.5 GiB, 10-second samples unless a trace says otherwise).
func Library(seed int64) []Trace {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x11b))
	u := func(lo, hi float64) float64 { return lo + (hi-lo)*rng.Float64() }
	mins := func(lo, hi float64) time.Duration { return time.Duration(u(lo, hi) * float64(time.Minute)) }
	h := time.Hour
	var specs []Spec
	add := func(s Spec) { specs = append(specs, s) }

	noise := func() float64 { return u(2, 8) }
	base := func() float64 { return u(300, 1500) }

	// Healthy.
	add(Spec{Name: "flat", Duration: 4 * h, BaseMiB: base(), NoiseMiB: noise()})
	for _, wu := range []float64{15, 60, 120} { // warm-up length (3τ) in minutes
		tau := mins(wu/3*0.8, wu/3)
		dur := 3*tau + 4*h
		add(Spec{Name: fmt.Sprintf("warmup-exp-%.0fmin", wu), Duration: dur, BaseMiB: u(50, 200), WarmupMiB: u(800, 1400), WarmupTau: tau, NoiseMiB: noise()})
		w := mins(wu/6*0.8, wu/6)
		mid := 3 * w
		add(Spec{Name: fmt.Sprintf("warmup-logistic-%.0fmin", wu), Duration: mid + 3*w + 4*h, BaseMiB: u(50, 200), WarmupMiB: u(800, 1400), WarmupTau: w, Logistic: true, LogisticMid: mid, NoiseMiB: noise()})
	}
	add(Spec{Name: "gc-sawtooth", Duration: 4 * h, BaseMiB: base(), SawtoothMiB: u(50, 300), SawtoothPeriod: mins(0.5, 5), NoiseMiB: noise()})
	add(Spec{Name: "allocator-steps", Duration: 6 * h, BaseMiB: base(), AllocSteps: 4 + rng.IntN(5), AllocStepMiB: u(32, 128), NoiseMiB: noise()})
	add(Spec{Name: "one-off-step", Duration: 4 * h, BaseMiB: base(), StepMiB: u(100, 500), StepAt: mins(30, 230), NoiseMiB: noise()})
	add(Spec{Name: "slow-flushes", Duration: 6 * h, BaseMiB: base(), FlushMiB: u(100, 300), FlushPeriod: mins(20, 80), NoiseMiB: noise()})
	add(Spec{Name: "ar1-noise", Duration: 4 * h, BaseMiB: base(), AR1Phi: u(0.9, 0.99), AR1MiB: u(5, 20), NoiseMiB: 2})
	add(Spec{Name: "gaps", Duration: 5 * h, BaseMiB: 100, WarmupMiB: u(800, 1400), WarmupTau: mins(5, 15), Gaps: 3, GapLen: mins(5, 30), NoiseMiB: noise()})
	add(Spec{Name: "outliers", Duration: 4 * h, BaseMiB: base(), Spikes: 5 + rng.IntN(10), SpikeMiB: u(200, 800), NoiseMiB: noise()})
	add(Spec{Name: "warmup-sawtooth-ar1", Duration: 5 * h, BaseMiB: 100, WarmupMiB: 1400, WarmupTau: mins(10, 30), SawtoothMiB: u(50, 200), SawtoothPeriod: mins(1, 4), AR1Phi: 0.95, AR1MiB: u(5, 15), NoiseMiB: noise()})
	add(Spec{Name: "sawtooth-30s-samples", Duration: 6 * h, Interval: 30 * time.Second, BaseMiB: base(), SawtoothMiB: u(100, 300), SawtoothPeriod: mins(2, 10), NoiseMiB: noise()})

	// Leaks.
	for _, r := range []float64{5, 10, 25, 50, 100, 290, 1000} {
		add(Spec{Name: fmt.Sprintf("leak-%.0f", r), Duration: 3 * h, BaseMiB: base(), LeakMiBPerHour: r, NoiseMiB: noise()})
	}
	for _, r := range []float64{50, 290, 1000} {
		add(Spec{Name: fmt.Sprintf("leak-%.0f-sawtooth", r), Duration: 3 * h, BaseMiB: base(), LeakMiBPerHour: r, SawtoothMiB: u(50, 200), SawtoothPeriod: mins(0.5, 5), NoiseMiB: noise()})
	}
	for _, r := range []float64{50, 290} {
		for _, wu := range []float64{30, 120} {
			add(Spec{Name: fmt.Sprintf("leak-%.0f-warmup-%.0fmin", r, wu), Duration: time.Duration(wu)*time.Minute + 3*h, BaseMiB: 100, WarmupMiB: 1400, WarmupTau: time.Duration(wu / 3 * float64(time.Minute)), LeakMiBPerHour: r, SawtoothMiB: u(30, 100), SawtoothPeriod: mins(1, 3), NoiseMiB: noise()})
		}
	}
	for _, r := range []float64{50, 290} {
		add(Spec{Name: fmt.Sprintf("leak-%.0f-after-plateau", r), Duration: 6 * h, BaseMiB: 100, WarmupMiB: 1400, WarmupTau: mins(5, 15), LeakMiBPerHour: r, LeakOnset: mins(180, 240), NoiseMiB: noise()})
	}
	add(Spec{Name: "leak-100-ar1", Duration: 3 * h, BaseMiB: base(), LeakMiBPerHour: 100, AR1Phi: 0.95, AR1MiB: u(5, 15), NoiseMiB: 2})
	add(Spec{Name: "leak-100-gaps-outliers", Duration: 3 * h, BaseMiB: base(), LeakMiBPerHour: 100, Gaps: 2, GapLen: mins(5, 20), Spikes: 5, SpikeMiB: 500, NoiseMiB: noise()})
	// Shapes that fool simple judges. A leak that starts while an S-shaped
	// warm-up is still rising (a cache filling as hosts connect).
	for _, r := range []float64{100, 290} {
		w := mins(5, 15)
		mid := time.Duration(u(3, 4) * float64(w))
		add(Spec{Name: fmt.Sprintf("leak-%.0f-logistic-warmup", r), Duration: mid + 3*w + 3*h, BaseMiB: u(50, 200), WarmupMiB: u(800, 1400), WarmupTau: w, Logistic: true, LogisticMid: mid, LeakMiBPerHour: r, SawtoothMiB: u(0, 100), SawtoothPeriod: mins(1, 3), NoiseMiB: noise()})
	}
	// Slow flush cycles (a cache flushed on a timer): the same floor every
	// cycle, amplitudes up to half the level. Two whole cycles or more are
	// healthy; a single tooth cannot be told from a leak yet.
	{
		b := u(600, 1500)
		add(Spec{Name: "flush-hourly-8h", Duration: 8 * h, BaseMiB: b, FlushMiB: u(0.2, 0.5) * b, FlushPeriod: time.Hour, NoiseMiB: noise(), Expect: Pass})
		p := mins(20, 120)
		b = u(600, 1500)
		add(Spec{Name: "flush-20-120min", Duration: max(4*h, time.Duration(u(3, 4)*float64(p))), BaseMiB: b, FlushMiB: u(0.2, 0.5) * b, FlushPeriod: p, NoiseMiB: noise(), Expect: Pass})
		p = mins(40, 120)
		b = u(600, 1500)
		add(Spec{Name: "flush-one-tooth", Duration: time.Duration(u(1.2, 1.8) * float64(p)), BaseMiB: b, FlushMiB: u(0.2, 0.5) * b, FlushPeriod: p, NoiseMiB: noise(), Expect: Inconclusive})
		b = u(600, 1500)
		add(Spec{Name: "leak-290-hourly-flush", Duration: 6 * h, BaseMiB: b, FlushMiB: u(0.1, 0.3) * b, FlushPeriod: time.Hour, LeakMiBPerHour: 290, NoiseMiB: noise()})
	}
	// A 290 MiB/hour leak after a 2-hour warm-up, judged on 30 minutes of
	// post-warm-up data only. TestTimeToDetect holds the goal (the first
	// LEAK within 30 minutes, judged minute by minute as a live run is);
	// judged once at 30 minutes, 2 in 104 draws were still INCONCLUSIVE.
	add(Spec{Name: "leak-290-2h-warmup-30min", Duration: 2*h + 30*time.Minute, BaseMiB: 100, WarmupMiB: 1436, WarmupTau: 40 * time.Minute, LeakMiBPerHour: 290, SawtoothMiB: u(50, 150), SawtoothPeriod: mins(1, 5), NoiseMiB: noise()})
	add(Spec{Name: "oom-sawtooth", Duration: 6 * h, BaseMiB: u(100, 200), WarmupMiB: 300, WarmupTau: 5 * time.Minute, LeakMiBPerHour: u(800, 1500), LimitMiB: 2048, NoiseMiB: noise()})
	add(Spec{Name: "oom-sawtooth-exits", Duration: 6 * h, BaseMiB: u(100, 200), WarmupMiB: 300, WarmupTau: 5 * time.Minute, LeakMiBPerHour: u(800, 1500), LimitMiB: 2048, RecordExits: true, NoiseMiB: noise()})

	out := make([]Trace, len(specs))
	for i, sp := range specs {
		out[i] = sp.Generate(seed*1000 + int64(i))
	}
	return out
}

// goProcess simulates a garbage-collected relay sampled every 10 s: what it
// keeps, its live heap (what it keeps plus what it holds between flushes,
// a sawtooth) and its resident set (the heap under GOGC=100, the running
// maximum of bounded pinning, what the allocator retains, noise). MiB and
// MiB/hour.
type goProcess struct {
	minutes float64
	keptMiB float64 // what it keeps at the start
	leak    float64 // MiB/hour more kept
	// step: what it keeps steps up by stepMiB at stepMin (a crowd's queues
	// filling once), then stays.
	stepMiB, stepMin float64
	// teeth of the live heap: a climb of toothMiB over toothS, then a drop.
	toothMiB, toothS float64
	// pinMiB: slow readers pin queues of up to this much at random, freed
	// when they are cut off; RSS keeps their running maximum.
	pinMiB float64
	// retained: RSS grows by this many MiB/hour while the heap does not
	// (freed pages the allocator keeps).
	retained float64
	noiseMiB float64
}

// run returns the run's samples: rss_anon as a signal and the live heap.
func (g goProcess) run(seed uint64) Run {
	rng := rand.New(rand.NewPCG(seed, 0x6b657074))
	run := Run{Signals: map[string]Series{}}
	phase := rng.Float64() * g.toothS
	pinned, highWater := 0.0, 0.0
	for t := 0.0; t <= g.minutes*60; t += 10 {
		kept := g.keptMiB + g.leak*t/3600
		if g.stepMiB > 0 && t >= g.stepMin*60 {
			kept += g.stepMiB
		}
		held := g.toothMiB * math.Mod(t+phase, g.toothS) / g.toothS
		live := kept + held + rng.NormFloat64()*0.3
		if g.pinMiB > 0 {
			// A pin builds and is cut off every few minutes.
			pinned = max(0, min(g.pinMiB, pinned+rng.NormFloat64()*g.pinMiB/4))
			if rng.IntN(20) == 0 {
				pinned = 0
			}
		}
		// The runtime keeps the heap's high-water mark for a while: RSS
		// follows the largest goal it has reached, plus pinned queues.
		highWater = max(highWater*0.995, 2*live+pinned)
		rss := 80 + highWater + g.retained*t/3600 + rng.NormFloat64()*g.noiseMiB
		run.Signals[rundir.SignalRssAnon] = append(run.Signals[rundir.SignalRssAnon], Point{T: t, Bytes: rss * mib})
		run.Kept = append(run.Kept, Point{T: t, Bytes: live * mib})
	}
	return run
}
