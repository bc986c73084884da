package attribute

import (
	"fmt"
	"math"
	"time"

	"github.com/relaysoak/relaysoak/internal/stats"
)

// Noise is memory's scatter around its own trend, as a plan assumes it
// (PlanConfig.NoiseMiB, NoiseAR) or as a run's warm-up shows it.
type Noise struct {
	SDMiB  float64 `json:"sd_mib"`
	AR1    float64 `json:"ar1"`
	Points int     `json:"points"`
	FromS  float64 `json:"from_s"`
	ToS    float64 `json:"to_s"`
	// Teeth: memory was a fast sawtooth, and this is its floors' noise.
	Teeth *stats.Teeth `json:"teeth,omitempty"`
}

// minNoisePoints is the fewest samples MeasureNoise estimates from: fewer
// give an sd and an autocorrelation that mean little.
const minNoisePoints = 12

// minFloorPoints is the fewest floors the warm-up's check measures their
// noise from (around a line): a warm-up holds few teeth, and a rough sd is
// enough to warn.
const minFloorPoints = 4

// MeasureNoise is the noise of memory in [fromS, toS] (seconds on t) around a
// quadratic (a warm-up rises and levels off; a line would count its bend as
// noise): the residuals' sd and lag-1 autocorrelation.
func MeasureNoise(t, memory []float64, fromS, toS float64) (Noise, error) {
	return measureNoise(t, memory, fromS, toS, minNoisePoints, true)
}

func measureNoise(t, memory []float64, fromS, toS float64, minPoints int, bend bool) (Noise, error) {
	if len(t) != len(memory) {
		return Noise{}, fmt.Errorf("attribute: %d times for %d memory samples", len(t), len(memory))
	}
	lo, hi := stats.Span(t, fromS, toS)
	n := hi - lo
	if n < minPoints {
		return Noise{}, fmt.Errorf("attribute: %d memory samples from %.0f to %.0f s, at least %d needed to measure the noise", n, fromS, toS, minPoints)
	}
	tt := t[lo:hi]
	cols := [][]float64{make([]float64, n), tt}
	if bend {
		sq := make([]float64, n)
		for i, v := range tt {
			d := v - tt[0]
			sq[i] = d * d
		}
		cols = append(cols, sq)
	}
	d := newScaledDesign(cols)
	keep := []int{0}
	for j := 1; j < d.p; j++ {
		if d.scale[j] > 0 {
			keep = append(keep, j)
		}
	}
	w := make([]float64, n)
	for i := range w {
		w[i] = 1
	}
	_, _, u, err := d.wls(memory[lo:hi], w, keep)
	if err != nil {
		return Noise{}, fmt.Errorf("attribute: the noise from %.0f to %.0f s: %w", fromS, toS, err)
	}
	var ss float64
	for _, v := range u {
		ss += v * v
	}
	sd := math.Sqrt(ss/float64(n-len(keep))) / (1 << 20)
	return Noise{SDMiB: sd, AR1: stats.ClampRho(stats.Lag1(u)), Points: n, FromS: tt[0], ToS: tt[n-1]}, nil
}

// HalfWidthAt is the widest 95% half-width, over the plan's factors, of a
// factor's growth in MiB/hour at its baseline, had memory this noise: what
// the plan promised (HalfWidthMiBPerHour) at the noise it assumed.
func (p Plan) HalfWidthAt(n Noise) float64 {
	var factors []Factor
	mult := 0.0
	for _, ph := range p.Phases {
		if ph.Raised != "" {
			factors = append(factors, ph.Raised)
			mult = ph.Multiplier
		}
	}
	if len(factors) == 0 {
		return 0
	}
	dt := p.SampleInterval
	if dt <= 0 {
		dt = DefaultSampleInterval
	}
	if n.Teeth != nil {
		dt = time.Duration(n.Teeth.WindowS * float64(time.Second)) // one floor per window
	}
	return planHalfWidth(factors, mult, p.Warmup, p.Phases[0].Duration, dt, n.SDMiB, stats.ClampRho(n.AR1))
}

// NoiseCheck says what the warm-up's noise means for the plan, in a
// sentence; wider is how many times wider than promised the intervals will
// be (0 when the plan made no promise). At 1.5 and more the sentence says
// what to do: the run goes on, but the operator can stop it early.
//
// The persistence is taken as the larger of the measured and the planned:
// thirty samples around a fitted bend understate a lag-1 autocorrelation
// badly (0.2–0.7 measured for 0.8 simulated), which would promise narrower
// intervals than the run will give. So the check catches a relay whose
// memory scatters more than planned, not one that is merely more persistent
// (the report's own residuals show that, after the run).
func (p Plan) NoiseCheck(n Noise) (text string, wider float64) {
	eff := n
	if n.Teeth == nil {
		eff.AR1 = max(n.AR1, p.NoiseAR)
	} // floors a window apart keep little of the plan's persistence per sample
	hw := p.HalfWidthAt(eff)
	of, pts := "", "samples"
	if th := n.Teeth; th != nil {
		of = fmt.Sprintf(" of the floors (memory is a sawtooth: drops of %.3g MiB every %.0f s; the fit takes the lowest sample of each %.0f s)", th.DepthMiB, th.PeriodS, th.WindowS)
		pts = "floors"
	}
	text = fmt.Sprintf("warm-up noise%s: sd %.3g MiB over %d %s from %.0f to %.0f min, lag-1 autocorrelation %.2f, taken as %.2f (the plan assumed %.3g MiB, %.2f): every factor ±%.3g MiB/hour (95%%) at its baseline",
		of, n.SDMiB, n.Points, pts, n.FromS/60, n.ToS/60, n.AR1, eff.AR1, p.NoiseMiB, p.NoiseAR, hw)
	if p.HalfWidthMiBPerHour <= 0 {
		return text, 0
	}
	wider = hw / p.HalfWidthMiBPerHour
	text += fmt.Sprintf(", the plan promised ±%.3g", p.HalfWidthMiBPerHour)
	if wider >= 1.5 {
		// The flag takes one sd at the plan's persistence and sampling: the
		// half-width is proportional to it, so the equivalent scales too.
		equiv := p.NoiseMiB * wider
		text += fmt.Sprintf(". Noisier than planned: a factor growing memory by less than about %.3g MiB/hour will not be named. The run goes on; to plan for this noise, stop it and start again with --attribute-noise=%.1f (longer phases, or an error saying they do not fit the cap)",
			2*hw, math.Ceil(10*equiv)/10)
	}
	return text, wider
}

// MeasureWarmupNoise measures the noise over the second half of the plan's
// warm-up, where a relay has mostly settled. When memory is a fast sawtooth
// in the warm-up, the fit will take floors: then it is their noise, from the
// floors of one period each over the warm-up's last seven eighths (a
// period's window misses a trough now and then, so this errs high; and a
// warm-up holds few teeth, so it is rough).
func (p Plan) MeasureWarmupNoise(t, memory []float64) (Noise, error) {
	w := p.Warmup.Seconds()
	th := stats.FindTeeth(t, memory, 0, w, w/2)
	if !th.Found() {
		return MeasureNoise(t, memory, w/2, w)
	}
	fl := Observations{T: t, Memory: memory}.Floors(w/8, th.PeriodS)
	n, err := measureNoise(fl.T, fl.Memory, w/8, w, minFloorPoints, false)
	if err != nil {
		return n, fmt.Errorf("memory is a sawtooth (drops of %.3g MiB every %.0f s), and the warm-up holds too few of its floors: %w", th.DepthMiB, th.PeriodS, err)
	}
	n.Teeth = &th
	return n, nil
}
