package report

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/relaysoak/relaysoak/internal/atomicfile"
	"github.com/relaysoak/relaysoak/internal/bytesize"
	"github.com/relaysoak/relaysoak/soak/attribute"
)

// AttributionTitle is the attribution section's title.
const AttributionTitle = "Leak attribution"

// Attribution is what an attribution run found, for its section.
type Attribution struct {
	Signal string // the memory signal fitted
	File   string // where the result is kept as JSON, by base name
	Result attribute.Result
	Plan   attribute.Plan
	// FitFrom is where the fit starts when that is past the plan's
	// warm-up (the relay settled late); 0 otherwise.
	FitFrom time.Duration
	// Plots are the per-factor plots' files, or PlotErr why there are none.
	Plots   []string
	PlotErr string
	// Goroutines is the relay's goroutine count regressed on the same
	// factors, when the samples hold it: its "bytes" are goroutines.
	Goroutines *attribute.Result `json:",omitempty"`
}

// AttributionSection is the report's attribution section: the verdict and
// its sentence, a table of the terms, how the fit was made, the plan, and
// the plots.
func AttributionSection(a Attribution) Section {
	r, p := a.Result, a.Plan
	var b strings.Builder
	from := ""
	if a.FitFrom > p.Warmup {
		from = fmt.Sprintf(" The fit starts at %s, past the plan's %s warm-up: the relay settled late.", a.FitFrom, p.Warmup)
	}
	fmt.Fprintf(&b, "Memory (%s) regressed on what the rig did, per factor; %s holds it all.%s\n\n", a.Signal, a.File, from)
	fmt.Fprintf(&b, "**%s** — %s\n\n", r.Verdict, r.Sentence())
	fmt.Fprintf(&b, "| term | retained per unit | %.0f%% interval | growth explained | share | significant |\n|---|---|---|---|---|---|\n", 100*r.Level)
	for _, t := range r.Terms {
		if t.Dropped != "" {
			fmt.Fprintf(&b, "| %s | — | — | — | — | dropped: %s |\n", t.Factor.Label(), t.Dropped)
			continue
		}
		scale := math.Max(math.Abs(t.BytesPerUnit), math.Max(math.Abs(t.Lo), math.Abs(t.Hi))/2)
		unit := "/" + t.Factor.Unit()
		est, lo, hi := t.BytesPerUnit, t.Lo, t.Hi
		if t.Factor == attribute.Time {
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
		fmt.Fprintf(&b, "| %s | %s %s%s | %s to %s | %s | %.0f%% | %s%s |\n", t.Factor.Label(), bytesize.Figures(est/v), u, unit, bytesize.Figures(lo/v), bytesize.Figures(hi/v),
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
	if k := attribute.WiderThanPlanned(r, p); k >= 1.5 {
		fmt.Fprintf(&b, "\n**Noisier than planned.** The plan assumed %.3g MiB of noise (lag-1 autocorrelation %.2f) and promised every factor ±%.3g MiB/hour at its baseline (95%%); memory's residuals had %s (%.2f), so these intervals are about %.1f× wider. A plan for %.0f MiB of noise chooses longer phases, or says they do not fit its cap.\n",
			p.NoiseMiB, p.NoiseAR, p.HalfWidthMiBPerHour, bytesize.Scaled(r.ResidualSDBytes, r.ResidualSDBytes), r.ResidualAR1, k, math.Ceil(p.NoiseMiB*k))
	}
	if p.WarmupNoise != nil {
		text, _ := p.NoiseCheck(*p.WarmupNoise)
		fmt.Fprintf(&b, "\n**Warm-up check.** %s.\n", capitalize(text))
	}
	if c := r.CrossCheck; c != nil {
		fmt.Fprintf(&b, "\n**Cross-check on %s**, which also holds memory outside the heap (residual sd %s): **%s** — %s\n",
			c.Signal, bytesize.Scaled(c.ResidualSDBytes, c.ResidualSDBytes), c.Verdict, c.Sentence())
	}
	if g := a.Goroutines; g != nil {
		b.WriteString(goroutineAttribution(*g))
	}
	b.WriteString("\n```\n" + p.Text() + "```\n")
	if a.PlotErr != "" {
		b.WriteString("\nNo plots: " + a.PlotErr + "\n")
	} else {
		for _, f := range a.Plots {
			fmt.Fprintf(&b, "\n![%s](%s)\n", filepath.Base(f), filepath.Base(f))
		}
	}
	return Section{Title: AttributionTitle, Markdown: b.String()}
}

// goroutineAttribution is the goroutine count's regression in the
// attribution section: its verdict in goroutines per event, and a row per
// term.
func goroutineAttribution(g attribute.Result) string {
	var b strings.Builder
	per := func(t attribute.Term) string {
		const n = 1 << 20 // the fit's bytes per goroutine
		if t.Factor == attribute.Time {
			return fmt.Sprintf("%+.0f goroutines an hour (%.0f to %.0f)", t.BytesPerUnit*3600/n, t.Lo*3600/n, t.Hi*3600/n)
		}
		return fmt.Sprintf("%+.2f goroutines per %s (%.2f to %.2f)", t.BytesPerUnit/n, t.Factor.Unit(), t.Lo/n, t.Hi/n)
	}
	var said string
	switch g.Verdict {
	case attribute.VerdictFactor:
		var named []string
		for _, t := range g.Terms {
			if t.Named {
				named = append(named, per(t))
			}
		}
		said = "they follow " + strings.Join(named, " and ")
	case attribute.VerdictTime:
		said = "they grow with time, not with any factor"
		if g.TimeAlone != nil {
			said += ": " + per(*g.TimeAlone)
		}
	case attribute.VerdictNone:
		said = fmt.Sprintf("they do not grow (%+.0f over %.0f min)", g.GrowthBytes/(1<<20), (g.WindowEndS-g.WindowStartS)/60)
	default:
		said = "inconclusive: " + g.Reason
	}
	fmt.Fprintf(&b, "\n**Goroutines**, regressed on the same factors (%d samples, residual sd %.1f): **%s** — %s.\n\n", g.Points, g.ResidualSDBytes/(1<<20), g.Verdict, said)
	if len(g.Terms) == 0 {
		return b.String()
	}
	fmt.Fprintf(&b, "| term | goroutines per unit (%.0f%% interval) | significant |\n|---|---|---|\n", 100*g.Level)
	for _, t := range g.Terms {
		if t.Dropped != "" {
			fmt.Fprintf(&b, "| %s | — | dropped: %s |\n", t.Factor.Label(), t.Dropped)
			continue
		}
		sig := "no"
		if t.Significant {
			sig = "yes"
		}
		if t.Named {
			sig += " (named)"
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", t.Factor.Label(), per(t), sig)
	}
	return b.String()
}

// Shading of an attribution plot's phases: the factor's own raised phase
// stands out, other raised phases are tinted, baselines are grey.
var (
	shadeOwn   = color.NRGBA{R: 255, G: 140, B: 0, A: 70}
	shadeOther = color.NRGBA{R: 70, G: 130, B: 220, A: 40}
	shadeBase  = color.NRGBA{R: 128, G: 128, B: 128, A: 30}
)

// AttributionPlots draws, per factor, memory (MiB) against that factor's
// cumulative count, with the span of count each phase covered shaded, into
// attribution-<factor>.png under outDir, and returns the files written.
// phases are the phases as they happened, in seconds since the start
// (Plan.Spans gives the planned ones); plan is used for its warm-up.
func AttributionPlots(obs attribute.Observations, result attribute.Result, plan attribute.Plan, phases []attribute.Span, outDir string) ([]string, error) {
	fs, err := obs.Factors()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, fmt.Errorf("attribution plot: %w", err)
	}
	var out []string
	for _, f := range fs {
		png, err := renderFactor(obs, f, result, plan, phases)
		if err != nil {
			return out, fmt.Errorf("attribution plot %s: %w", f, err)
		}
		path := filepath.Join(outDir, fmt.Sprintf("attribution-%s.png", f))
		if err := atomicfile.WriteFile(path, png, 0o644); err != nil {
			return out, err
		}
		out = append(out, path)
	}
	return out, nil
}

func renderFactor(obs attribute.Observations, f attribute.Factor, r attribute.Result, plan attribute.Plan, phases []attribute.Span) ([]byte, error) {
	cnt := obs.Counts[f]
	p := plot.New()
	title := fmt.Sprintf("memory against %s", f.Label())
	if tm, ok := r.Term(f); ok && tm.Dropped == "" {
		title += " — " + tm.PerUnit()
	}
	p.Title.Text = title
	p.X.Label.Text = fmt.Sprintf("cumulative %s", f.Label())
	p.Y.Label.Text = "MiB"
	p.Legend.Top = true
	p.Legend.Left = true
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, m := range obs.Memory {
		lo, hi = min(lo, m/(1<<20)), max(hi, m/(1<<20))
	}
	if len(obs.Memory) == 0 {
		lo, hi = 0, 1
	}
	pad := math.Max((hi-lo)*0.05, 0.5)
	lo, hi = lo-pad, hi+pad
	legend := map[string]bool{}
	for _, sp := range phases {
		x0, x1, ok := countRange(obs.T, cnt, sp.StartS, sp.EndS)
		if !ok {
			continue
		}
		c, label := shadeBase, "baseline"
		switch {
		case sp.Raised == f:
			c, label = shadeOwn, fmt.Sprintf("%s raised", f.Label())
		case sp.Raised != "":
			c, label = shadeOther, "another factor raised"
		}
		poly, err := plotter.NewPolygon(plotter.XYs{{X: x0, Y: lo}, {X: x1, Y: lo}, {X: x1, Y: hi}, {X: x0, Y: hi}})
		if err != nil {
			return nil, err
		}
		poly.Color = c
		poly.LineStyle.Width = 0
		p.Add(poly)
		if !legend[label] {
			legend[label] = true
			p.Legend.Add(label, poly)
		}
	}
	if wu := plan.Warmup.Seconds(); wu > 0 {
		if x0, x1, ok := countRange(obs.T, cnt, math.Inf(-1), wu); ok {
			poly, _ := plotter.NewPolygon(plotter.XYs{{X: x0, Y: lo}, {X: x1, Y: lo}, {X: x1, Y: hi}, {X: x0, Y: hi}})
			poly.Color = color.NRGBA{A: 15}
			poly.LineStyle.Width = 0
			p.Add(poly)
			p.Legend.Add("warm-up (not judged)", poly)
		}
	}
	step := max(1, len(cnt)/maxPlotPoints)
	pts := make(plotter.XYs, 0, len(cnt)/step+1)
	for i := 0; i < len(cnt); i += step {
		pts = append(pts, plotter.XY{X: cnt[i], Y: obs.Memory[i] / (1 << 20)})
	}
	if err := addDots(p, pts, 1.2, color.RGBA{R: 30, G: 30, B: 30, A: 255}, "memory"); err != nil {
		return nil, err
	}
	if th := r.Teeth; th != nil {
		// What was fitted: each window's floor, after the warm-up.
		wu := plan.Warmup.Seconds()
		fl := obs.Floors(wu, th.WindowS)
		var fpts plotter.XYs
		for i, t := range fl.T {
			if t >= wu {
				fpts = append(fpts, plotter.XY{X: fl.Counts[f][i], Y: fl.Memory[i] / (1 << 20)})
			}
		}
		if len(fpts) > 0 {
			if err := addDots(p, fpts, 3, color.RGBA{R: 200, G: 30, B: 30, A: 255}, fmt.Sprintf("floors (lowest of each %.0f s): fitted", th.WindowS)); err != nil {
				return nil, err
			}
		}
	}
	p.Y.Min, p.Y.Max = lo, hi
	return pngOf(p)
}

// addDots adds pts to p as dots of radius points, in the legend as label.
func addDots(p *plot.Plot, pts plotter.XYs, radius float64, c color.Color, label string) error {
	sc, err := plotter.NewScatter(pts)
	if err != nil {
		return err
	}
	sc.GlyphStyle.Shape = draw.CircleGlyph{}
	sc.GlyphStyle.Radius = vg.Points(radius)
	sc.GlyphStyle.Color = c
	p.Add(sc)
	p.Legend.Add(label, sc)
	return nil
}

// countRange is the span of cnt over samples with from ≤ t ≤ to.
func countRange(t, cnt []float64, from, to float64) (lo, hi float64, ok bool) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for i, ts := range t {
		if ts >= from && ts <= to {
			lo, hi, ok = min(lo, cnt[i]), max(hi, cnt[i]), true
		}
	}
	return lo, hi, ok
}
