package report

import (
	"fmt"
	"math"
	"strings"

	"github.com/relaysoak/relaysoak/soak/rundir"
	"github.com/relaysoak/relaysoak/soak/verdict"
)

// Side is one run's numbers in a Comparison.
type Side struct {
	RunID     string          `json:"run_id"`
	Relay     string          `json:"relay,omitempty"`
	Verdict   verdict.Verdict `json:"verdict"`
	Reason    string          `json:"reason,omitempty"`
	CarriedBy string          `json:"carried_by,omitempty"`
	// Judged says the run has a fitted slope (an INCONCLUSIVE run too short
	// to fit has none).
	Judged          bool       `json:"judged"`
	SlopeMiBPerHour float64    `json:"slope_mib_per_hour"`
	SlopeCI         [2]float64 `json:"slope_ci_mib_per_hour"`
	CILevel         float64    `json:"ci_level"`
	LateSlope       float64    `json:"late_slope_mib_per_hour"`
	GateMiBPerHour  float64    `json:"gate_mib_per_hour"`
	PlateauMiB      *float64   `json:"plateau_mib,omitempty"`
	LevelMiB        float64    `json:"level_mib"`
	Hosts           int        `json:"hosts,omitempty"`
	Rate            float64    `json:"rate,omitempty"`
	DurationS       float64    `json:"duration_s"`
	Delivery        float64    `json:"delivery"`
	LagP50Ms        float64    `json:"lag_p50_ms,omitempty"`
	LagP99Ms        float64    `json:"lag_p99_ms,omitempty"`
	Restarts        int        `json:"restarts,omitempty"`
}

func sideOf(s Summary) Side {
	r := s.Judged
	return Side{
		RunID: s.RunID, Relay: s.Relay, Verdict: r.Verdict, Reason: r.Reason, CarriedBy: r.CarriedBy,
		Judged: r.JudgedPoints > 0 && !r.Provisional, SlopeMiBPerHour: r.SlopeMiBPerHour, SlopeCI: r.SlopeCIMiBPerHour, CILevel: r.CILevel,
		LateSlope: r.LateSlopeMiBPerHour, GateMiBPerHour: r.GateMiBPerHour, PlateauMiB: r.PlateauMiB, LevelMiB: r.LevelMiB,
		Hosts: s.Hosts, Rate: s.Rate, DurationS: s.Duration.Seconds(), Delivery: s.Delivery,
		LagP50Ms: s.LagP50Ms, LagP99Ms: s.LagP99Ms, Restarts: s.Restarts,
	}
}

// Comparison sets two runs side by side, A the baseline and B the run
// judged against it, and judges the difference of their memory slopes.
type Comparison struct {
	A Side `json:"a"`
	B Side `json:"b"`
	// Comparable says both runs have a slope; the rest is zero otherwise.
	Comparable bool `json:"comparable"`
	// DiffMiBPerHour is B's slope minus A's; DiffCI its interval, at about
	// the runs' own CI level (CILevel).
	DiffMiBPerHour float64    `json:"diff_mib_per_hour"`
	DiffCI         [2]float64 `json:"diff_ci_mib_per_hour"`
	CILevel        float64    `json:"ci_level"`
	// Significant: the interval excludes zero. Material: also at least the
	// effect-size gate (the larger of the two runs'), the size below which
	// the verdict calls growth harmless.
	Significant bool    `json:"significant"`
	Material    bool    `json:"material"`
	Gate        float64 `json:"gate_mib_per_hour"`
	// Sentence says it in one line; Caveats say what makes the runs unlike.
	Sentence string   `json:"sentence"`
	Caveats  []string `json:"caveats,omitempty"`
}

// Compare judges run b against the baseline a.
//
// The difference's interval combines the two slope intervals by the method
// of variance estimates recovery (Zou & Donner 2008, "Construction of
// confidence limits about effect measures"): each side's distance from its
// estimate to the relevant bound stands for its error in that direction, so
// Sen's asymmetric intervals are used as they are, and the runs, being
// separate processes, are independent:
//
//	lower = d − √((b − b_lo)² + (a_hi − a)²)
//	upper = d + √((b_hi − b)² + (a − a_lo)²)
func Compare(a, b Summary) Comparison {
	c := Comparison{A: sideOf(a), B: sideOf(b)}
	c.Gate = math.Max(c.A.GateMiBPerHour, c.B.GateMiBPerHour)
	if c.Gate == 0 {
		c.Gate = 10 // the verdict's default gate, for summaries that lack one
	}
	c.Caveats = caveats(c.A, c.B)
	if !c.A.Judged || !c.B.Judged {
		var which []string
		for _, s := range []struct {
			name string
			Side
		}{{"A", c.A}, {"B", c.B}} {
			if !s.Judged {
				which = append(which, fmt.Sprintf("%s (%s) has no fitted slope (%s: %s)", s.name, s.RunID, s.Verdict, s.Reason))
			}
		}
		c.Sentence = "no comparison of slopes: " + strings.Join(which, "; ")
		return c
	}
	c.Comparable = true
	sa, sb := c.A.SlopeMiBPerHour, c.B.SlopeMiBPerHour
	d := sb - sa
	lo := d - math.Hypot(sb-c.B.SlopeCI[0], c.A.SlopeCI[1]-sa)
	hi := d + math.Hypot(c.B.SlopeCI[1]-sb, sa-c.A.SlopeCI[0])
	c.DiffMiBPerHour, c.DiffCI = d, [2]float64{lo, hi}
	c.CILevel = math.Min(c.A.CILevel, c.B.CILevel)
	c.Significant = lo > 0 || hi < 0
	c.Material = c.Significant && math.Abs(d) >= c.Gate
	half := (hi - lo) / 2
	more := "more"
	if d < 0 {
		more = "less"
	}
	// Both judged on what they keep (their live heaps' floors): say so.
	grows := "grows"
	if floors := verdict.FloorsSignal(rundir.SignalLiveHeap); c.A.CarriedBy == floors && c.B.CarriedBy == floors {
		grows = "keeps"
	}
	switch {
	case c.Material:
		c.Sentence = fmt.Sprintf("B (%s) %s %s ± %s MiB/h %s than A (%s)", c.B.RunID, grows, num(math.Abs(d)), num(half), more, c.A.RunID)
	case c.Significant:
		c.Sentence = fmt.Sprintf("B (%s) %s %s ± %s MiB/h %s than A (%s), under the %s MiB/h effect-size gate", c.B.RunID, grows, num(math.Abs(d)), num(half), more, c.A.RunID, num(c.Gate))
	default:
		c.Sentence = fmt.Sprintf("no significant difference between B (%s) and A (%s): B − A = %s ± %s MiB/h", c.B.RunID, c.A.RunID, signedNum(d), num(half))
	}
	return c
}

// caveats name what differs between the runs besides the build.
func caveats(a, b Side) []string {
	var out []string
	if (a.Hosts != 0 || b.Hosts != 0) && (a.Hosts != b.Hosts || a.Rate != b.Rate) {
		out = append(out, fmt.Sprintf("the load differs (%s against %s): part of the difference may be the load's", load(a), load(b)))
	}
	if a.CarriedBy != "" && b.CarriedBy != "" && a.CarriedBy != b.CarriedBy {
		out = append(out, fmt.Sprintf("the slopes are of different signals (%s against %s)", a.CarriedBy, b.CarriedBy))
	}
	if a.CILevel != 0 && b.CILevel != 0 && a.CILevel != b.CILevel {
		out = append(out, fmt.Sprintf("the runs' intervals are at different levels (%.0f%% and %.0f%%); the difference's is taken at the lower", a.CILevel*100, b.CILevel*100))
	}
	if a.Verdict == verdict.Crashed || b.Verdict == verdict.Crashed {
		out = append(out, "a run crashed: its slope covers only the time before")
	}
	return out
}

// Markdown renders the comparison as a report.md section body (no heading).
func (c Comparison) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "**%s.**\n\n", capitalize(c.Sentence))
	fmt.Fprintf(&b, "| | A: %s (baseline) | B: %s |\n|---|---|---|\n", c.A.RunID, c.B.RunID)
	row := func(k string, f func(s Side) string) { fmt.Fprintf(&b, "| %s | %s | %s |\n", k, f(c.A), f(c.B)) }
	row("verdict", func(s Side) string { return string(s.Verdict) })
	row("relay", func(s Side) string { return s.Relay })
	row("load", load)
	row("slope", func(s Side) string {
		if !s.Judged {
			return "—"
		}
		return fmt.Sprintf("%s MiB/h (%.0f%% CI %s to %s), %s", num(s.SlopeMiBPerHour), s.CILevel*100, num(s.SlopeCI[0]), num(s.SlopeCI[1]), s.CarriedBy)
	})
	row("late-window slope", func(s Side) string { return num(s.LateSlope) + " MiB/h" })
	row("plateau", func(s Side) string {
		if s.PlateauMiB == nil {
			return "—"
		}
		return fmt.Sprintf("%.0f MiB", *s.PlateauMiB)
	})
	row("level at the end", func(s Side) string { return fmt.Sprintf("%.0f MiB", s.LevelMiB) })
	row("delivery", func(s Side) string { return fmt.Sprintf("%.2f%%", s.Delivery*100) })
	row("lag p50 / p99", func(s Side) string {
		if s.LagP99Ms == 0 {
			return "—"
		}
		return fmt.Sprintf("%.0f / %.0f ms", s.LagP50Ms, s.LagP99Ms)
	})
	row("restarts", func(s Side) string { return fmt.Sprint(s.Restarts) })
	if c.Comparable {
		fmt.Fprintf(&b, "\nB − A: %s MiB/h (%.0f%% CI %s to %s); effect-size gate %s MiB/h.\n",
			signedNum(c.DiffMiBPerHour), c.CILevel*100, num(c.DiffCI[0]), num(c.DiffCI[1]), num(c.Gate))
	}
	if len(c.Caveats) > 0 {
		b.WriteString("\n")
		for _, cv := range c.Caveats {
			fmt.Fprintf(&b, "- %s\n", cv)
		}
	}
	return b.String()
}

func load(s Side) string {
	out := ""
	if s.Hosts > 0 {
		out = fmt.Sprintf("%d hosts × %.0f frames/s, ", s.Hosts, s.Rate)
	}
	return out + fmt.Sprintf("%.0f min", s.DurationS/60)
}

// num rounds to what a slope's interval supports: whole MiB/h from 10 up,
// one decimal below.
func num(x float64) string {
	if math.Abs(x) >= 10 {
		return fmt.Sprintf("%.0f", x)
	}
	return fmt.Sprintf("%.1f", x)
}

func signedNum(x float64) string {
	if x > 0 {
		return "+" + num(x)
	}
	return num(x)
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
