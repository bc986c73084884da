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

// perUnit is "1.1 KiB retained per resolution (CI 0.9–1.3)".
func perUnit(t Term) string {
	scale := math.Max(math.Abs(t.BytesPerUnit), math.Max(math.Abs(t.Lo), math.Abs(t.Hi))/2)
	v, unit := bytesize.Unit(scale)
	if t.Factor == Time {
		v, unit = bytesize.Unit(math.Max(math.Abs(t.BytesPerHour), math.Max(math.Abs(t.Lo), math.Abs(t.Hi))*1800))
		return fmt.Sprintf("%s %s/hour (CI %s to %s)", bytesize.Figures(t.BytesPerHour/v), unit, bytesize.Figures(t.Lo*3600/v), bytesize.Figures(t.Hi*3600/v))
	}
	return fmt.Sprintf("%s %s retained per %s (CI %s to %s)", bytesize.Figures(t.BytesPerUnit/v), unit, t.Factor.unit(), bytesize.Figures(t.Lo/v), bytesize.Figures(t.Hi/v))
}

// explainsNone is "frames explain none (−2 to +3 B/frame)".
func explainsNone(t Term) string {
	if t.Dropped != "" {
		return fmt.Sprintf("%s not judged (%s)", t.Factor.label(), t.Dropped)
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
	return fmt.Sprintf("%s %s (%s to %s %s/%s)", t.Factor.label(), what, bytesize.Figures(t.Lo/v), bytesize.Figures(t.Hi/v), unit, t.Factor.unit())
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
				named = append(named, t.Factor.label())
				parts = append(parts, fmt.Sprintf("%s (%.0f%% of the growth)", perUnit(t), 100*t.Share))
			}
		}
		s := fmt.Sprintf("growth follows %s: %s", strings.Join(named, " and "), strings.Join(parts, "; "))
		return s + "; " + strings.Join(rest, "; ") + "."
	case VerdictTime:
		tt := *r.TimeAlone
		return fmt.Sprintf("memory grows with time, not with any factor: %s — look for a timer or a cache with no bound on age; %s.", perUnit(tt), strings.Join(rest, "; "))
	case VerdictNone:
		s := fmt.Sprintf("nothing grows: fitted growth %s over %.0f min (floor %.3g MiB)", bytesize.Scaled(r.GrowthBytes, r.GrowthBytes), window, r.MinGrowthMiB)
		if r.Reason != "" {
			s += " — " + r.Reason
		}
		return s + "; " + strings.Join(rest, "; ") + "."
	}
	return "inconclusive: " + r.Reason + "."
}

// Markdown is the report's attribution section.
func Markdown(r Result, p Plan) string {
	var b strings.Builder
	b.WriteString("## Leak attribution\n\n")
	fmt.Fprintf(&b, "**%s** — %s\n\n", r.Verdict, r.Sentence())
	fmt.Fprintf(&b, "| term | retained per unit | %.0f%% interval | growth explained | share | significant |\n|---|---|---|---|---|---|\n", 100*r.Level)
	for _, t := range r.Terms {
		if t.Dropped != "" {
			fmt.Fprintf(&b, "| %s | — | — | — | — | dropped: %s |\n", t.Factor.label(), t.Dropped)
			continue
		}
		scale := math.Max(math.Abs(t.BytesPerUnit), math.Max(math.Abs(t.Lo), math.Abs(t.Hi))/2)
		unit := "/" + t.Factor.unit()
		est, lo, hi := t.BytesPerUnit, t.Lo, t.Hi
		if t.Factor == Time {
			est, lo, hi, scale, unit = est*3600, lo*3600, hi*3600, scale*3600, "/hour"
		}
		v, u := bytesize.Unit(scale)
		sig := "no"
		if t.Significant {
			sig = "yes"
		}
		if t.Named {
			sig += " (named)"
		}
		note := ""
		if t.Note != "" {
			note = " — " + t.Note
		}
		fmt.Fprintf(&b, "| %s | %s %s%s | %s to %s | %s | %.0f%% | %s%s |\n", t.Factor.label(), bytesize.Figures(est/v), u, unit, bytesize.Figures(lo/v), bytesize.Figures(hi/v),
			bytesize.Scaled(t.Growth, t.Growth), 100*t.Share, sig, note)
	}
	pts := "samples"
	if r.Teeth != nil {
		pts = "floors"
	}
	fmt.Fprintf(&b, "\n%d %s from %.0f to %.0f min; residual sd %s, lag-1 autocorrelation %.2f, Newey–West lag %d; %d %s down-weighted.\n",
		r.Points, pts, r.WindowStartS/60, r.WindowEndS/60, bytesize.Scaled(r.ResidualSDBytes, r.ResidualSDBytes), r.ResidualAR1, r.Lags, r.Downweighted, pts)
	if th := r.Teeth; th != nil {
		fmt.Fprintf(&b, "\nMemory is a sawtooth here (%d drops of %.3g MiB, one every %.0f s): what is kept shows in the floors, so the fit took the lowest sample of each %.0f s.\n",
			th.Drops, th.DepthMiB, th.PeriodS, th.WindowS)
	}
	if k := WiderThanPlanned(r, p); k >= 1.5 {
		fmt.Fprintf(&b, "\n**Noisier than planned.** The plan assumed %.3g MiB of noise (lag-1 autocorrelation %.2f) and promised every factor ±%.3g MiB/hour at its baseline (95%%); memory's residuals had %s (%.2f), so these intervals are about %.1f× wider. A plan for %.0f MiB of noise chooses longer phases, or says they do not fit its cap.\n",
			p.NoiseMiB, p.NoiseAR, p.HalfWidthMiBPerHour, bytesize.Scaled(r.ResidualSDBytes, r.ResidualSDBytes), r.ResidualAR1, k, math.Ceil(p.NoiseMiB*k))
	}
	if p.WarmupNoise != nil {
		text, _ := p.NoiseCheck(*p.WarmupNoise)
		fmt.Fprintf(&b, "\n**Warm-up check.** %s%s.\n", strings.ToUpper(text[:1]), text[1:])
	}
	if c := r.CrossCheck; c != nil {
		fmt.Fprintf(&b, "\n**Cross-check on %s**, which also holds memory outside the heap (residual sd %s): **%s** — %s\n",
			c.Signal, bytesize.Scaled(c.ResidualSDBytes, c.ResidualSDBytes), c.Verdict, c.Sentence())
	}
	b.WriteString("\n```\n" + p.Text() + "```\n")
	return b.String()
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
