package attribute

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strings"
	"time"

	"github.com/relaysoak/relaysoak/internal/atomicfile"
	"github.com/relaysoak/relaysoak/internal/bytesize"
	"github.com/relaysoak/relaysoak/internal/stats"
)

// PerUnit is "1.1 KiB retained per resolution (CI 0.9–1.3)".
func (t Term) PerUnit() string {
	scale := math.Max(math.Abs(t.BytesPerUnit), math.Max(math.Abs(t.Lo), math.Abs(t.Hi))/2)
	v, unit := bytesize.Unit(scale)
	if t.Factor == Time {
		v, unit = bytesize.Unit(math.Max(math.Abs(t.BytesPerHour), math.Max(math.Abs(t.Lo), math.Abs(t.Hi))*1800))
		return fmt.Sprintf("%s %s/hour (CI %s to %s)", bytesize.Figures(t.BytesPerHour/v), unit, bytesize.Figures(t.Lo*3600/v), bytesize.Figures(t.Hi*3600/v))
	}
	return fmt.Sprintf("%s %s retained per %s (CI %s to %s)", bytesize.Figures(t.BytesPerUnit/v), unit, t.Factor.Unit(), bytesize.Figures(t.Lo/v), bytesize.Figures(t.Hi/v))
}

// explainsNone is "frames explain none (−2 to +3 B/frame)".
func explainsNone(t Term) string {
	if t.Dropped != "" {
		return fmt.Sprintf("%s not judged (%s)", t.Factor.Label(), t.Dropped)
	}
	if t.Factor == Time {
		v, unit := bytesize.Unit(math.Max(math.Abs(t.Lo), math.Abs(t.Hi)) * 3600)
		return fmt.Sprintf("time explains none (%s to %s %s/hour)", bytesize.Figures(t.Lo*3600/v), bytesize.Figures(t.Hi*3600/v), unit)
	}
	v, unit := bytesize.Unit(math.Max(math.Abs(t.Lo), math.Abs(t.Hi)))
	what := "explain none"
	if t.Significant {
		what = "explain little"
	}
	return fmt.Sprintf("%s %s (%s to %s %s/%s)", t.Factor.Label(), what, bytesize.Figures(t.Lo/v), bytesize.Figures(t.Hi/v), unit, t.Factor.Unit())
}

// Sentence says what an operator should act on.
func (r Result) Sentence() string {
	var rest []string
	for _, t := range r.Terms {
		if !t.Named && !(r.Verdict == VerdictTime && t.Factor == Time) {
			rest = append(rest, explainsNone(t))
		}
	}
	window := (r.WindowEndS - r.WindowStartS) / 60
	switch r.Verdict {
	case VerdictFactor:
		var named []string
		var parts []string
		for _, t := range r.Terms {
			if t.Named {
				named = append(named, t.Factor.Label())
				parts = append(parts, fmt.Sprintf("%s (%.0f%% of the growth)", t.PerUnit(), 100*t.Share))
			}
		}
		s := fmt.Sprintf("growth follows %s: %s", strings.Join(named, " and "), strings.Join(parts, "; "))
		return s + "; " + strings.Join(rest, "; ") + "."
	case VerdictTime:
		tt := *r.TimeAlone
		return fmt.Sprintf("memory grows with time, not with any factor: %s — look for a timer or a cache with no bound on age; %s.", tt.PerUnit(), strings.Join(rest, "; "))
	case VerdictNone:
		s := fmt.Sprintf("nothing grows: fitted growth %s over %.0f min (floor %.3g MiB)", bytesize.Scaled(r.GrowthBytes, r.GrowthBytes), window, r.MinGrowthMiB)
		if r.Reason != "" {
			s += " — " + r.Reason
		}
		return s + "; " + strings.Join(rest, "; ") + "."
	}
	return "inconclusive: " + r.Reason + "."
}

// WiderThanPlanned is how many times wider the run's intervals are than the
// plan promised, from the noise it assumed and the noise the fit found (sd
// and the AR(1) variance inflation), or for floors from the intervals; 0
// when the plan made no promise.
func WiderThanPlanned(r Result, p Plan) float64 {
	if p.NoiseMiB <= 0 || p.HalfWidthMiBPerHour <= 0 || r.ResidualSDBytes <= 0 {
		return 0
	}
	if r.Teeth != nil {
		// Floors are not the samples the plan's noise describes: compare
		// the intervals themselves, each factor's half-width at its mean
		// rate over the window (a little above its baseline).
		k, span := 0.0, r.WindowEndS-r.WindowStartS
		for _, t := range r.Terms {
			if t.Factor == Time || t.Dropped != "" || t.Delta <= 0 || span <= 0 {
				continue
			}
			hw := (t.Hi - t.Lo) / 2 * t.Delta / span * 3600 / (1 << 20)
			k = max(k, hw/p.HalfWidthMiBPerHour)
		}
		return k
	}
	return r.ResidualSDBytes / (1 << 20) / p.NoiseMiB * math.Sqrt(arInflation(stats.ClampRho(r.ResidualAR1))/arInflation(stats.ClampRho(p.NoiseAR)))
}

type jsonPhase struct {
	Name       string  `json:"name"`
	Raised     Factor  `json:"raised,omitempty"`
	Multiplier float64 `json:"multiplier"`
	DurationS  float64 `json:"duration_s"`
}

type jsonPlan struct {
	WarmupS float64     `json:"warmup_s"`
	TotalS  float64     `json:"total_s"`
	SampleS float64     `json:"sample_interval_s,omitempty"`
	Phases  []jsonPhase `json:"phases"`
	Need    string      `json:"phase_length_reason,omitempty"`
	// What the plan assumed and promised, and how much wider the run's
	// intervals came out.
	NoiseMiB            float64 `json:"noise_mib,omitempty"`
	NoiseAR             float64 `json:"noise_ar1,omitempty"`
	HalfWidthMiBPerHour float64 `json:"half_width_mib_per_hour,omitempty"`
	WiderThanPlanned    float64 `json:"wider_than_planned,omitempty"`
	// The warm-up's noise and how much wider it made the promise, measured
	// when the warm-up ended.
	WarmupNoise            *Noise  `json:"warmup_noise,omitempty"`
	WarmupWiderThanPlanned float64 `json:"warmup_wider_than_planned,omitempty"`
}

type jsonDoc struct {
	Result
	Sentence   string     `json:"sentence"`
	Plan       jsonPlan   `json:"plan"`
	CrossCheck *jsonCross `json:"cross_check,omitempty"`
	// Goroutines is the fit of the goroutine count, without a sentence:
	// its "bytes" per unit are goroutines per unit.
	Goroutines *Result `json:"goroutines,omitempty"`
}

type jsonCross struct {
	Result
	Sentence string `json:"sentence"`
}

// WriteJSON writes r and p to path (attribution.json), all or nothing.
func WriteJSON(path string, r Result, p Plan) error {
	doc := jsonDoc{Result: r, Sentence: r.Sentence(), Plan: jsonPlan{WarmupS: p.Warmup.Seconds(), TotalS: p.Total().Seconds(), SampleS: p.SampleInterval.Seconds(), Need: p.Need,
		NoiseMiB: p.NoiseMiB, NoiseAR: p.NoiseAR, HalfWidthMiBPerHour: p.HalfWidthMiBPerHour, WiderThanPlanned: WiderThanPlanned(r, p)}}
	if c := r.CrossCheck; c != nil {
		doc.CrossCheck = &jsonCross{Result: *c, Sentence: c.Sentence()}
	}
	doc.Goroutines = r.Goroutines
	if p.WarmupNoise != nil {
		doc.Plan.WarmupNoise = p.WarmupNoise
		_, doc.Plan.WarmupWiderThanPlanned = p.NoiseCheck(*p.WarmupNoise)
	}
	for _, ph := range p.Phases {
		doc.Plan.Phases = append(doc.Plan.Phases, jsonPhase{Name: ph.Name, Raised: ph.Raised, Multiplier: ph.Multiplier, DurationS: ph.Duration.Seconds()})
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("attribution json: %w", err)
	}
	return atomicfile.WriteFile(path, append(b, '\n'), 0o644)
}

// ReadPlan reads back the plan an attribution.json was written with, so a
// run can be fitted again (by a newer fit, or on another signal).
func ReadPlan(path string) (Plan, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Plan{}, err
	}
	var doc jsonDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		return Plan{}, fmt.Errorf("%s: %w", path, err)
	}
	jp := doc.Plan
	if len(jp.Phases) == 0 {
		return Plan{}, fmt.Errorf("%s: no plan phases: not an attribution run's result", path)
	}
	sec := func(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
	p := Plan{Warmup: sec(jp.WarmupS), Need: jp.Need, NoiseMiB: jp.NoiseMiB, NoiseAR: jp.NoiseAR,
		HalfWidthMiBPerHour: jp.HalfWidthMiBPerHour, SampleInterval: sec(jp.SampleS), WarmupNoise: jp.WarmupNoise}
	if p.SampleInterval <= 0 {
		p.SampleInterval = DefaultSampleInterval
	}
	for _, ph := range jp.Phases {
		p.Phases = append(p.Phases, Phase{Name: ph.Name, Raised: ph.Raised, Multiplier: ph.Multiplier, Duration: sec(ph.DurationS)})
	}
	return p, nil
}
