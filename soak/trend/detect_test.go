package trend

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestTimeToDetect logs the time-to-detect table: a relay leaking 290 MiB/hour
// that would plateau at 1.5 GiB after its warm-up, sampled every 10 s, judged
// on growing prefixes of its series a minute apart. It reports the minutes of
// post-warm-up data (after 3τ) until the first LEAK, and the slope then; the
// goal is at most 30 minutes whatever the warm-up, so an afternoon's soak
// gives a verdict. The slope at
// the first call is rougher than later on (single draws +55% under a big GC
// sawtooth, when the warm-up's tail is still in a short window): the median
// over the seeds is held to 25%.
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
		var slopes []float64
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
					break
				}
			}
			got = append(got, fmt.Sprintf("%.0f (%.0f)", minutes, slope))
			assert.Greater(t, minutes, 0.0, "%s seed %d: never LEAK within 90 min", sc.name, seed)
			assert.LessOrEqual(t, minutes, 30.0, "%s seed %d: goal is ≤ 30 min of post-warm-up data", sc.name, seed)
			if minutes > 0 {
				slopes = append(slopes, slope)
			}
		}
		if len(slopes) > 0 {
			assert.InDelta(t, 290, median(slopes), 0.25*290, "%s: median slope at the first LEAK %v", sc.name, slopes)
		}
		fmt.Fprintf(&table, "%-30s %v\n", sc.name, got)
	}
	t.Log(table.String())
}
