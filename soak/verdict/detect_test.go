package verdict

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/relaysoak/relaysoak/internal/stats"
)

// TestTimeToDetect logs the time-to-detect table: a relay leaking 290 MiB/hour
// that would plateau at 1.5 GiB after its warm-up, sampled every 10 s, judged
// on growing prefixes of its series a minute apart. It reports the minutes of
// post-warm-up data (after 3τ) until the first LEAK, and the slope then; the
// goal is at most 30 minutes whatever the warm-up, so an afternoon's soak
// gives a verdict. The slope at the first call is held to the range between
// the leak and what the series really grew by in the window the judge
// fitted after 3τ: the leak plus what is left of the warm-up there (5% of it at 3τ,
// which after a 2-hour warm-up still adds ~100 MiB/h to a call made 5 minutes
// later, and which the data cannot yet tell from the leak). Single draws are
// rough under a big GC sawtooth (+40%): the median distance from that range,
// relative to the leak, is held to 25%.
func TestTimeToDetect(t *testing.T) {
	type scenario struct {
		name   string
		warmup time.Duration // to 95% of the plateau (3τ); 0: already warm
		saw    bool
	}
	scenarios := []scenario{
		{"warm at start", 0, false},
		{"warm at start, GC sawtooth", 0, true},
		{"30 min warm-up", 30 * time.Minute, false},
		{"30 min warm-up, GC sawtooth", 30 * time.Minute, true},
		{"1 h warm-up, GC sawtooth", time.Hour, true},
		{"2 h warm-up, GC sawtooth", 2 * time.Hour, true},
	}
	seeds := librarySeeds(t, 3)
	var table strings.Builder
	fmt.Fprintf(&table, "\n%-30s %s\n", "290 MiB/h, 10 s samples", "minutes of post-warm-up data until LEAK (slope then), per seed")
	for _, sc := range scenarios {
		var got []string
		var errs []float64 // slope at the first LEAK: relative distance from [leak, true growth in its window]
		for _, seed := range seeds {
			rng := rand.New(rand.NewPCG(uint64(seed), 7))
			sp := Spec{
				Name: sc.name, Duration: sc.warmup + 90*time.Minute,
				BaseMiB: 100, WarmupMiB: 1436, LeakMiBPerHour: 290, NoiseMiB: 5,
			}
			if sc.warmup == 0 {
				sp.BaseMiB, sp.WarmupMiB = 1536, 0
			} else {
				sp.WarmupTau = sc.warmup / 3
			}
			if sc.saw {
				sp.SawtoothMiB = 50 + 100*rng.Float64()
				sp.SawtoothPeriod = time.Duration(60+240*rng.Float64()) * time.Second
			}
			tr := sp.Generate(seed)
			minutes, slope := -1.0, 0.0
			for post := 5 * time.Minute; post <= 90*time.Minute; post += time.Minute {
				end := (sc.warmup + post).Seconds()
				k, _ := slices.BinarySearchFunc(tr.Series, end, func(p Point, e float64) int {
					switch {
					case p.T < e:
						return -1
					case p.T > e:
						return 1
					}
					return 0
				})
				res, err := Judge(tr.Series[:k], tr.Ctx, Config{})
				if err != nil {
					continue
				}
				if res.Verdict == Leak {
					minutes, slope = post.Minutes(), res.SlopeMiBPerHour
					lo, hi := sp.LeakMiBPerHour, trueGrowth(sp, max(res.WindowStartS, sc.warmup.Seconds()), res.WindowEndS)
					errs = append(errs, (max(slope-hi, 0)-max(lo-slope, 0))/lo)
					break
				}
			}
			got = append(got, fmt.Sprintf("%.0f (%.0f)", minutes, slope))
			assert.Greater(t, minutes, 0.0, "%s seed %d: never LEAK within 90 min", sc.name, seed)
			assert.LessOrEqual(t, minutes, 30.0, "%s seed %d: goal is ≤ 30 min of post-warm-up data", sc.name, seed)
		}
		if len(errs) > 0 {
			assert.InDelta(t, 0, stats.Median(errs), 0.25, "%s: median distance of the slope at the first LEAK from [leak, true growth], relative to the leak %v", sc.name, errs)
		}
		fmt.Fprintf(&table, "%-30s %v\n", sc.name, got)
	}
	t.Log(table.String())
}

// trueGrowth is the noiseless series' mean growth from a to b seconds, in
// MiB/hour: the leak plus the warm-up's exponential tail (the sawtooth has no
// trend).
func trueGrowth(sp Spec, a, b float64) float64 {
	g := sp.LeakMiBPerHour
	if sp.WarmupMiB > 0 && b > a {
		tau := sp.WarmupTau.Seconds()
		g += sp.WarmupMiB * (math.Exp(-a/tau) - math.Exp(-b/tau)) / (b - a) * 3600
	}
	return g
}

// A strong leak (750 MiB/hour, the fastest the seed's operators saw) is
// called within ten minutes of post-warm-up data, not twenty; a flat series
// under the same noise never is, nor a steep warm-up that levels off. Its
// slope then is the leak's when the relay was warm from the start; after a
// warm-up, ten minutes cannot yet tell the leak from the warm-up's tail and
// the sawtooth, and the early slope errs high (up to about twice the leak:
// the run's later verdict, on a longer window, narrows it).
func TestStrongLeakIsCalledEarly(t *testing.T) {
	for _, seed := range append([]int64{1, 2, 3, 4, 5}, librarySeeds(t, 0)...) {
		for _, sc := range []struct {
			name string
			sp   Spec
			warm time.Duration
		}{
			{"warm at start", Spec{Duration: 40 * time.Minute, BaseMiB: 900, LeakMiBPerHour: 750, NoiseMiB: 5}, 0},
			{"10 min warm-up, GC sawtooth", Spec{Duration: 50 * time.Minute, BaseMiB: 300, WarmupMiB: 200, WarmupTau: 200 * time.Second,
				LeakMiBPerHour: 750, NoiseMiB: 5, SawtoothMiB: 60, SawtoothPeriod: 90 * time.Second}, 10 * time.Minute},
		} {
			tr := sc.sp.Generate(seed)
			called := -1.0
			for post := 2 * time.Minute; post <= 20*time.Minute && called < 0; post += time.Minute {
				end := (sc.warm + post).Seconds()
				k := 0
				for k < len(tr.Series) && tr.Series[k].T <= end {
					k++
				}
				res, err := Judge(tr.Series[:k], tr.Ctx, Config{})
				if err == nil && res.Verdict == Leak {
					called = post.Minutes()
					assert.GreaterOrEqual(t, res.SlopeMiBPerHour, 0.8*750, "%s seed %d: %s", sc.name, seed, res.Reason)
					if sc.warm == 0 {
						assert.InEpsilon(t, 750, res.SlopeMiBPerHour, 0.2, "%s seed %d: %s", sc.name, seed, res.Reason)
					} else {
						assert.LessOrEqual(t, res.SlopeMiBPerHour, 2.2*750, "%s seed %d: %s", sc.name, seed, res.Reason)
					}
				}
			}
			assert.Positive(t, called, "%s seed %d: never called within 20 min", sc.name, seed)
			assert.LessOrEqual(t, called, 10.0, "%s seed %d", sc.name, seed)
		}
		for _, healthy := range []Spec{
			{Duration: 20 * time.Minute, BaseMiB: 900, NoiseMiB: 5, SawtoothMiB: 60, SawtoothPeriod: 90 * time.Second},
			{Duration: 40 * time.Minute, BaseMiB: 300, WarmupMiB: 600, WarmupTau: 200 * time.Second, NoiseMiB: 5, SawtoothMiB: 60, SawtoothPeriod: 90 * time.Second},
		} {
			tr := healthy.Generate(seed)
			for k := 60; k <= len(tr.Series); k += 6 {
				res, err := Judge(tr.Series[:k], tr.Ctx, Config{})
				if assert.NoError(t, err) {
					assert.NotEqual(t, Leak, res.Verdict, "seed %d at %d samples: %s", seed, k, res.Reason)
				}
			}
		}
	}
}
