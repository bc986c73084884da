// Package bisect finds the first commit of a relay's history whose build
// keeps more memory than a good commit's. Each step builds one commit, in
// a worktree of its own, and judges it by an A/B soak against the good
// end's build under the same traffic; step 0 judges the bad end and sets
// how long the later steps need to be.
//
// It knows git and the order of the search. It must not know a relay's
// names (the relay profile's build facts say how it is built), how a soak
// runs (package soak) or how the answer is written (package report).
package bisect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/relaysoak/relaysoak/soak"
	"github.com/relaysoak/relaysoak/soak/report"
	"github.com/relaysoak/relaysoak/soak/rundir"
	"github.com/relaysoak/relaysoak/soak/verdict"
)

// Errors a caller tells apart (errors.Is).
var (
	// ErrUsage: the source is not a checkout, a revision is unknown, or
	// good is not an ancestor of bad.
	ErrUsage = errors.New("bisect: bad usage")
	// ErrEndNotBuilt: the good or the bad end does not build.
	ErrEndNotBuilt = errors.New("bisect: an end does not build")
)

// Stepper runs one step's A/B soak: cfg.RelayImage is A, cfg.Compare's
// image B.
type Stepper interface {
	Step(ctx context.Context, cfg soak.Config) (report.AB, error)
}

// soakStepper is the default Stepper: soak.Run.
type soakStepper struct{}

func (soakStepper) Step(ctx context.Context, cfg soak.Config) (report.AB, error) {
	out, err := soak.Run(ctx, cfg)
	if err != nil {
		return report.AB{}, err
	}
	if out.AB == nil {
		return report.AB{}, errors.New("the step's soak was not an A/B")
	}
	return *out.AB, nil
}

// Config of a bisect. Zero values are sensible where a comment gives a
// default.
type Config struct {
	// Source is the relay's git checkout; it is read, never changed:
	// each commit is built in a temporary worktree.
	Source string
	// Good and Bad are revisions: good keeps what it should, bad more.
	Good, Bad string
	// Builder makes a commit's image (default: GoBuilder from
	// Soak.Profile's build facts).
	Builder Builder
	// Soak is every step's recipe: the load, the relay profile, the judge
	// and run.json's recipe. Its Duration is step 0's length; RunsDir,
	// ID, RelayImage and Compare are set per step.
	Soak soak.Config
	// StepLength is every later step's length; default the shortest that
	// resolves step 0's difference (see stepLength).
	StepLength time.Duration
	// MaxStep is the longest a step may run: a step still unclear at
	// StepLength runs again this long before it is skipped (default step
	// 0's length).
	MaxStep time.Duration
	// Dir is the bisect's directory: a run directory per step, the build
	// logs and bisect.md. Required.
	Dir string
	// ID names the bisect in its report (default Dir's base name).
	ID string
	// Stepper runs each step (default soak.Run).
	Stepper Stepper
	// Out receives a line per step (and each soak's own progress).
	Out io.Writer
}

func (c Config) withDefaults() Config {
	if c.Builder == nil {
		c.Builder = GoBuilder{Profile: c.Soak.Profile}
	}
	if c.Stepper == nil {
		c.Stepper = soakStepper{}
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	if c.ID == "" {
		c.ID = filepath.Base(c.Dir)
	}
	if c.Soak.Duration == 0 {
		c.Soak.Duration = 30 * time.Minute
	}
	if c.MaxStep == 0 {
		c.MaxStep = c.Soak.Duration
	}
	c.Soak.Out = c.Out
	return c
}

// Run bisects: step 0 judges the bad end against the good one; when it
// keeps materially more, the commits between are searched, halving the
// range each step, a commit that does not build or cannot be told skipped.
// bisect.md is rewritten after every step, so a bisect stopped early keeps
// what it found. The returned Bisect is the answer (First, Suspects,
// NotFound); the error is one the bisect could not go on from.
func Run(ctx context.Context, cfg Config) (report.Bisect, error) {
	cfg = cfg.withDefaults()
	b, err := open(ctx, cfg, "good end")
	if err != nil {
		return report.Bisect{}, err
	}
	cs, err := b.repo.between(ctx, b.res.Good, b.res.Bad)
	if err != nil {
		return report.Bisect{}, fmt.Errorf("%w: %v", ErrUsage, err)
	}
	b.res.Commits = len(cs)
	good, bad := b.res.Good, b.res.Bad
	fmt.Fprintf(cfg.Out, "bisect: %d commits after %s up to %s; step 0 judges %s against %s for %s\n",
		len(cs), good, bad, bad.Short(), good.Short(), cfg.Soak.Duration)
	if err = b.search(ctx, cs); err != nil && b.res.Stopped == "" {
		b.res.Stopped = err.Error()
	}
	b.write()
	return b.res, err
}

// open resolves the checkout and its two ends (the first named goodName
// in errors) and makes the bisect's directory.
func open(ctx context.Context, cfg Config, goodName string) (*bisector, error) {
	r, err := checkRepo(ctx, cfg.Source)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUsage, err)
	}
	good, err := r.commit(ctx, cfg.Good)
	if err != nil {
		return nil, fmt.Errorf("%w: the %s: %v", ErrUsage, goodName, err)
	}
	bad, err := r.commit(ctx, cfg.Bad)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUsage, err)
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, rundir.BisectBuilds), 0o755); err != nil {
		return nil, fmt.Errorf("the bisect's directory: %w", err)
	}
	return &bisector{cfg: cfg, repo: r, started: time.Now(), res: report.Bisect{ID: cfg.ID, Source: cfg.Source, Good: good, Bad: bad}}, nil
}

// bisector is one bisect under way.
type bisector struct {
	cfg       Config
	repo      repo
	started   time.Time
	res       report.Bisect
	goodImage string
	resolve   float64       // step 0's difference, MiB/h: Classify's bar is half of it
	length    time.Duration // later steps' length
	// overhead is the time steps took beyond their load (start-up, drain,
	// the report), summed over steps, for the time to the answer.
	overhead time.Duration
	steps    int
}

func (b *bisector) search(ctx context.Context, cs []Commit) error {
	good, bad := b.res.Good, b.res.Bad
	var why string
	b.goodImage, why = b.build(ctx, good)
	if b.goodImage == "" {
		return fmt.Errorf("%w: the good end %s: %s", ErrEndNotBuilt, good.Short(), why)
	}
	badImage, why := b.build(ctx, bad)
	if badImage == "" {
		return fmt.Errorf("%w: the bad end %s: %s", ErrEndNotBuilt, bad.Short(), why)
	}
	s0, ab, err := b.step(ctx, 0, bad, badImage, b.cfg.Soak.Duration, "", 0)
	if err != nil {
		return err
	}
	switch s0.Verdict {
	case report.StepGood:
		b.res.NotFound = true
		fmt.Fprintf(b.cfg.Out, "bisect: step 0: %s good: %s\n", bad.Short(), s0.Why)
		return nil
	case report.StepSkip:
		b.res.Stopped = fmt.Sprintf("step 0 could not tell the bad end from the good one (%s): run it longer (--duration)", s0.Why)
		fmt.Fprintf(b.cfg.Out, "bisect: %s\n", b.res.Stopped)
		return nil
	}
	b.resolve = s0.DiffMiBPerHour
	b.length = b.cfg.StepLength
	if b.length == 0 {
		b.length = stepLength(ab, b.cfg.Soak.Duration, b.cfg.Soak.Judge)
	}
	fmt.Fprintf(b.cfg.Out, "bisect: later steps run %s each (step 0's %s resolved %.1f ± %.1f MiB/h)\n", b.length, b.cfg.Soak.Duration,
		s0.DiffMiBPerHour, (s0.DiffCI[1]-s0.DiffCI[0])/2)
	b.progress(s0, -1, len(cs)-1, nil)

	lo, hi := -1, len(cs)-1 // cs[lo] is good (−1: the good end), cs[hi] bad
	skipped := map[int]bool{}
	for n := 1; hi-lo > 1; n++ {
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted before step %d: %w", n, context.Cause(ctx))
		}
		i := pick(lo, hi, skipped)
		if i < 0 {
			b.res.Suspects = append([]Commit(nil), cs[lo+1:hi+1]...)
			return nil
		}
		c := cs[i]
		image, why := b.build(ctx, c)
		var s report.BisectStep
		if image == "" {
			s = report.BisectStep{N: n, Commit: c, Verdict: report.StepSkip, Why: why}
			b.add(s)
		} else if s, _, err = b.judge(ctx, n, c, image); err != nil {
			return err
		}
		switch s.Verdict {
		case report.StepBad:
			hi = i
		case report.StepGood:
			lo = i
		default:
			skipped[i] = true
		}
		b.progress(s, lo, hi, skipped)
	}
	first := cs[hi]
	b.res.First = &first
	return nil
}

// judge runs a step at the step length and, when it cannot tell, once
// more at the longest allowed.
func (b *bisector) judge(ctx context.Context, n int, c Commit, image string) (report.BisectStep, report.AB, error) {
	s, ab, err := b.step(ctx, n, c, image, b.length, "", b.resolve)
	if err != nil || s.Verdict != report.StepSkip || ab.Verdict == verdict.Crashed || b.cfg.MaxStep <= b.length {
		return s, ab, err
	}
	fmt.Fprintf(b.cfg.Out, "bisect: step %d unclear at %s (%s): again for %s\n", n, b.length, s.Why, b.cfg.MaxStep)
	return b.step(ctx, n, c, image, b.cfg.MaxStep, "-longer", b.resolve)
}

// pick is the next commit to test: the middle of the open range, or the
// untested commit nearest it (the later first) when the middle was
// skipped; −1 when every commit in the range was skipped.
func pick(lo, hi int, skipped map[int]bool) int {
	mid := (lo + hi + 1) / 2
	for d := 0; mid+d < hi || mid-d > lo; d++ {
		for _, i := range []int{mid + d, mid - d} {
			if i > lo && i < hi && !skipped[i] {
				return i
			}
		}
	}
	return -1
}

// build returns c's image, from the cache or built in a worktree; "" and
// why when it does not build. The build's output is kept in builds/.
func (b *bisector) build(ctx context.Context, c Commit) (image, why string) {
	if cb, ok := b.cfg.Builder.(Cacher); ok {
		if image, ok := cb.Cached(ctx, c); ok {
			fmt.Fprintf(b.cfg.Out, "bisect: %s: image %s (built before)\n", c.Short(), image)
			return image, ""
		}
	}
	logPath := filepath.Join(b.cfg.Dir, rundir.BisectBuilds, c.Short()+".log")
	rel := filepath.Join(rundir.BisectBuilds, c.Short()+".log")
	log, err := os.Create(logPath)
	if err != nil {
		return "", fmt.Sprintf("no build log: %v", err)
	}
	defer log.Close()
	fmt.Fprintf(b.cfg.Out, "bisect: building %s\n", c)
	t0 := time.Now()
	wt, remove, err := b.repo.worktree(ctx, c)
	if err != nil {
		fmt.Fprintln(log, err)
		return "", fmt.Sprintf("no worktree: %v", err)
	}
	defer remove()
	image, err = b.cfg.Builder.Build(ctx, wt, c, log)
	if err != nil {
		fmt.Fprintln(log, err)
		return "", fmt.Sprintf("does not build: %s (%s)", lastLine(err.Error()), rel)
	}
	fmt.Fprintf(b.cfg.Out, "bisect: built %s as %s in %s\n", c.Short(), image, time.Since(t0).Round(time.Second))
	return image, ""
}

// lastLine is the last non-empty line of a message: a failed build's
// compiler error.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// step runs the A/B of the good end's image against image for length and
// records it, classified against resolve (0 at step 0, which has none to
// go by).
func (b *bisector) step(ctx context.Context, n int, c Commit, image string, length time.Duration, suffix string, resolve float64) (report.BisectStep, report.AB, error) {
	id := fmt.Sprintf("step-%02d-%s%s", n, c.Short(), suffix)
	scfg := stepSoak(b.cfg.Soak, b.cfg.Dir, id, b.goodImage, image, length)
	fmt.Fprintf(b.cfg.Out, "bisect: step %d: %s against %s for %s (%s)\n", n, c.Short(), b.res.Good.Short(), length, filepath.Join(b.cfg.Dir, id))
	t0 := time.Now()
	ab, err := b.cfg.Stepper.Step(ctx, scfg)
	if err != nil {
		return report.BisectStep{}, ab, fmt.Errorf("step %d (%s): the A/B soak failed: %w (what it collected is in %s)", n, c.Short(), err, filepath.Join(b.cfg.Dir, id))
	}
	if ctx.Err() != nil {
		// A soak cut short is reported, but it is no step's verdict.
		return report.BisectStep{}, ab, fmt.Errorf("interrupted at step %d (%s): %w (its run is in %s)", n, c.Short(), context.Cause(ctx), filepath.Join(b.cfg.Dir, id))
	}
	b.overhead += max(0, time.Since(t0)-length)
	b.steps++
	s := Classify(ab, resolve)
	s.N, s.Commit, s.Minutes, s.Run = n, c, length.Minutes(), id
	b.add(s)
	return s, ab, nil
}

// stepSoak is the recipe of one step: A the good end, B the commit's
// build, in the bisect's directory, with run.json's recipe saying so.
func stepSoak(base soak.Config, dir, id, a, bImage string, length time.Duration) soak.Config {
	cfg := base
	cfg.RunsDir, cfg.ID, cfg.Duration = dir, id, length
	cfg.RelayImage = a
	cfg.Compare = &soak.Compare{RelayImage: bImage}
	cfg.Attribute = nil
	cfg.Recipe = maps.Clone(base.Recipe)
	if cfg.Recipe == nil {
		cfg.Recipe = map[string]string{}
	}
	maps.Copy(cfg.Recipe, map[string]string{"relay-image": a, "compare": bImage, "duration": length.String(), "runs-dir": dir, "id": id})
	return cfg
}

// Classify judges one step's A/B against the bad end's difference
// (resolve, MiB/h; 0 at step 0, which has none to go by: then the
// effect-size gate). The bar is half that difference, and never under the
// gate: a commit that carries the regression shows about all of it, and a
// difference far smaller (two builds' warm-ups, a small change elsewhere)
// is not the one sought.
//   - bad: the interval of B − A excludes zero and B − A reaches the bar;
//   - good: the interval's upper end is under the bar, so the bad end's
//     difference would have shown;
//   - skip: a relay died, a side has no slope, or the interval straddles
//     the bar.
//
// When an arm's live-heap floors cannot tell (too few floors in a short
// step), both arms are compared on their view from the operating system
// (rss_anon), and the reason says so: a leak the size a bisect looks for
// shows there too.
func Classify(ab report.AB, resolve float64) report.BisectStep {
	c := ab.Comparison
	on := ""
	if !c.Comparable && ab.Verdict != verdict.Crashed {
		if sys, ok := onOSView(ab); ok {
			c, on = sys, "on rss_anon (a live heap's floors could not tell): "
		}
	}
	s := report.BisectStep{Judged: c.Comparable, DiffMiBPerHour: c.DiffMiBPerHour, DiffCI: c.DiffCI}
	bar, what := max(c.Gate, resolve/2), "half the bad end's difference"
	if resolve <= 0 || bar == c.Gate {
		what = "the effect-size gate"
	}
	lo, hi := c.DiffCI[0], c.DiffCI[1]
	switch {
	case ab.Verdict == verdict.Crashed:
		s.Verdict, s.Why = report.StepSkip, fmt.Sprintf("a relay died (A %s, B %s)", ab.A.Judged.Verdict, ab.B.Judged.Verdict)
	case !c.Comparable:
		s.Verdict, s.Why = report.StepSkip, c.Sentence
	case lo > 0 && c.DiffMiBPerHour >= bar:
		s.Verdict, s.Why = report.StepBad, on+c.Sentence
	case hi < bar:
		s.Verdict, s.Why = report.StepGood, fmt.Sprintf("%s%s; under %s, %.1f MiB/h", on, c.Sentence, what, bar)
	default:
		s.Verdict, s.Why = report.StepSkip, fmt.Sprintf("unclear: %s%s; the interval %.1f to %.1f MiB/h straddles %s, %.1f",
			on, c.Sentence, lo, hi, what, bar)
	}
	return s
}

// onOSView compares the arms on the operating system's view of their
// memory (rss_anon, beside the floors), when both judged it.
func onOSView(ab report.AB) (report.Comparison, bool) {
	a, b := ab.A, ab.B
	for _, s := range []*report.Summary{&a, &b} {
		if sys := s.Judged.OSView(); sys != nil {
			s.Judged.Result, s.Judged.CarriedBy = *sys, sys.Signal
		}
	}
	c := report.Compare(a, b)
	return c, c.Comparable
}

// stepLength is the shortest step that resolves step 0's difference d: a
// slope's interval narrows as the judged window to the power 1.5 (more
// points, over a longer lever), so the window that narrows step 0's
// half-interval h to d/4 (then d's interval excludes zero, and zero's
// stays under Classify's bar, d/2) is step 0's times (4h/d)^(2/3). The
// warm-up step 0 skipped is added. The window is at least the judge's
// least, with a quarter to spare (a window of floors starts and ends with
// whole teeth, so it moves by a tooth or two from run to run); the step is
// at least half of step 0 (warm-ups vary from run to run), at most all of
// it.
func stepLength(ab report.AB, t0 time.Duration, judge verdict.Config) time.Duration {
	c := ab.Comparison
	r := ab.B.Judged.Result
	w0 := r.WindowEndS - r.WindowStartS
	h0 := (c.DiffCI[1] - c.DiffCI[0]) / 2
	if !c.Comparable || c.DiffMiBPerHour <= 0 || w0 <= 0 || h0 <= 0 {
		return t0
	}
	// The longer warm-up of the two arms: a good build warms up as the
	// good end (A) did, which a leaking B may hide.
	warm := max(0, t0.Seconds()-w0)
	if a := ab.A.Judged.Result; a.WindowEndS > a.WindowStartS {
		warm = max(warm, t0.Seconds()-(a.WindowEndS-a.WindowStartS))
	}
	w := w0 * math.Pow(4*h0/c.DiffMiBPerHour, 2.0/3)
	minW := judge.MinWindow
	if minW <= 0 {
		minW = verdict.DefaultMinWindow
	}
	w = max(w, 1.25*minW.Seconds())
	t := time.Duration((warm + w) * float64(time.Second)).Round(time.Second)
	return min(max(t, t0/2), t0)
}

// add records a step and rewrites bisect.md.
func (b *bisector) add(s report.BisectStep) {
	b.res.Steps = append(b.res.Steps, s)
	b.write()
}

func (b *bisector) write() {
	b.res.Took = time.Since(b.started)
	if err := report.WriteBisect(b.cfg.Dir, b.res); err != nil {
		fmt.Fprintf(b.cfg.Out, "bisect: writing %s: %v\n", rundir.BisectReport, err)
	}
}

// progress prints a step's line: its verdict, the commits left and the
// time to the answer: the steps left at the later steps' length, each with
// the overhead steps have had so far.
func (b *bisector) progress(s report.BisectStep, lo, hi int, skipped map[int]bool) {
	left := 0
	for i := lo + 1; i < hi; i++ {
		if !skipped[i] {
			left++
		}
	}
	steps := 0
	if left > 0 {
		steps = int(math.Ceil(math.Log2(float64(left + 1))))
	}
	each := b.length
	if b.steps > 0 {
		each += b.overhead / time.Duration(b.steps)
	}
	fmt.Fprintf(b.cfg.Out, "bisect: step %d: %s %s: %s · %d commits left, about %d more steps, answer in about %s\n",
		s.N, s.Commit.Short(), s.Verdict, s.Why, left, steps, (time.Duration(steps) * each).Round(time.Minute))
}

// StepConfig is one step judged on its own, as `git bisect run` drives
// it: a revision of the checkout (HEAD) against a baseline.
type StepConfig struct {
	// Source, Builder, Soak (Duration is the step's length), Dir, ID,
	// Stepper and Out are as in Config.
	Source  string
	Builder Builder
	Soak    soak.Config
	Dir, ID string
	Stepper Stepper
	Out     io.Writer
	// Baseline is the good revision; Rev the one judged (default HEAD).
	Baseline, Rev string
	// Resolve is the bad end's difference, MiB/h, from an earlier A/B:
	// Classify's bar is half of it (default: the effect-size gate).
	Resolve float64
}

// Step judges one revision against the baseline: its A/B run and
// bisect.md go into Dir. A revision that does not build is a skip; a
// baseline that does not build is ErrEndNotBuilt; an error is the rig's.
func Step(ctx context.Context, sc StepConfig) (report.BisectStep, error) {
	if sc.Rev == "" {
		sc.Rev = "HEAD"
	}
	cfg := Config{Source: sc.Source, Good: sc.Baseline, Bad: sc.Rev, Builder: sc.Builder, Soak: sc.Soak, Dir: sc.Dir, ID: sc.ID,
		Stepper: sc.Stepper, Out: sc.Out}.withDefaults()
	b, err := open(ctx, cfg, "baseline")
	if err != nil {
		return report.BisectStep{}, err
	}
	b.res.Commits, b.res.OneStep = 1, true
	base, c := b.res.Good, b.res.Bad
	defer b.write()
	var why string
	if b.goodImage, why = b.build(ctx, base); b.goodImage == "" {
		b.res.Stopped = "the baseline does not build: " + why
		return report.BisectStep{}, fmt.Errorf("%w: the baseline %s: %s", ErrEndNotBuilt, base.Short(), why)
	}
	image, why := b.build(ctx, c)
	if image == "" {
		s := report.BisectStep{N: 1, Commit: c, Verdict: report.StepSkip, Why: why}
		b.add(s)
		return s, nil
	}
	s, _, err := b.step(ctx, 1, c, image, cfg.Soak.Duration, "", sc.Resolve)
	if err != nil {
		b.res.Stopped = err.Error()
	}
	return s, err
}
