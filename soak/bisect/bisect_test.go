package bisect

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/relaysoak/relaysoak/internal/testkit"
	"github.com/relaysoak/relaysoak/soak"
	"github.com/relaysoak/relaysoak/soak/harness/harnesstest"
	"github.com/relaysoak/relaysoak/soak/report"
	"github.com/relaysoak/relaysoak/soak/rundir"
	"github.com/relaysoak/relaysoak/soak/verdict"
)

func TestPickTakesTheMiddleThenStepsAroundSkips(t *testing.T) {
	// Seven commits after good (0…6), 6 known bad: the middle is 3.
	assert.Equal(t, 3, pick(-1, 6, nil))
	// Bad at 3: the middle of 0…2 is 1; skipped, the later neighbour.
	assert.Equal(t, 1, pick(-1, 3, nil))
	assert.Equal(t, 2, pick(-1, 3, map[int]bool{1: true}))
	assert.Equal(t, 0, pick(-1, 3, map[int]bool{1: true, 2: true}))
	assert.Equal(t, -1, pick(-1, 3, map[int]bool{0: true, 1: true, 2: true}), "every commit left was skipped")
	assert.Equal(t, -1, pick(2, 3, nil), "nothing left between good and bad")
}

// ab is a comparison with the given difference and interval, both arms
// judged.
func ab(diff, lo, hi, gate float64) report.AB {
	c := report.Comparison{Comparable: true, DiffMiBPerHour: diff, DiffCI: [2]float64{lo, hi}, Gate: gate,
		Significant: lo > 0 || hi < 0, Sentence: "B against A"}
	c.Material = c.Significant && (diff >= gate || -diff >= gate)
	return report.AB{Comparison: c, Verdict: verdict.Pass}
}

func TestClassifyAStep(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ab      report.AB
		resolve float64
		want    string
	}{
		{"keeps materially more", ab(600, 540, 660, 10), 600, report.StepBad},
		{"no difference, the bad end's ruled out", ab(5, -60, 70, 10), 600, report.StepGood},
		{"keeps less", ab(-50, -80, -20, 10), 600, report.StepGood},
		{"too wide to rule out the bad end", ab(5, -700, 710, 10), 600, report.StepSkip},
		{"more, but far under the bad end's", ab(5, 2, 8, 10), 600, report.StepGood},
		{"most of the bad end's", ab(400, 350, 450, 10), 600, report.StepBad},
		{"straddles half the bad end's", ab(250, 100, 400, 10), 600, report.StepSkip},
		{"step 0 without a difference: the gate is what must be ruled out", ab(1, -4, 6, 10), 0, report.StepGood},
		{"step 0 too short to rule out the gate", ab(1, -40, 42, 10), 0, report.StepSkip},
		{"a side without a slope", report.AB{Comparison: report.Comparison{Sentence: "no comparison of slopes"}}, 600, report.StepSkip},
		{"a relay died", func() report.AB { a := ab(600, 540, 660, 10); a.Verdict = verdict.Crashed; return a }(), 600, report.StepSkip},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Classify(tc.ab, tc.resolve)
			assert.Equal(t, tc.want, s.Verdict, s.Why)
			assert.NotEmpty(t, s.Why)
		})
	}
}

// An arm whose floors are too few to judge (a short step) leaves the A/B
// without a comparison: the step is judged on both arms' rss_anon instead.
func TestClassifyFallsBackOnRSSWhenFloorsCannotTell(t *testing.T) {
	arm := func(slope, lo, hi float64) report.Summary {
		var s report.Summary
		s.Judged.Result = verdict.Result{Signal: "live_heap_floors", Verdict: verdict.Inconclusive, JudgedPoints: 5, Provisional: true}
		s.Judged.CarriedBy = "live_heap_floors"
		s.Judged.Kept = &verdict.Kept{Signal: "live_heap", OSView: "rss_anon"}
		s.Judged.Signals = []verdict.Result{s.Judged.Result, {Signal: "rss_anon", Verdict: verdict.Pass, JudgedPoints: 300,
			SlopeMiBPerHour: slope, SlopeCIMiBPerHour: [2]float64{lo, hi}, CILevel: 0.99, GateMiBPerHour: 10}}
		return s
	}
	a, b := arm(10, 8, 12), arm(20, 15, 30)
	in := report.NewAB("step", a, b, "a", "b", nil)
	require.False(t, in.Comparison.Comparable, "the floors could not tell")
	s := Classify(in, 3600)
	assert.Equal(t, report.StepGood, s.Verdict, s.Why)
	assert.True(t, s.Judged)
	assert.InDelta(t, 10, s.DiffMiBPerHour, 1e-9)
	assert.Contains(t, s.Why, "on rss_anon (a live heap's floors could not tell)")
	s = Classify(report.NewAB("step", a, arm(3610, 3500, 3700), "a", "b", nil), 3600)
	assert.Equal(t, report.StepBad, s.Verdict, s.Why)
}

func TestStepLengthResolvesStepZerosDifference(t *testing.T) {
	step0 := ab(600, 500, 700, 10) // ±100 around 600
	step0.B.Judged.Result = verdict.Result{WindowStartS: 600, WindowEndS: 3000}
	judge := verdict.Config{MinWindow: 5 * time.Minute}
	// Window 40 min × (4·100/600)^(2/3) ≈ 30.5 min, after the 10-min warm-up.
	got := stepLength(step0, 50*time.Minute, judge)
	assert.InDelta(t, 10+40*0.7631, got.Minutes(), 0.1)
	wide := ab(600, 100, 1100, 10)
	wide.B.Judged.Result = step0.B.Judged.Result
	assert.Equal(t, 50*time.Minute, stepLength(wide, 50*time.Minute, judge), "step 0 barely resolved it: never longer than step 0")
	tight := ab(600, 597, 603, 10)
	tight.B.Judged.Result = step0.B.Judged.Result
	assert.Equal(t, 25*time.Minute, stepLength(tight, 50*time.Minute, judge), "never under half of step 0")
	// A 30-minute step 0 judged from minute 10.
	tight.B.Judged.Result = verdict.Result{WindowStartS: 600, WindowEndS: 1800}
	assert.Equal(t, 10*time.Minute+5*time.Minute*5/4, stepLength(tight, 30*time.Minute, judge), "never under the warm-up and the judge's least window, with a quarter to spare")
	tight.A.Judged.Result = verdict.Result{WindowStartS: 1200, WindowEndS: 1800}
	assert.Equal(t, 20*time.Minute+5*time.Minute*5/4, stepLength(tight, 30*time.Minute, judge), "the good end's longer warm-up")
	assert.Equal(t, 50*time.Minute, stepLength(ab(600, 500, 700, 10), 50*time.Minute, judge), "no judged window to go by: step 0's length")
}

// scriptedBuilder reads a commit's worktree instead of compiling it: the
// option that does not build fails, the file that keeps every frame makes
// a "leaky" image. It stands in for go build in the search's unit tests;
// TestE2EBisect… builds for real.
type scriptedBuilder struct{ built []string }

func (b *scriptedBuilder) Build(_ context.Context, worktree string, c Commit, _ io.Writer) (string, error) {
	b.built = append(b.built, c.Hash)
	if opt, err := os.ReadFile(filepath.Join(worktree, "option.go")); err == nil && strings.Contains(string(opt), "option( {") {
		return "", errors.New("go build: exit status 1\n./option.go:3:14: syntax error: unexpected {")
	}
	if _, err := os.Stat(filepath.Join(worktree, "keepframes.go")); err == nil {
		return "leaky-" + c.Short(), nil
	}
	return "clean-" + c.Short(), nil
}

// scriptedStepper judges B by its image's name instead of soaking it:
// leaky keeps 600 ± 60 MiB/h more than A, clean nothing (1 ± 5, under the
// gate of 10). It stands
// in for soak.Run in the search's unit tests; TestE2EBisect… soaks.
type scriptedStepper struct{ ran []soak.Config }

func (s *scriptedStepper) Step(_ context.Context, cfg soak.Config) (report.AB, error) {
	s.ran = append(s.ran, cfg)
	if strings.HasPrefix(cfg.Compare.RelayImage, "leaky") {
		return ab(600, 540, 660, 10), nil
	}
	return ab(1, -4, 6, 10), nil
}

func TestRunNamesTheFirstBadCommitAndSkipsOneThatDoesNotBuild(t *testing.T) {
	src, h := testRelayRepo(t, leakCommit)
	head := git(t, src, "rev-parse", "HEAD")
	b, st := &scriptedBuilder{}, &scriptedStepper{}
	dir := filepath.Join(t.TempDir(), "bisect-1")
	res, err := Run(t.Context(), Config{Source: src, Good: h[1], Bad: "main", Builder: b, Stepper: st, Dir: dir,
		Soak: soak.Config{Duration: 20 * time.Minute, Recipe: map[string]string{"hosts": "7"}}, StepLength: 10 * time.Minute})
	require.NoError(t, err)
	require.NotNil(t, res.First, res.Headline())
	assert.Equal(t, h[5], res.First.Hash)
	assert.Equal(t, "keep a copy of every frame", res.First.Subject)
	assert.Equal(t, 7, res.Commits)

	// Step 0 (8 against 1), then 5 (bad), 3 (does not build), 4 (good).
	var order []string
	for _, s := range res.Steps {
		order = append(order, s.Commit.Hash+" "+s.Verdict)
	}
	assert.Equal(t, []string{h[8] + " bad", h[5] + " bad", h[3] + " skip", h[4] + " good"}, order)
	assert.Contains(t, res.Steps[2].Why, "does not build: ./option.go:3:14: syntax error")
	assert.Len(t, st.ran, 3, "an A/B for step 0 and for each commit that built")
	assert.LessOrEqual(t, len(st.ran)-1, 4)

	// Each step's soak: A the good end, B the commit, its length, its own
	// run directory in the bisect's, a recipe that repeats it.
	assert.Equal(t, 20*time.Minute, st.ran[0].Duration)
	for _, cfg := range st.ran[1:] {
		assert.Equal(t, 10*time.Minute, cfg.Duration)
	}
	for _, cfg := range st.ran {
		assert.Equal(t, "clean-"+h[1][:10], cfg.RelayImage)
		assert.Equal(t, dir, cfg.RunsDir)
		assert.Equal(t, cfg.Compare.RelayImage, cfg.Recipe["compare"])
		assert.Equal(t, cfg.Duration.String(), cfg.Recipe["duration"])
		assert.Equal(t, "7", cfg.Recipe["hosts"])
	}
	assert.Equal(t, "step-01-"+h[5][:10], st.ran[1].ID)

	// bisect.md names it on its first line; the steps' table and files.
	md, err := os.ReadFile(filepath.Join(dir, rundir.BisectReport))
	require.NoError(t, err)
	first, _, _ := strings.Cut(string(md), "\n")
	assert.Equal(t, "# First bad commit: "+h[5]+" keep a copy of every frame: B − A = +600 ± 60 MiB/h against "+h[1][:10], first)
	assert.Contains(t, string(md), "| 2 | "+h[3][:10]+" | start an option (does not build) | skip: does not build")
	for _, f := range []string{rundir.BisectJSON, rundir.BisectPlot, filepath.Join(rundir.BisectBuilds, h[3][:10]+".log")} {
		assert.FileExists(t, filepath.Join(dir, f))
	}
	// The user's checkout is as it was: its HEAD, no worktree left.
	assert.Equal(t, head, git(t, src, "rev-parse", "HEAD"))
	assert.Empty(t, git(t, src, "status", "--porcelain"))
	assert.Equal(t, 1, strings.Count(git(t, src, "worktree", "list"), "\n")+1, "only the checkout itself")
}

func TestRunSaysNotFoundWhenTheEndsDoNotDiffer(t *testing.T) {
	src, h := testRelayRepo(t, harmlessCommit)
	st := &scriptedStepper{}
	dir := t.TempDir()
	res, err := Run(t.Context(), Config{Source: src, Good: h[1], Bad: h[8], Builder: &scriptedBuilder{}, Stepper: st, Dir: dir})
	require.NoError(t, err)
	assert.True(t, res.NotFound)
	assert.Nil(t, res.First)
	assert.Len(t, st.ran, 1, "step 0 alone")
	assert.Equal(t, "Not found: "+h[1][:10]+" and "+h[8][:10]+" do not differ: bad − good = +1.0 MiB/h (CI -4.0 to 6.0)", res.Headline())
}

func TestRunRefusesWhatItCannotBisect(t *testing.T) {
	src, h := testRelayRepo(t, harmlessCommit)
	for _, tc := range []struct {
		name, good, bad, want string
		err                   error
	}{
		{"good after bad", h[8], h[1], "is not an ancestor of the bad commit", ErrUsage},
		{"unknown revision", "no-such-tag", h[8], `no commit "no-such-tag"`, ErrUsage},
		{"the good end does not build", h[3], h[8], "the good end " + h[3][:10] + ": does not build", ErrEndNotBuilt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Run(t.Context(), Config{Source: src, Good: tc.good, Bad: tc.bad, Builder: &scriptedBuilder{}, Stepper: &scriptedStepper{}, Dir: t.TempDir()})
			require.Error(t, err)
			assert.ErrorIs(t, err, tc.err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	_, err := Run(t.Context(), Config{Source: t.TempDir(), Good: "a", Bad: "b", Dir: t.TempDir()})
	assert.ErrorIs(t, err, ErrUsage)
	assert.Contains(t, err.Error(), "is not a git checkout")
}

// processBisect is a bisect's soak recipe for the test relay run as
// processes (each "image" a binary built from a commit), sampled every
// 100 ms and judged on 10 s: a per-frame leak of 16 KiB at 100 frames/s
// keeps ~5.5 GiB/h, far above the gate and the noise of seconds.
func processBisect(t *testing.T, src string, good, bad string) Config {
	t.Helper()
	h := harnesstest.NewProcesses(t, func(image string) (string, error) { return image, nil })
	return Config{Source: src, Good: good, Bad: bad, Builder: binaryBuilder{dir: t.TempDir()}, Dir: filepath.Join(t.TempDir(), "bisect"),
		Out: testkit.LogWriter{T: t},
		Soak: soak.Config{Hosts: 4, Rate: 100, Duration: 20 * time.Second, SampleEvery: 100 * time.Millisecond, VerifyEvery: 1,
			Profile: testRelayProfile(t), Harness: h, DrainQuiet: 500 * time.Millisecond,
			Judge: verdict.Config{MinWindow: 10 * time.Second, Warmup: 3 * time.Second, MinSlopeMiBPerHour: 1024}}}
}

// The control: a throwaway repository of the test relay's source, eight
// commits, commit 5 keeping 16 KiB of every frame and commit 3 not
// building. Every commit is built for real (go build in its worktree) and
// every step is a real A/B soak of two relay processes fed by one fleet.
func TestE2EBisectFindsTheCommitThatKeepsEveryFrame(t *testing.T) {
	src, h := testRelayRepo(t, leakCommit)
	cfg := processBisect(t, src, h[1], h[8])
	t0 := time.Now()
	res, err := Run(t.Context(), cfg)
	require.NoError(t, err)
	for _, s := range res.Steps {
		t.Logf("step %d %s %s: %s (%.1f MiB/h, CI %.1f to %.1f; %.2f min)", s.N, s.Commit.Short(), s.Verdict, s.Why, s.DiffMiBPerHour, s.DiffCI[0], s.DiffCI[1], s.Minutes)
	}
	t.Logf("bisect took %s", time.Since(t0).Round(time.Second))
	require.NotNil(t, res.First, res.Headline())
	assert.Equal(t, h[5], res.First.Hash, res.Headline())
	ab := 0
	skipped3 := false
	for _, s := range res.Steps {
		if s.Run != "" {
			ab++
			for _, f := range []string{rundir.Report, rundir.Verdict, filepath.Join(rundir.A, rundir.Samples), filepath.Join(rundir.B, rundir.Samples)} {
				assert.FileExists(t, filepath.Join(cfg.Dir, s.Run, f), "each step is a complete A/B run")
			}
		}
		skipped3 = skipped3 || s.Commit.Hash == h[3] && s.Verdict == report.StepSkip && strings.Contains(s.Why, "does not build")
	}
	assert.True(t, skipped3, "commit 3 is skipped: it does not build")
	assert.LessOrEqual(t, ab-1, 4, "at most four A/B steps after step 0")
	f, err := os.Open(filepath.Join(cfg.Dir, rundir.BisectReport))
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	require.True(t, sc.Scan())
	assert.True(t, strings.HasPrefix(sc.Text(), "# First bad commit: "+h[5]+" keep a copy of every frame: B − A = +"), sc.Text())
}

// The same repository with nothing kept at commit 5: step 0 finds no
// difference between the ends, and says so with its interval.
func TestE2EBisectFindsNothingWithoutALeak(t *testing.T) {
	src, h := testRelayRepo(t, harmlessCommit)
	cfg := processBisect(t, src, h[1], h[8])
	res, err := Run(t.Context(), cfg)
	require.NoError(t, err)
	require.NotEmpty(t, res.Steps)
	s := res.Steps[0]
	t.Logf("step 0: %s: %s (%.1f MiB/h, CI %.1f to %.1f)", s.Verdict, s.Why, s.DiffMiBPerHour, s.DiffCI[0], s.DiffCI[1])
	assert.True(t, res.NotFound, res.Headline())
	assert.Len(t, res.Steps, 1)
	assert.True(t, s.Judged)
	assert.LessOrEqual(t, s.DiffCI[0], 0.0)
	assert.GreaterOrEqual(t, s.DiffCI[1], 0.0)
	assert.Contains(t, res.Headline(), "do not differ: bad − good = ")
}
