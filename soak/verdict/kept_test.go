package verdict

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/relaysoak/relaysoak/soak/rundir"
)

// indigoLike is a healthy relay whose live heap climbs 70 MiB in 75 s.
func indigoLike() goProcess {
	return goProcess{minutes: 60, keptMiB: 180, toothMiB: 70, toothS: 75, noiseMiB: 6}
}

func TestFloorsOfASawtooth(t *testing.T) {
	run := indigoLike().run(1)
	floors, th, why := Floors(run.Kept, Config{})
	require.Empty(t, why)
	assert.InDelta(t, 75, th.PeriodS, 10)
	assert.InDelta(t, 1.5*th.PeriodS, th.WindowS, 1e-9)
	assert.InDelta(t, 3600/th.WindowS, len(floors), 2, "one floor a window")
	for _, f := range floors {
		assert.InDelta(t, 180, f.Bytes/mib, 12, "a floor is what is kept, give or take the sampling's phase in a tooth")
	}
	k := Kept{Teeth: th}
	assert.Equal(t, floors, k.Of(run.Kept), "the floors judged are the floors drawn")

	_, _, why = Floors(run.Kept[:20], Config{})
	assert.Contains(t, why, "floors not yet", "three minutes hold too few teeth")
	slow := indigoLike()
	slow.toothS = 600
	_, th, why = Floors(slow.run(1).Kept, Config{})
	assert.False(t, th.Found())
	assert.Contains(t, why, "too slow")
}

// The classes, each over fixed seeds, with the OS's view beside the
// floors; a fresh sweep (VERDICT_SEEDS) holds "no false LEAK".
func TestKeptClasses(t *testing.T) {
	leak := func(rate float64) goProcess { g := indigoLike(); g.leak = rate; return g }
	pinning := indigoLike()
	pinning.pinMiB = 120
	stepped := indigoLike()
	stepped.stepMiB, stepped.stepMin = 40, 12
	retained := indigoLike()
	retained.retained = 120
	cases := []struct {
		name string
		g    goProcess
		want []Verdict // acceptable verdicts
	}{
		{"flat", indigoLike(), []Verdict{Pass}},
		{"bounded pinning (RSS keeps a running maximum)", pinning, []Verdict{Pass, Inconclusive}},
		{"floors step up once as the crowd fills", stepped, []Verdict{Pass, Inconclusive}},
		{"leak 60 MiB/h", leak(60), []Verdict{Leak}},
		{"leak 300 MiB/h", leak(300), []Verdict{Leak}},
		{"RSS grows, the heap does not", retained, []Verdict{Retained}},
	}
	seeds := []uint64{1, 2, 3, 4, 5}
	for _, s := range librarySeeds(t, 0) {
		seeds = append(seeds, uint64(s))
	}
	for _, c := range cases {
		for _, seed := range seeds {
			t.Run(fmt.Sprintf("%s/seed=%d", c.name, seed), func(t *testing.T) {
				run := c.g.run(seed)
				rep, err := JudgeRun(run, Config{})
				require.NoError(t, err)
				require.NotNil(t, rep.Kept)
				require.Empty(t, rep.Kept.NotYet)
				assert.Contains(t, c.want, rep.Verdict, "%s", rep.Reason)
				assert.Equal(t, FloorsSignal(rundir.SignalLiveHeap), rep.CarriedBy)
				assert.Equal(t, rundir.SignalRssAnon, rep.Kept.OSView)
				assert.Equal(t, rundir.SignalRssAnon, rep.SampledSignal(), "the floors have no column: the OS's view is what was sampled")
				if c.g.leak > 0 {
					assert.InEpsilon(t, c.g.leak, rep.SlopeMiBPerHour, 0.25, "the slope is what is kept")
				}
				if rep.Verdict == Leak && c.g.leak == 0 {
					t.Errorf("false LEAK: %s", rep.Reason)
				}
			})
		}
	}
}

// The floors cannot see a process killed for memory: an OOM sawtooth in
// the OS's view is a LEAK whatever the floors say; without a live heap,
// or before its teeth, the OS's view carries the verdict alone.
func TestKeptDefersToTheOSView(t *testing.T) {
	flat := Result{Signal: FloorsSignal(rundir.SignalLiveHeap), Verdict: Pass, Reason: "flat"}
	v, _ := classify(flat, Result{Signal: rundir.SignalRssAnon, Verdict: Leak, OOMSawtooth: true, Reason: "restarts"})
	assert.Equal(t, Leak, v)
	v, _ = classify(flat, Result{Signal: rundir.SignalRssAnon, Verdict: Crashed})
	assert.Equal(t, Crashed, v)
	v, why := classify(Result{Verdict: Inconclusive, Reason: "too little data"}, Result{Signal: rundir.SignalRssAnon, Verdict: Leak})
	assert.Equal(t, Inconclusive, v)
	assert.Contains(t, why, "cannot tell yet")

	run := indigoLike().run(1)
	short := run
	short.Kept = run.Kept[:20]
	rep, err := JudgeRun(short, Config{})
	require.NoError(t, err)
	require.NotNil(t, rep.Kept)
	assert.Contains(t, rep.Kept.NotYet, "floors not yet")
	assert.Equal(t, rundir.SignalRssAnon, rep.CarriedBy)
	assert.Equal(t, rundir.SignalRssAnon, rep.SampledSignal())

	run.Kept = nil
	rep, err = JudgeRun(run, Config{})
	require.NoError(t, err)
	assert.Nil(t, rep.Kept)
	assert.Equal(t, rundir.SignalRssAnon, rep.CarriedBy)
}

// LiveKept, fed one sample at a time, finds the teeth once there are four,
// then keeps the same floors the final judgement takes, and ends on the
// same class; what it holds stays bounded.
func TestLiveKeptFollowsTheFloors(t *testing.T) {
	g := indigoLike()
	g.leak = 120
	run := g.run(3)
	k := NewLiveKept(Config{})
	sys, err := Judge(run.Signals[rundir.SignalRssAnon], run.Context, Config{})
	require.NoError(t, err)
	for i, p := range run.Kept {
		k.Add(p)
		if i == 5 {
			v := k.Judge(sys, Context{})
			assert.Contains(t, v.NotYet, "floors not yet", "a minute holds too few teeth")
		}
		assert.LessOrEqual(t, len(k.recent), maxRecent)
	}
	require.True(t, k.teeth.Found())
	assert.Nil(t, k.recent, "once teeth are found, no raw samples are kept")
	want, _, why := Floors(run.Kept, Config{})
	require.Empty(t, why)
	got := k.floors
	assert.InDelta(t, len(want), len(got), 2)

	v := k.Judge(sys, Context{})
	assert.Empty(t, v.NotYet)
	assert.Equal(t, Leak, v.Verdict, v.Reason)
	assert.InEpsilon(t, 120, v.Floors.SlopeMiBPerHour, 0.25)

	week := NewLiveKept(Config{})
	for i := range 5000 {
		week.keep(Point{T: float64(i), Bytes: 1})
	}
	assert.LessOrEqual(t, len(week.floors), maxLiveFloors, "a week of floors stays bounded")
	assert.True(t, slices.IsSortedFunc(week.floors, func(a, b Point) int { return cmp.Compare(a.T, b.T) }))
}

// goroutineCount is a relay's goroutines every 10 s: a level reached as
// hosts connect over the first minutes, consumers coming and going around
// it, and perHour more kept.
func goroutineCount(seed uint64, level, perHour float64) Series {
	rng := rand.New(rand.NewPCG(seed, 0x676f))
	var s Series
	for t := 0.0; t <= 3600; t += 10 {
		v := level*(1-math.Exp(-t/120)) + perHour*t/3600 + float64(rng.IntN(40))
		s = append(s, Point{T: t, Bytes: math.Round(v)})
	}
	return s
}

// Goroutines that climb while the heap's floors are flat make the run a
// LEAK, with memory's own verdict kept beside it; growth under the gate
// (60 an hour, 2% of the level) or a flat count change nothing.
func TestGoroutinesAreKeptMemoryToo(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		run := indigoLike().run(seed)
		run.Goroutines = goroutineCount(seed, 5000, 400)
		rep, err := JudgeRun(run, Config{})
		require.NoError(t, err)
		require.NotNil(t, rep.Goroutines)
		assert.Equal(t, Leak, rep.Verdict, "seed %d: %s", seed, rep.Reason)
		assert.Equal(t, Pass, rep.MemoryVerdict, "seed %d: the floors are flat", seed)
		assert.Contains(t, rep.Reason, "goroutines grow")
		assert.InEpsilon(t, 400, rep.Goroutines.SlopeMiBPerHour, 0.2, "seed %d: goroutines an hour", seed)
		assert.InDelta(t, 5000+400+20, rep.Goroutines.LevelMiB, 60, "seed %d: the count, not MiB", seed)
		assert.InDelta(t, 104, rep.Goroutines.GateMiBPerHour, 5, "2% of the median count, about 5,200, an hour")

		for _, g := range []Series{goroutineCount(seed, 5000, 0), goroutineCount(seed, 5000, 40)} {
			run.Goroutines = g
			rep, err = JudgeRun(run, Config{})
			require.NoError(t, err)
			assert.Equal(t, Pass, rep.Verdict, "seed %d: %s", seed, rep.Reason)
			assert.Empty(t, rep.MemoryVerdict)
			assert.NotEqual(t, Leak, rep.Goroutines.Verdict)
		}
	}
}
