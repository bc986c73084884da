package attribute

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"

	"github.com/relaysoak/relaysoak/internal/atomicfile"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// maxPlotPoints thins long runs, as the report's plots do.
const maxPlotPoints = 2000

// Shading of the phases: the factor's own raised phase stands out, other
// raised phases are tinted, baselines are grey.
var (
	shadeOwn   = color.NRGBA{R: 255, G: 140, B: 0, A: 70}
	shadeOther = color.NRGBA{R: 70, G: 130, B: 220, A: 40}
	shadeBase  = color.NRGBA{R: 128, G: 128, B: 128, A: 30}
)

// Plot draws, per factor, memory (MiB) against that factor's cumulative
// count, with the span of count each phase covered shaded, into
// attribution-<factor>.png under outDir, and returns the files written.
// phases are the phases as they happened, in seconds since the start
// (Plan.Spans gives the planned ones); plan is used for its warm-up.
func Plot(obs Observations, result Result, plan Plan, phases []Span, outDir string) ([]string, error) {
	fs, err := obs.validate()
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

func renderFactor(obs Observations, f Factor, r Result, plan Plan, phases []Span) ([]byte, error) {
	cnt := obs.Counts[f]
	p := plot.New()
	title := fmt.Sprintf("memory against %s", f.label())
	if tm, ok := r.Term(f); ok && tm.Dropped == "" {
		title += " — " + perUnit(tm)
	}
	p.Title.Text = title
	p.X.Label.Text = fmt.Sprintf("cumulative %s", f.label())
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
			c, label = shadeOwn, fmt.Sprintf("%s raised", f.label())
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

// pngOf renders p as a PNG.
func pngOf(p *plot.Plot) ([]byte, error) {
	wt, err := p.WriterTo(9*vg.Inch, 5*vg.Inch, "png")
	if err != nil {
		return nil, err
	}
	var b writerBuf
	if _, err := wt.WriteTo(&b); err != nil {
		return nil, err
	}
	return b, nil
}

type writerBuf []byte

func (w *writerBuf) Write(p []byte) (int, error) { *w = append(*w, p...); return len(p), nil }
