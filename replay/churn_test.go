package replay

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/relaysoak/relaysoak/fakepds"
)

// The replay decides what comes next: each kind at its rate per 1,000
// frames, a zero rate that kind never, the rest commits.
func TestChurnPicksEachKindAtItsRate(t *testing.T) {
	c := Churn{Identity: 50, KeyRotation: 0.2, NewAccount: 20, Move: 0, Status: 10, Sync: 30}
	require.NoError(t, c.validate(false))
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 400_000
	got := map[fakepds.Event]float64{}
	for i := 0; i < n; i++ {
		got[c.pick(rng)]++
	}
	per := func(ev fakepds.Event) float64 { return got[ev] * 1000 / n }
	assert.InDelta(t, 40, per(fakepds.EventIdentity), 1.5)
	assert.InDelta(t, 10, per(fakepds.EventKeyRotation), 1)
	assert.InDelta(t, 20, per(fakepds.EventNewAccount), 1)
	assert.Zero(t, got[fakepds.EventMove], "a zero rate turns that kind off alone")
	assert.InDelta(t, 10, per(fakepds.EventStatus), 1)
	assert.InDelta(t, 30, per(fakepds.EventSync), 1.5)
	assert.InDelta(t, 890, per(fakepds.EventCommit), 3)

	none := Churn{}
	for i := 0; i < 1000; i++ {
		require.Equal(t, fakepds.EventCommit, none.pick(rng))
	}
	assert.Error(t, Churn{Identity: -1}.validate(false))
	assert.Error(t, Churn{KeyRotation: 2}.validate(false))
	assert.Error(t, Churn{Identity: 600, Sync: 600}.validate(false))
}
