package fakepds

import (
	"context"
	"math/rand/v2"
)

// mix is a test's event mix: events per 1,000 performed, the rest commits.
// In runs, package replay decides what comes next; tests here only need
// some of everything.
type mix map[Event]float64

// writeMix performs one event drawn from m, on a random host.
func writeMix(ctx context.Context, f *Fleet, rng *rand.Rand, m mix) error {
	r := rng.Float64() * 1000
	ev := EventCommit
	for _, e := range Events[1:] {
		if r < m[e] {
			ev = e
			break
		}
		r -= m[e]
	}
	_, err := f.Perform(ctx, ev, rng.IntN(len(f.hosts)), rng)
	return err
}
