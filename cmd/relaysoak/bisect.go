package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/relaysoak/relaysoak/relay"
	"github.com/relaysoak/relaysoak/soak"
	"github.com/relaysoak/relaysoak/soak/bisect"
	"github.com/relaysoak/relaysoak/soak/report"
	"github.com/relaysoak/relaysoak/soak/rundir"
)

func init() {
	register(command{name: "bisect", summary: "find the commit that made a relay keep more: an A/B soak per step over its git history", setup: setupBisect,
		about: "Builds the good and bad commits of a relay's git checkout (each in a temporary worktree, into an image cached by commit), judges bad against good with an A/B soak (step 0), then halves the commits between them, one A/B soak of the good build against each step's, until the first bad commit is found. bisect.md in runs/<id> names it; each step's A/B run is beside it."})
	register(command{name: "bisect-step", summary: "judge a checkout's HEAD against a baseline commit with one A/B soak, for git bisect run", setup: setupBisectStep,
		about: "Builds the checkout's HEAD (or --rev) and --baseline in temporary worktrees and judges HEAD against the baseline with one A/B soak of --duration. Exit status for git bisect run: 0 good, 1 bad, 125 skip (does not build, or the A/B could not tell), 128 the rig failed (stops git bisect)."})
}

// The flags a bisect sets per step: never the user's, never a repeated run's.
var bisectOwns = []string{"relay-image", "compare", "compare-profile", "compare-mem-limit", "attribute", "target-url"}

// buildFlags are how commits are built, shared by bisect and bisect-step;
// the returned function makes the builder once the profile is known.
func buildFlags(f *flags) func(relay.Profile) bisect.Builder {
	main := f.String("main", "", "the main package to build, relative to the checkout (default: the relay profile's, e.g. indigo's ./cmd/relay)")
	buildCmd := f.String("build-cmd", "", "build with this command instead (other languages, the repository's Dockerfile): run by sh in the worktree, given the worktree and the image tag to produce as $1 and $2 (and $WORKTREE, $TAG), e.g. 'docker build -t \"$TAG\" .'")
	f.Check(func() error {
		for _, n := range bisectOwns {
			if d := f.find(n); d.set && d.from == "" {
				return usagef("%s is set by %s itself (A is the good build, B each step's)", f.Where(n), f.cmd)
			}
		}
		if *main != "" && *buildCmd != "" {
			return usagef("%s and %s are two ways to build: give one", f.Where("main"), f.Where("build-cmd"))
		}
		return nil
	})
	f.KeepFromRecipe(bisectOwns...)
	return func(p relay.Profile) bisect.Builder {
		if *buildCmd != "" {
			return bisect.CmdBuilder{Cmd: *buildCmd, Name: p.Facts().Name}
		}
		return bisect.GoBuilder{Profile: p, Main: *main}
	}
}

// checkBuildable says, before anything runs, when the profile cannot be
// built from source and no other way was given.
func checkBuildable(f *flags, cfg soak.Config) error {
	if f.find("build-cmd").value.String() == "" && f.find("main").value.String() == "" && cfg.Profile.Facts().Build.Main == "" {
		return usagef("the %s profile does not say how to build it from source: give %s (a Go main package) or %s", cfg.Profile.Facts().Name, f.Where("main"), f.Where("build-cmd"))
	}
	return nil
}

// bisectDir is the bisect's directory: runs/<id>, the ID defaulting to
// the command and the start time.
func bisectDir(cfg soak.Config, cmd string) (string, string) {
	id := cfg.ID
	if id == "" {
		id = cmd + "-" + time.Now().UTC().Format("20060102-150405")
	}
	return filepath.Join(cfg.RunsDir, id), id
}

func setupBisect(f *flags) func([]string) int {
	config := soakFlags(f)
	source := f.InFile("relay-source", "", false, true, "the relay's git checkout (read only: each commit is built in a temporary worktree)")
	good := f.String("good", "", "a commit that keeps what it should (required)")
	bad := f.String("bad", "", "a later commit that keeps more (required), e.g. the one a nightly soak said LEAK on")
	builder := buildFlags(f)
	stepLength := f.Duration("step-length", 0, time.Minute, 48*time.Hour, "each step's length after step 0")
	f.Zero("the shortest that resolves step 0's difference")
	maxStep := f.Duration("max-step", 0, time.Minute, 48*time.Hour, "the longest a step may run: a step unclear at --step-length runs again this long before it is skipped")
	f.Zero("step 0's length (--duration)")
	f.Check(func() error {
		for _, n := range []string{"good", "bad"} {
			if f.find(n).value.String() == "" {
				return usagef("%s is required (a commit, tag or branch of %s)", f.Where(n), f.Where("relay-source"))
			}
		}
		return checkBuildable(f, config())
	})
	return func([]string) int {
		cfg := config()
		dir, id := bisectDir(cfg, "bisect")
		ctx, stop := soakContext()
		defer stop()
		res, err := bisect.Run(ctx, bisect.Config{Source: *source, Good: *good, Bad: *bad, Builder: builder(cfg.Profile), Soak: cfg,
			StepLength: *stepLength, MaxStep: *maxStep, Dir: dir, ID: id, Out: os.Stdout})
		if err != nil {
			code := exitFailed
			switch {
			case errors.Is(err, bisect.ErrUsage):
				code = exitUsage
			case errors.Is(err, bisect.ErrEndNotBuilt):
				code = exitNotStarted
			}
			fail("bisect", code, "%v", err)
			if code != exitUsage {
				fmt.Fprintln(os.Stderr, "relaysoak bisect: what it found so far is in", filepath.Join(dir, rundir.BisectReport))
			}
			return code
		}
		fmt.Printf("\n%s\nreport: %s\n", res.Headline(), filepath.Join(dir, rundir.BisectReport))
		switch {
		case res.First != nil:
			return exitOK
		case res.NotFound:
			return exitNotFound
		default:
			return exitInconclusive
		}
	}
}

func setupBisectStep(f *flags) func([]string) int {
	config := soakFlags(f)
	source := f.InFile("relay-source", ".", false, true, "the relay's git checkout, whose HEAD is judged (git bisect run checks each commit out there)")
	baseline := f.String("baseline", "", "the good commit HEAD is judged against (required)")
	rev := f.String("rev", "HEAD", "the revision judged")
	builder := buildFlags(f)
	resolve := f.Float("resolve", 0, 0.01, 1e9, "the bad end's difference, MiB/h, from an earlier A/B of good against bad: a commit that keeps half of it more than the baseline, or more, is bad; one whose interval stays under half is good")
	f.Zero("the verdict's effect-size gate")
	f.Check(func() error {
		if *baseline == "" {
			return usagef("%s is required (the good commit)", f.Where("baseline"))
		}
		return checkBuildable(f, config())
	})
	return func([]string) int {
		cfg := config()
		dir, id := bisectDir(cfg, "bisect-step")
		ctx, stop := soakContext()
		defer stop()
		s, err := bisect.Step(ctx, bisect.StepConfig{Source: *source, Baseline: *baseline, Rev: *rev, Builder: builder(cfg.Profile), Soak: cfg,
			Dir: dir, ID: id, Resolve: *resolve, Out: os.Stdout})
		if err != nil {
			// Not the commit's doing (a bad revision, a baseline that does
			// not build, the rig): under git bisect run it must stop the
			// bisect, not mark the commit.
			return fail("bisect-step", exitRigFailed, "%v (not the commit's doing: git bisect run stops here)", err)
		}
		fmt.Printf("\n%s %s: %s\nreport: %s\n", s.Commit.Short(), s.Verdict, s.Why, filepath.Join(dir, rundir.BisectReport))
		switch s.Verdict {
		case report.StepGood:
			return exitOK
		case report.StepBad:
			return exitLeak
		default:
			return exitSkip
		}
	}
}
