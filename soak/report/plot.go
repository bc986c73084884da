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

// Plot draws every memory signal of samplesPath (MiB over minutes for a run
// under two hours, else hours), the live heap and the floors judged of it
// when there are any, with the warm-up end and the fitted trend of the
// series that carried the verdict, into a PNG at out, which is replaced
// only once the whole image is written.
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
	unit, per := "hours", 3600.0
	if d := runSpan(run); d < 2*3600 {
		unit, per = "minutes", 60.0
	}
	p.X.Label.Text = unit + " since start"
	p.Y.Label.Text = "MiB"
	p.Legend.Top = true
	p.Legend.Left = true
	entries := 0
	legend := func(name string, th ...plot.Thumbnailer) {
		p.Legend.Add(name, th...)
		entries++
	}
	names := make([]string, 0, len(run.Signals))
	for n := range run.Signals {
		names = append(names, n)
	}
	sort.Strings(names)
	maxY := 0.0
	xy := func(s verdict.Series) plotter.XYs {
		step := max(1, len(s)/maxPlotPoints)
		pts := make(plotter.XYs, 0, len(s)/step+1)
		for j := 0; j < len(s); j += step {
			y := s[j].Bytes / (1 << 20)
			pts = append(pts, plotter.XY{X: s[j].T / per, Y: y})
			maxY = max(maxY, y)
		}
		return pts
	}
	for i, n := range names {
		l, err := plotter.NewLine(xy(run.Signals[n]))
		if err != nil {
			return nil, fmt.Errorf("plot %s: %w", n, err)
		}
		l.Color = plotutil.Color(i)
		if n == judged.CarriedBy || judged.Kept != nil && n == judged.Kept.OSView {
			l.Width = vg.Points(2)
		}
		p.Add(l)
		legend(n, l)
	}
	if k := judged.Kept; k != nil && len(run.Kept) > 1 {
		l, err := plotter.NewLine(xy(run.Kept))
		if err != nil {
			return nil, fmt.Errorf("plot %s: %w", k.Signal, err)
		}
		l.Color = color.Gray{Y: 150}
		p.Add(l)
		legend(k.Signal, l)
		if floors := k.Of(run.Kept); len(floors) > 0 {
			sc, err := plotter.NewScatter(xy(floors))
			if err != nil {
				return nil, fmt.Errorf("plot floors: %w", err)
			}
			sc.Color = color.Black
			sc.Radius = vg.Points(1.5)
			p.Add(sc)
			legend(k.Signal+" floors (what it keeps)", sc)
		}
	}
	r := judged.Result
	if r.WindowEndS > r.WindowStartS && r.JudgedPoints > 0 {
		// The fitted trend over the judged window, anchored at the end level.
		y := func(t float64) float64 { return r.LevelMiB - r.SlopeMiBPerHour*(r.WindowEndS-t)/3600 }
		fit, _ := plotter.NewLine(plotter.XYs{{X: r.WindowStartS / per, Y: y(r.WindowStartS)}, {X: r.WindowEndS / per, Y: y(r.WindowEndS)}})
		fit.Color = color.RGBA{R: 200, A: 255}
		fit.Dashes = []vg.Length{vg.Points(6), vg.Points(3)}
		fit.Width = vg.Points(2)
		p.Add(fit)
		legend(fmt.Sprintf("trend %.0f MiB/h", r.SlopeMiBPerHour), fit)
	}
	if r.WarmupEndS > 0 && (r.WarmupState == "" || r.WarmupState == verdict.WarmupEnded) {
		wu, _ := plotter.NewLine(plotter.XYs{{X: r.WarmupEndS / per, Y: 0}, {X: r.WarmupEndS / per, Y: maxY}})
		wu.Color = color.Gray{Y: 120}
		wu.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
		p.Add(wu)
		legend("warm-up end", wu)
	}
	// Headroom above the data for the legend, a line of it per entry, so
	// that it covers none of the data.
	p.Y.Max = maxY * (1 + 0.07*float64(entries))
	p.Y.Min = 0
	return pngOf(p)
}

// runSpan is the seconds the run's signals cover.
func runSpan(run verdict.Run) float64 {
	var d float64
	for _, s := range run.Signals {
		if len(s) > 1 {
			d = max(d, s[len(s)-1].T-s[0].T)
		}
	}
	return d
}
