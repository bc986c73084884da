package attribute

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Phase is one stretch of a plan: Raised ("" for baseline) runs at
// Multiplier × its baseline rate, every other factor at baseline.
type Phase struct {
	Name       string
	Raised     Factor // "" for baseline
	Multiplier float64
	Duration   time.Duration
}

// Plan is the warm-up followed by the phases, in order.
type Plan struct {
	Warmup time.Duration
	Phases []Phase
	// Need says how the phase length was chosen, for the printed plan.
	Need string
	// NoiseMiB, NoiseAR and HalfWidthMiBPerHour are what the plan assumed
	// and promised (every factor's 95% half-width, as MiB/hour at its
	// baseline), so the report can say when the run was noisier.
	NoiseMiB            float64
	NoiseAR             float64
	HalfWidthMiBPerHour float64
	// SampleInterval is the sampling the promise assumed.
	SampleInterval time.Duration
	// WarmupNoise is the noise the run's warm-up showed, once measured.
	WarmupNoise *Noise
}

// Span is one phase as it happened (or is planned), in seconds since the
// run's start.
type Span struct {
	Name   string
	Raised Factor
	StartS float64
	EndS   float64
}

// Total is the warm-up plus every phase.
func (p Plan) Total() time.Duration {
	t := p.Warmup
	for _, ph := range p.Phases {
		t += ph.Duration
	}
	return t
}

// Spans are the phases as planned, from the end of the warm-up.
func (p Plan) Spans() []Span {
	out := make([]Span, 0, len(p.Phases))
	t := p.Warmup.Seconds()
	for _, ph := range p.Phases {
		out = append(out, Span{Name: ph.Name, Raised: ph.Raised, StartS: t, EndS: t + ph.Duration.Seconds()})
		t += ph.Duration.Seconds()
	}
	return out
}

// Text is the plan as a table for the operator, printed before the run.
func (p Plan) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "attribution plan: %d phases after a %s warm-up, %s in all\n", len(p.Phases), mins(p.Warmup), mins(p.Total()))
	fmt.Fprintf(&b, "  %-8s  %-8s  %-8s  %s\n", "start", "length", "phase", "load")
	fmt.Fprintf(&b, "  %-8s  %-8s  %-8s  %s\n", "0", mins(p.Warmup), "warm-up", "all factors at baseline (not judged)")
	t := p.Warmup
	for _, ph := range p.Phases {
		load := "all factors at baseline"
		if ph.Raised != "" {
			load = fmt.Sprintf("%s ×%.3g, others at baseline", ph.Raised.Label(), ph.Multiplier)
		}
		fmt.Fprintf(&b, "  %-8s  %-8s  %-8s  %s\n", mins(t), mins(ph.Duration), ph.Name, load)
		t += ph.Duration
	}
	if p.Need != "" {
		fmt.Fprintf(&b, "  phase length: %s\n", p.Need)
	}
	return b.String()
}

func (p Plan) String() string { return p.Text() }

// mins is d in minutes to a tenth: a 90-s phase is 1.5 min, not 2.
func mins(d time.Duration) string { return fmt.Sprintf("%g min", math.Round(d.Minutes()*10)/10) }

// PlanConfig chooses a plan. Zero values mean the defaults given per field.
type PlanConfig struct {
	// Factors raised, one phase each. Default AllFactors.
	Factors []Factor
	// Multiplier of a raised factor's rate. Default 2.5; refused outside
	// [1.5, 3]: less separates too little, more changes the relay's regime.
	Multiplier float64
	// Warmup before the first phase (not judged). Default 10 min.
	Warmup time.Duration
	// PhaseLength, when set, is used as is; 0 derives it (see the package
	// documentation).
	PhaseLength time.Duration
	// MaxTotal caps warm-up plus phases. Default 2 hours.
	MaxTotal time.Duration
	// NoiseMiB is the residual standard deviation of memory around the
	// model. Default 2 MiB (sawtooth and sampling jitter of a Go relay).
	NoiseMiB float64
	// NoiseAR is the lag-1 autocorrelation of that noise at SampleInterval.
	// Default 0.8: memory residuals persist over several samples.
	NoiseAR float64
	// SampleInterval is how often memory and counts are sampled. Default 10 s
	// (the soak's SampleEvery).
	SampleInterval time.Duration
	// MinDetectMiBPerHour is the slowest growth, caused by one factor at its
	// baseline rate, that the plan must attribute: every factor's 95%
	// interval must be within ±half of it. Default 40 MiB/hour, well under
	// the leak that motivated the rig (about 290 MiB/hour at production
	// load).
	MinDetectMiBPerHour float64
}

// Plan defaults.
const (
	DefaultMultiplier          = 2.5
	DefaultWarmup              = 10 * time.Minute
	DefaultMaxTotal            = 2 * time.Hour
	DefaultNoiseMiB            = 2
	DefaultNoiseAR             = 0.8
	DefaultSampleInterval      = 10 * time.Second
	DefaultMinDetectMiBPerHour = 40
	// minPhase is the shortest phase: a few GC cycles and ≥ 18 samples.
	minPhase = 3 * time.Minute
)

func (c PlanConfig) withDefaults() PlanConfig {
	if len(c.Factors) == 0 {
		c.Factors = AllFactors
	}
	if c.Multiplier == 0 {
		c.Multiplier = DefaultMultiplier
	}
	if c.Warmup == 0 {
		c.Warmup = DefaultWarmup
	}
	if c.MaxTotal == 0 {
		c.MaxTotal = DefaultMaxTotal
	}
	if c.NoiseMiB == 0 {
		c.NoiseMiB = DefaultNoiseMiB
	}
	if c.NoiseAR == 0 {
		c.NoiseAR = DefaultNoiseAR
	}
	if c.SampleInterval == 0 {
		c.SampleInterval = DefaultSampleInterval
	}
	if c.MinDetectMiBPerHour == 0 {
		c.MinDetectMiBPerHour = DefaultMinDetectMiBPerHour
	}
	return c
}

// NewPlan lays out B F1 B F2 … Fk B and chooses the phase length.
func NewPlan(cfg PlanConfig) (Plan, error) {
	c := cfg.withDefaults()
	if c.Multiplier < 1.5 || c.Multiplier > 3 {
		return Plan{}, fmt.Errorf("attribution plan: multiplier %.3g outside [1.5, 3]", c.Multiplier)
	}
	if c.NoiseAR < 0 || c.NoiseAR >= 1 || c.NoiseMiB < 0 || c.MinDetectMiBPerHour < 0 || c.Warmup < 0 || c.SampleInterval <= 0 {
		return Plan{}, fmt.Errorf("attribution plan: invalid noise or timing figures (noise %.3g MiB, AR %.3g, detect %.3g MiB/h, warm-up %s, interval %s)",
			c.NoiseMiB, c.NoiseAR, c.MinDetectMiBPerHour, c.Warmup, c.SampleInterval)
	}
	seen := map[Factor]bool{}
	for _, f := range c.Factors {
		if f == "" || f == Time || seen[f] {
			return Plan{}, fmt.Errorf("attribution plan: factor %q empty, reserved or repeated", f)
		}
		seen[f] = true
	}
	nPhases := 2*len(c.Factors) + 1
	room := c.MaxTotal - c.Warmup
	maxLen := (room / time.Duration(nPhases)).Truncate(time.Minute)
	p := Plan{Warmup: c.Warmup, NoiseMiB: c.NoiseMiB, NoiseAR: c.NoiseAR, SampleInterval: c.SampleInterval}
	length := c.PhaseLength
	if length == 0 {
		if maxLen < minPhase {
			return Plan{}, fmt.Errorf("attribution plan: %d phases of at least %s plus a %s warm-up exceed the %s cap",
				nPhases, mins(minPhase), mins(c.Warmup), mins(c.MaxTotal))
		}
		hwAt := func(l time.Duration) float64 {
			return planHalfWidth(c.Factors, c.Multiplier, c.Warmup, l, c.SampleInterval, c.NoiseMiB, c.NoiseAR)
		}
		target := c.MinDetectMiBPerHour / 2
		hwMax := hwAt(maxLen)
		if hwMax > target {
			// The half-width falls about as L^-3/2: extrapolate what is needed.
			need := time.Duration(float64(maxLen) * math.Pow(hwMax/target, 2.0/3)).Round(time.Minute)
			return Plan{}, fmt.Errorf("attribution plan: detecting %.3g MiB/hour per factor at %.3g MiB noise (AR %.2g, %s samples) needs phases of about %s; %d phases plus a %s warm-up would take %s, over the %s cap (the longest that fits, %s, gives ±%.3g MiB/hour): raise the growth to detect, the multiplier or the cap",
				c.MinDetectMiBPerHour, c.NoiseMiB, c.NoiseAR, c.SampleInterval, mins(need), nPhases, mins(c.Warmup),
				mins(c.Warmup+time.Duration(nPhases)*need), mins(c.MaxTotal), mins(maxLen), hwMax)
		}
		// Smallest whole minute that meets the target (half-width falls with L).
		lo, hi := int(minPhase/time.Minute), int(maxLen/time.Minute)
		for lo < hi {
			mid := (lo + hi) / 2
			if hwAt(time.Duration(mid)*time.Minute) <= target {
				hi = mid
			} else {
				lo = mid + 1
			}
		}
		length = time.Duration(lo) * time.Minute
		p.Need = fmt.Sprintf("%s gives every factor ±%.3g MiB/hour (95%%) at %.3g MiB noise, AR %.2g, %s samples; target ±%.3g (half of %.3g MiB/hour to detect)",
			mins(length), hwAt(length), c.NoiseMiB, c.NoiseAR, c.SampleInterval, target, c.MinDetectMiBPerHour)
	} else if c.Warmup+time.Duration(nPhases)*length > c.MaxTotal {
		return Plan{}, fmt.Errorf("attribution plan: %d phases of %s plus a %s warm-up take %s, over the %s cap",
			nPhases, mins(length), mins(c.Warmup), mins(c.Warmup+time.Duration(nPhases)*length), mins(c.MaxTotal))
	}
	p.HalfWidthMiBPerHour = planHalfWidth(c.Factors, c.Multiplier, c.Warmup, length, c.SampleInterval, c.NoiseMiB, c.NoiseAR)
	base := 0
	addBase := func() {
		base++
		p.Phases = append(p.Phases, Phase{Name: fmt.Sprintf("B%d", base), Multiplier: 1, Duration: length})
	}
	addBase()
	for i, f := range c.Factors {
		p.Phases = append(p.Phases, Phase{Name: fmt.Sprintf("F%d", i+1), Raised: f, Multiplier: c.Multiplier, Duration: length})
		addBase()
	}
	return p, nil
}

// planHalfWidth is the widest 95% half-width, over factors, of each factor's
// coefficient expressed as MiB/hour at its baseline rate, for the model
// fitted to this plan's design at the given noise (OLS variance inflated by
// (1+φ)/(1−φ) for AR(1) noise, as for slowly varying regressors).
func planHalfWidth(factors []Factor, mult float64, warm, length, dt time.Duration, sigma, phi float64) float64 {
	k := len(factors)
	nPhases := 2*k + 1
	n := int(time.Duration(nPhases) * length / dt)
	if n < k+3 {
		return math.Inf(1)
	}
	x := make([][]float64, k+2)
	for j := range x {
		x[j] = make([]float64, n)
	}
	h := dt.Hours()
	cum := make([]float64, k)
	for i := 0; i < n; i++ {
		phase := int(time.Duration(i) * dt / length)
		x[0][i] = 1
		x[1][i] = float64(i) * h
		for f := range k {
			rate := 1.0
			if phase%2 == 1 && phase/2 == f {
				rate = mult
			}
			x[2+f][i] = cum[f]
			cum[f] += rate * h
		}
	}
	d := newScaledDesign(x)
	keep := make([]int, len(x))
	w := make([]float64, n)
	for i := range keep {
		keep[i] = i
	}
	for i := range w {
		w[i] = 1
	}
	_, ainv, _, err := d.wls(make([]float64, n), w, keep)
	if err != nil {
		return math.Inf(1)
	}
	infl := arInflation(phi)
	worst := 0.0
	for f := range k {
		j := 2 + f
		se := sigma * math.Sqrt(infl*ainv[j][j]) / d.scale[j]
		worst = max(worst, 1.96*se)
	}
	return worst
}

// arInflation is how much AR(1) noise with lag-1 autocorrelation phi widens
// the variance of a slowly varying regressor's coefficient over white noise.
func arInflation(phi float64) float64 { return (1 + phi) / (1 - phi) }
