package replay

import (
	"context"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/relaysoak/relaysoak/fakepds"
)

func TestScheduleDueIsTheIntegralOfRate(t *testing.T) {
	s := Schedule{Target: 100, RampUp: 10 * time.Second}
	assert.InDelta(t, 0, s.Due(0), 1e-9)
	assert.InDelta(t, 500, s.Due(10*time.Second), 1e-9, "a linear ramp sends half")
	assert.InDelta(t, 1500, s.Due(20*time.Second), 1e-9)
	assert.InDelta(t, 50, s.Rate(5*time.Second), 1e-9)

	b, err := Burst{Factor: 3, Length: 5 * time.Second, Every: 20 * time.Second}.withDefaults()
	require.NoError(t, err)
	s = Schedule{Target: 100, Burst: b}
	assert.Equal(t, 100.0, s.Rate(19*time.Second))
	assert.Equal(t, 300.0, s.Rate(21*time.Second), "first burst starts one period in")
	assert.Equal(t, 100.0, s.Rate(26*time.Second))
	assert.Equal(t, 300.0, s.Rate(41*time.Second))
	assert.InDelta(t, 100*60+2*100*10, s.Due(60*time.Second), 1e-6, "two whole bursts by 60 s")
	// Due is the integral of Rate, numerically.
	var sum float64
	for ms := 0; ms < 60000; ms++ {
		sum += s.Rate(time.Duration(ms)*time.Millisecond+500*time.Microsecond) / 1000
	}
	assert.InDelta(t, s.Due(60*time.Second), sum, 1)

	_, err = Burst{Factor: 2, Length: time.Minute, Every: time.Minute}.withDefaults()
	assert.ErrorContains(t, err, "never ends")
	assert.ErrorContains(t, Schedule{Target: -1}.validate(), "rate must be a positive")
}

func TestScheduledAtInvertsDue(t *testing.T) {
	s := Schedule{Target: 1000}
	el := 2 * time.Second
	// At 2 s, 2000 frames are due; frame 1499 (the 1500th) was due at 1.5 s.
	assert.InDelta(t, 1.5, scheduledAt(1499, el, s.Due(el), s.Rate(el)).Seconds(), 1e-6)
	r := &Replayer{sched: Schedule{Target: 100, RampUp: 10 * time.Second}}
	// With the ramp, frame n is due when 100 t²/20 = n+1.
	for _, n := range []int64{0, 99, 499, 1499} {
		want := math.Sqrt(float64(n+1) * 20 / 100)
		if n+1 > 500 {
			want = 10 + float64(n+1-500)/100
		}
		assert.InDelta(t, want, r.dueOf(n).Seconds(), 1e-5, "frame %d", n)
	}
}

// A fleet that stalls once: a real fleet, with one write held up, the way
// a descheduled writer or a GC pause holds a sender up.
type stallingFleet struct {
	*fakepds.Fleet
	after time.Time
	stall time.Duration
	once  atomic.Bool
}

func (s *stallingFleet) Perform(ctx context.Context, ev fakepds.Event, i int, rng *rand.Rand) (int, error) {
	if time.Now().After(s.after) && s.once.CompareAndSwap(false, true) {
		time.Sleep(s.stall)
	}
	return s.Fleet.Perform(ctx, ev, i, rng)
}

func TestRehostedPacerIsAccurateAndCatchesUp(t *testing.T) {
	n := startNet(t, fakepds.Config{Hosts: 20, AccountsPerHost: 2})
	c := n.collectAll(t)
	// One worker, stalled for 600 ms after 1 s: the frames due meanwhile
	// must go out late, not never.
	sf := &stallingFleet{Fleet: n.fleet, after: time.Now().Add(time.Second), stall: 600 * time.Millisecond}
	const rate, dur = 400.0, 4 * time.Second
	var wins []Window
	r, err := New(sf, Config{Rate: rate, Duration: dur, Workers: 1, Window: time.Second, Churn: NoChurn, OnWindow: func(w Window) { wins = append(wins, w) }})
	require.NoError(t, err)
	rep, err := r.Run(context.Background())
	require.NoError(t, err)
	t.Logf("frames %d in %s, lateness %+v", rep.Frames, rep.Elapsed, rep.Lateness)
	for _, w := range wins {
		t.Logf("window %d: %d frames (target %.0f), p50 %s p99 %s", w.Index, w.Frames, w.Target, w.Lateness.P50, w.Lateness.P99)
	}
	assert.InDelta(t, rate*dur.Seconds(), float64(rep.Frames), rate*dur.Seconds()*0.02, "the schedule catches up after a stall")
	assert.GreaterOrEqual(t, rep.Lateness.Max, 400*time.Millisecond, "the stall shows as lateness")
	assert.Less(t, rep.Lateness.P50, 20*time.Millisecond)
	require.Len(t, wins, 4)
	// The window after the stall sends more than its share: catching up.
	assert.Greater(t, wins[2].Frames+wins[1].Frames, int64(0.95*2*rate))
	assert.Zero(t, rep.Errors, "%v", rep.FirstErrors)
	// Frames the fleet emitted (each account's first #sync included) are the frames counted.
	s := n.fleet.Stats()
	assert.Equal(t, uint64(rep.Frames), s.Commits+s.Sync)
	assert.Eventually(t, func() bool { return len(c.all()) == int(rep.Frames) }, 5*time.Second, 20*time.Millisecond)
}

func TestLatenessPercentiles(t *testing.T) {
	l := newLateness()
	for i := 1; i <= 1000; i++ {
		l.observe(time.Duration(i) * time.Millisecond)
	}
	s := l.run.Summary()
	assert.Equal(t, uint64(1000), s.Count)
	assert.InEpsilon(t, 500*time.Millisecond, s.P50, 0.06)
	assert.InEpsilon(t, 990*time.Millisecond, s.P99, 0.06)
	assert.Equal(t, time.Second, s.Max)
	assert.InEpsilon(t, 500.5*float64(time.Millisecond), float64(s.Mean), 0.001)
	l.observe(-time.Second) // early: counts as on time
	assert.Equal(t, uint64(1001), l.window.Take().Count)
	assert.Zero(t, l.window.Summary().Count, "take empties the window")
	assert.Equal(t, uint64(1001), l.run.Summary().Count, "and not the run")
}
