package report

import (
	"bytes"
	"fmt"
	"image/color"
	"os"
	"sort"

	"github.com/relaysoak/relaysoak/internal/atomicfile"
	"github.com/relaysoak/relaysoak/soak/verdict"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// maxPlotPoints thins long runs: a week at 10 s is 60,000 points a line.
const maxPlotPoints = 2000

// Plot draws every memory signal of samplesPath (MiB over hours) with the
// warm-up end and the fitted trend of the judged signal, into a PNG at out,
// which is replaced only once the whole image is written.
func Plot(samplesPath, out string, judged verdict.Report) error {
	png, err := renderPlot(samplesPath, judged)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(out, png, 0o644)
}

// pngOf renders p as the PNG every report plot is.
func pngOf(p *plot.Plot) ([]byte, error) {
	wt, err := p.WriterTo(9*vg.Inch, 5*vg.Inch, "png")
	if err != nil {
		return nil, fmt.Errorf("plot: %w", err)
	}
	var b bytes.Buffer
	if _, err := wt.WriteTo(&b); err != nil {
		return nil, fmt.Errorf("plot: %w", err)
	}
	return b.Bytes(), nil
}

func renderPlot(samplesPath string, judged verdict.Report) ([]byte, error) {
	f, err := os.Open(samplesPath)
	if err != nil {
		return nil, fmt.Errorf("plot: %w", err)
	}
	defer f.Close()
	run, err := verdict.ReadSamples(f, samplesPath)
	if err != nil {
		return nil, fmt.Errorf("plot: %w", err)
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("relay memory — %s", judged.Verdict)
	p.X.Label.Text = "hours since start"
	p.Y.Label.Text = "MiB"
	p.Legend.Top = true
	p.Legend.Left = true
	names := make([]string, 0, len(run.Signals))
	for n := range run.Signals {
		names = append(names, n)
	}
	sort.Strings(names)
	maxY := 0.0
	for i, n := range names {
		s := run.Signals[n]
		step := max(1, len(s)/maxPlotPoints)
		pts := make(plotter.XYs, 0, len(s)/step+1)
		for j := 0; j < len(s); j += step {
			y := s[j].Bytes / (1 << 20)
			pts = append(pts, plotter.XY{X: s[j].T / 3600, Y: y})
			maxY = max(maxY, y)
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return nil, fmt.Errorf("plot %s: %w", n, err)
		}
		l.Color = plotutil.Color(i)
		if n == judged.CarriedBy {
			l.Width = vg.Points(2)
		}
		p.Add(l)
		p.Legend.Add(n, l)
	}
	r := judged.Result
	if r.WindowEndS > r.WindowStartS && r.JudgedPoints > 0 {
		// The fitted trend over the judged window, anchored at the end level.
		y := func(t float64) float64 { return r.LevelMiB - r.SlopeMiBPerHour*(r.WindowEndS-t)/3600 }
		fit, _ := plotter.NewLine(plotter.XYs{{X: r.WindowStartS / 3600, Y: y(r.WindowStartS)}, {X: r.WindowEndS / 3600, Y: y(r.WindowEndS)}})
		fit.Color = color.RGBA{R: 200, A: 255}
		fit.Dashes = []vg.Length{vg.Points(6), vg.Points(3)}
		fit.Width = vg.Points(2)
		p.Add(fit)
		p.Legend.Add(fmt.Sprintf("trend %.0f MiB/h", r.SlopeMiBPerHour), fit)
	}
	if r.WarmupEndS > 0 && (r.WarmupState == "" || r.WarmupState == verdict.WarmupEnded) {
		wu, _ := plotter.NewLine(plotter.XYs{{X: r.WarmupEndS / 3600, Y: 0}, {X: r.WarmupEndS / 3600, Y: maxY}})
		wu.Color = color.Gray{Y: 120}
		wu.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
		p.Add(wu)
		p.Legend.Add("warm-up end", wu)
	}
	p.Y.Min = 0
	return pngOf(p)
}
