package report

import (
	"encoding/json"
	"fmt"
	"image/color"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/relaysoak/relaysoak/soak/rundir"
)

// Revision is one commit of a relay's history.
type Revision struct {
	Hash    string `json:"hash"`
	Subject string `json:"subject"`
}

// Short is the hash's first 10 characters.
func (r Revision) Short() string { return r.Hash[:min(10, len(r.Hash))] }

func (r Revision) String() string { return fmt.Sprintf("%s (%s)", r.Short(), r.Subject) }

// What a bisect step found of its commit.
const (
	StepBad  = "bad"  // B keeps materially more than the good build
	StepGood = "good" // no difference, and the bad end's would have shown
	StepSkip = "skip" // it does not build, or the A/B could not tell
)

// BisectStep is one step: a commit built and, when it built, judged by an
// A/B soak against the good end's build.
type BisectStep struct {
	N      int      `json:"n"` // 0: good against bad
	Commit Revision `json:"commit"`
	// Verdict is StepGood, StepBad or StepSkip; Why says why, in words.
	Verdict string `json:"verdict"`
	Why     string `json:"why"`
	// Judged: an A/B ran and compared the two (the rest is zero otherwise).
	Judged         bool       `json:"judged"`
	DiffMiBPerHour float64    `json:"diff_mib_per_hour"`
	DiffCI         [2]float64 `json:"diff_ci_mib_per_hour"`
	// Minutes is the load's length; Run the A/B run's directory, relative
	// to the bisect's ("" when none ran).
	Minutes float64 `json:"minutes"`
	Run     string  `json:"run,omitempty"`
}

// Bisect is a finished (or stopped) bisect.
type Bisect struct {
	ID     string   `json:"id"`
	Source string   `json:"source"`
	Good   Revision `json:"good"`
	Bad    Revision `json:"bad"`
	// Commits is how many commits lie after good up to bad.
	Commits int `json:"commits"`
	// First is the first bad commit, when one was told apart; Suspects are
	// the commits it may be when skipped ones stand between the last good
	// and the first bad (First is then nil).
	First    *Revision  `json:"first_bad,omitempty"`
	Suspects []Revision `json:"suspects,omitempty"`
	// NotFound: step 0 found no difference between good and bad.
	NotFound bool `json:"not_found,omitempty"`
	// OneStep: one commit judged against a baseline (bisect-step, under
	// git bisect run), not a search.
	OneStep bool `json:"one_step,omitempty"`
	// Stopped says why the bisect ended before an answer ("" when it did
	// not).
	Stopped string        `json:"stopped,omitempty"`
	Steps   []BisectStep  `json:"steps"`
	Took    time.Duration `json:"took_ns"`
}

// Headline is bisect.md's first line.
func (b Bisect) Headline() string {
	step0 := func() string {
		if len(b.Steps) == 0 || !b.Steps[0].Judged {
			return ""
		}
		s := b.Steps[0]
		return fmt.Sprintf(": bad − good = %s MiB/h (CI %s to %s)", signedNum(s.DiffMiBPerHour), num(s.DiffCI[0]), num(s.DiffCI[1]))
	}
	switch {
	case b.OneStep && len(b.Steps) > 0:
		s := b.Steps[len(b.Steps)-1]
		return fmt.Sprintf("%s is %s against %s: %s", s.Commit, s.Verdict, b.Good.Short(), s.Why)
	case b.First != nil:
		s := b.stepOf(b.First.Hash)
		diff := ""
		if s != nil && s.Judged {
			diff = fmt.Sprintf(": B − A = %s ± %s MiB/h against %s", signedNum(s.DiffMiBPerHour), num((s.DiffCI[1]-s.DiffCI[0])/2), b.Good.Short())
		} else if s := b.stepOf(b.Bad.Hash); s != nil && s.Judged {
			diff = fmt.Sprintf(": the bad end's B − A = %s ± %s MiB/h against %s", signedNum(s.DiffMiBPerHour), num((s.DiffCI[1]-s.DiffCI[0])/2), b.Good.Short())
		}
		return fmt.Sprintf("First bad commit: %s %s%s", b.First.Hash, b.First.Subject, diff)
	case b.NotFound:
		return fmt.Sprintf("Not found: %s and %s do not differ%s", b.Good.Short(), b.Bad.Short(), step0())
	case len(b.Suspects) > 0:
		var names []string
		for _, r := range b.Suspects {
			names = append(names, r.Short())
		}
		return fmt.Sprintf("First bad commit not told apart: one of %s (skipped commits stand between the last good and the first bad)", strings.Join(names, ", "))
	default:
		return "No answer: " + b.Stopped
	}
}

// stepOf is the last judged step of a commit, nil when none.
func (b Bisect) stepOf(hash string) *BisectStep {
	for i := len(b.Steps) - 1; i >= 0; i-- {
		if b.Steps[i].Commit.Hash == hash && b.Steps[i].Judged {
			return &b.Steps[i]
		}
	}
	return nil
}

// MarkdownBisect is bisect.md: the answer on its first line, then the
// steps and the plot.
func MarkdownBisect(b Bisect, notes []string) string {
	var w strings.Builder
	fmt.Fprintf(&w, "# %s\n\n", b.Headline())
	if b.OneStep {
		fmt.Fprintf(&w, "One step of a bisect in %s (bisect-step, as `git bisect run` drives it): %s against the baseline %s, in %s.\n\n",
			b.Source, b.Bad, b.Good, b.Took.Round(time.Second))
	} else {
		fmt.Fprintf(&w, "Bisect %s of %s: good %s, bad %s, %d commits after good up to bad (first-parent line), %d steps in %s.\n\n",
			b.ID, b.Source, b.Good, b.Bad, b.Commits, len(b.Steps), b.Took.Round(time.Second))
	}
	if b.Stopped != "" {
		fmt.Fprintf(&w, "**Stopped:** %s\n\n", b.Stopped)
	}
	w.WriteString("Each step is an A/B soak under the same traffic: A is the good end's build, B the step's commit. " +
		"B − A is the difference of their memory slopes (what they keep, where the profile names it), with its interval.\n\n")
	if len(b.Steps) > 0 {
		fmt.Fprintf(&w, "![each step's difference, B − A](%s)\n\n", rundir.BisectPlot)
	}
	w.WriteString("| step | commit | subject | verdict | B − A, MiB/h | interval | minutes | run |\n|---|---|---|---|---|---|---|---|\n")
	for _, s := range b.Steps {
		diff, ci, run := "—", "—", "—"
		if s.Judged {
			diff, ci = signedNum(s.DiffMiBPerHour), fmt.Sprintf("%s to %s", num(s.DiffCI[0]), num(s.DiffCI[1]))
		}
		if s.Run != "" {
			run = fmt.Sprintf("[%s](%s/%s)", s.Run, s.Run, rundir.Report)
		}
		fmt.Fprintf(&w, "| %d | %s | %s | %s: %s | %s | %s | %.0f | %s |\n", s.N, s.Commit.Short(), mdCell(s.Commit.Subject), s.Verdict, mdCell(s.Why), diff, ci, s.Minutes, run)
	}
	if len(notes) > 0 {
		w.WriteString("\n## Notes\n\n")
		for _, n := range notes {
			fmt.Fprintf(&w, "- %s\n", n)
		}
	}
	return w.String()
}

// mdCell keeps a table cell on one line.
func mdCell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " …"
	}
	return s
}

// WriteBisect writes bisect.md, bisect.json and bisect.png into dir, each
// replaced whole: a bisect rewrites them after every step.
func WriteBisect(dir string, b Bisect) error {
	var notes []string
	png, err := renderBisectPlot(b)
	if err != nil {
		notes = append(notes, "no plot: "+err.Error())
	}
	j, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return fmt.Errorf("report: encode %s: %w", rundir.BisectJSON, err)
	}
	return writeFiles(dir, []outFile{
		{rundir.BisectJSON, append(j, '\n')},
		{rundir.BisectReport, []byte(MarkdownBisect(b, notes))},
		{rundir.BisectPlot, png},
	})
}

// renderBisectPlot draws each judged step's difference with its interval,
// bad steps red, good ones blue; nil before the first step.
func renderBisectPlot(b Bisect) ([]byte, error) {
	if len(b.Steps) == 0 {
		return nil, nil // no step yet: no plot, and bisect.md names none
	}
	p := plot.New()
	p.Title.Text = "bisect " + b.ID + ": B − A per step (A: the good end)"
	p.X.Label.Text = "step"
	p.Y.Label.Text = "MiB/h"
	// The legend sits in headroom above the highest interval.
	p.Legend.Top = true
	top := 0.0
	var ticks []plot.Tick
	for _, s := range b.Steps {
		top = max(top, s.DiffCI[1])
		ticks = append(ticks, plot.Tick{Value: float64(s.N), Label: fmt.Sprintf("%d: %s", s.N, s.Commit.Hash[:min(7, len(s.Commit.Hash))])})
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	for _, kind := range []struct {
		verdict string
		c       color.Color
	}{{StepBad, color.RGBA{R: 200, A: 255}}, {StepGood, color.RGBA{B: 200, A: 255}}, {StepSkip, color.Gray{Y: 128}}} {
		var pts plotter.XYs
		var errs plotter.YErrors
		for _, s := range b.Steps {
			if s.Judged && s.Verdict == kind.verdict {
				pts = append(pts, plotter.XY{X: float64(s.N), Y: s.DiffMiBPerHour})
				errs = append(errs, struct{ Low, High float64 }{s.DiffMiBPerHour - s.DiffCI[0], s.DiffCI[1] - s.DiffMiBPerHour})
			}
		}
		if len(pts) == 0 {
			continue
		}
		sc, err := plotter.NewScatter(pts)
		if err != nil {
			return nil, fmt.Errorf("plot: %w", err)
		}
		sc.Color = kind.c
		bars, err := plotter.NewYErrorBars(struct {
			plotter.XYs
			plotter.YErrors
		}{pts, errs})
		if err != nil {
			return nil, fmt.Errorf("plot: %w", err)
		}
		bars.Color = kind.c
		p.Add(sc, bars)
		p.Legend.Add(kind.verdict, sc)
	}
	zero := plotter.NewFunction(func(float64) float64 { return 0 })
	zero.Color = color.Gray{Y: 160}
	zero.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(zero)
	p.X.Min, p.X.Max = -0.5, float64(b.Steps[len(b.Steps)-1].N)+0.5
	p.Y.Max = max(p.Y.Max, top*1.3)
	return pngOf(p)
}
