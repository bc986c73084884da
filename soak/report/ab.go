package report

import (
	"encoding/xml"
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"strings"

	"github.com/relaysoak/relaysoak/internal/atomicfile"
	"github.com/relaysoak/relaysoak/soak/rundir"
	"github.com/relaysoak/relaysoak/soak/verdict"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// AB is an A/B soak: two builds under the same traffic in one run, each
// with its own complete run directory (ADir, BDir, relative to the run's),
// and the difference judged by Compare.
type AB struct {
	RunID      string     `json:"run_id"`
	Comparison Comparison `json:"comparison"`
	// Verdict of the comparison: LEAK when B grows materially more than A,
	// CRASHED when either died, INCONCLUSIVE when either has no slope,
	// else PASS (B is no worse than A).
	Verdict verdict.Verdict `json:"verdict"`
	// Fairness warns when the machine, not the build, may have made the
	// difference (CPU saturated, delivery or lag diverging).
	Fairness   []string `json:"fairness,omitempty"`
	A          Summary  `json:"a"`
	B          Summary  `json:"b"`
	ADir, BDir string   `json:"-"`
}

// NewAB compares the two arms of an A/B soak.
func NewAB(runID string, a, b Summary, aDir, bDir string, fairness []string) AB {
	ab := AB{RunID: runID, Comparison: Compare(a, b), A: a, B: b, ADir: aDir, BDir: bDir, Fairness: fairness}
	c := ab.Comparison
	switch {
	case a.Judged.Verdict == verdict.Crashed || b.Judged.Verdict == verdict.Crashed:
		ab.Verdict = verdict.Crashed
	case !c.Comparable:
		ab.Verdict = verdict.Inconclusive
	case c.Material && c.DiffMiBPerHour > 0:
		ab.Verdict = verdict.Leak
	default:
		ab.Verdict = verdict.Pass
	}
	return ab
}

// HeadlineAB is the sentence users want: how B's growth differs from A's.
func HeadlineAB(ab AB) string {
	h := fmt.Sprintf("%s: %s (A %s, B %s)", ab.Verdict, ab.Comparison.Sentence, ab.A.Judged.Verdict, ab.B.Judged.Verdict)
	if len(ab.Fairness) > 0 {
		h += " — warning: the machine may have made part of the difference"
	}
	return h
}

// WriteAB renders the comparison into dir: report.md, one plot with both
// builds' memory, verdict.json and junit.xml. Each arm's own files are
// already in its directory.
func WriteAB(dir string, ab AB) error {
	var notes []string
	png, err := renderPlotAB(dir, ab)
	if err != nil {
		notes = append(notes, "no plot: "+err.Error())
	}
	j, err := JUnitAB(ab)
	if err != nil {
		return err
	}
	return writeRunFiles(dir, ab, MarkdownAB(ab, notes), j, png)
}

// MarkdownAB is the A/B report.md: the difference first, then each build.
func MarkdownAB(ab AB, notes []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# relaysoak A/B %s — %s\n\n", ab.RunID, ab.Verdict)
	fmt.Fprintf(&b, "**%s**\n\n", HeadlineAB(ab))
	if len(ab.Fairness) > 0 {
		b.WriteString("**Fairness:**\n\n")
		for _, f := range ab.Fairness {
			fmt.Fprintf(&b, "- %s\n", f)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "![memory of A and B over time](%s)\n\n", rundir.Plot)
	fmt.Fprintf(&b, "## B against A\n\n%s", ab.Comparison.Markdown())
	for _, arm := range []struct {
		name, dir string
		s         Summary
	}{{"A", ab.ADir, ab.A}, {"B", ab.BDir, ab.B}} {
		fmt.Fprintf(&b, "\n## %s: %s\n\n**%s**\n\n", arm.name, arm.s.Relay, Headline(arm.s))
		fmt.Fprintf(&b, "Its own report, samples and relay log: [%s/%s](%s/%s).\n", arm.dir, rundir.Report, arm.dir, rundir.Report)
	}
	// One fleet served both: its counters are the pair's, not either's.
	b.WriteString("\nBoth relays were fed by one fleet: frames sent and the DID documents its PLC served count for the pair (each relay's own delivery and lag are its own).\n")
	if len(notes) > 0 {
		b.WriteString("\n## Notes\n\n")
		for _, n := range notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	return b.String()
}

// JUnitAB: one case for the difference (LEAK, CRASHED fail; INCONCLUSIVE
// is skipped), one for each build's own verdict, for information only —
// the comparison, not either build's growth, is what an A/B run tests.
func JUnitAB(ab AB) ([]byte, error) {
	secs := max(ab.A.Duration.Seconds(), ab.B.Duration.Seconds())
	suite := junitSuite{Name: "relaysoak A/B " + ab.RunID, Time: secs}
	c := junitCase{Name: "B against A", Classname: "relaysoak.ab", Time: secs, SystemOut: HeadlineAB(ab)}
	switch ab.Verdict {
	case verdict.Leak, verdict.Crashed:
		c.Failure = &junitMessage{Message: string(ab.Verdict), Body: HeadlineAB(ab)}
		suite.Failures++
	case verdict.Inconclusive:
		c.Skipped = &junitMessage{Message: HeadlineAB(ab)}
		suite.Skipped++
	}
	suite.Cases = append(suite.Cases, c)
	for _, s := range []struct {
		name string
		s    Summary
	}{{"A", ab.A}, {"B", ab.B}} {
		suite.Cases = append(suite.Cases, junitCase{Name: s.name + " on its own", Classname: "relaysoak.ab", Time: secs, SystemOut: Headline(s.s)})
	}
	suite.Tests = len(suite.Cases)
	b, err := xml.MarshalIndent(junitSuites{Suites: []junitSuite{suite}}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("report: junit: %w", err)
	}
	return append([]byte(xml.Header), append(b, '\n')...), nil
}

// PlotAB draws the signal each build's verdict rests on, A and B on one
// set of axes, with each fitted trend, into a PNG at out, which is replaced
// only once the whole image is written.
func PlotAB(dir string, ab AB, out string) error {
	png, err := renderPlotAB(dir, ab)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(out, png, 0o644)
}

func renderPlotAB(dir string, ab AB) ([]byte, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("relay memory — A %s, B %s (images in report.md)", ab.A.Judged.Verdict, ab.B.Judged.Verdict)
	p.X.Label.Text = "hours since start"
	p.Y.Label.Text = "MiB"
	// Bottom right: memory rises from zero, so the lower part is empty.
	p.Legend.Top = false
	p.Legend.Left = false
	colors := []color.Color{color.RGBA{B: 200, A: 255}, color.RGBA{R: 220, G: 100, A: 255}}
	for i, arm := range []struct {
		name, dir string
		s         Summary
	}{{"A", ab.ADir, ab.A}, {"B", ab.BDir, ab.B}} {
		path := filepath.Join(dir, arm.dir, rundir.Samples)
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("plot: %w", err)
		}
		run, err := verdict.ReadSamples(f, path)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("plot: %w", err)
		}
		j := arm.s.Judged
		sig := j.CarriedBy
		if _, ok := run.Signals[sig]; !ok {
			sig, _ = verdict.Leading(func(k string) bool { _, ok := run.Signals[k]; return ok })
		}
		s := run.Signals[sig]
		if len(s) == 0 {
			continue
		}
		step := max(1, len(s)/maxPlotPoints)
		pts := make(plotter.XYs, 0, len(s)/step+1)
		for k := 0; k < len(s); k += step {
			pts = append(pts, plotter.XY{X: s[k].T / 3600, Y: s[k].Bytes / (1 << 20)})
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return nil, fmt.Errorf("plot %s: %w", arm.name, err)
		}
		l.Color = colors[i]
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("%s: %s", arm.name, sig), l)
		r := j.Result
		if r.WindowEndS > r.WindowStartS && sig == j.CarriedBy {
			y := func(t float64) float64 { return r.LevelMiB - r.SlopeMiBPerHour*(r.WindowEndS-t)/3600 }
			fit, _ := plotter.NewLine(plotter.XYs{{X: r.WindowStartS / 3600, Y: y(r.WindowStartS)}, {X: r.WindowEndS / 3600, Y: y(r.WindowEndS)}})
			fit.Color = colors[i]
			fit.Dashes = []vg.Length{vg.Points(6), vg.Points(3)}
			fit.Width = vg.Points(2)
			p.Add(fit)
			p.Legend.Add(fmt.Sprintf("%s trend %.0f MiB/h", arm.name, r.SlopeMiBPerHour), fit)
		}
	}
	p.Y.Min = 0
	return pngOf(p)
}
