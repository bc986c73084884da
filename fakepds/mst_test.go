package fakepds

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/repo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Young repositories are where the MST's top changes height: a key at a
// raised height is created and deleted while the tree is small. Every
// commit must still invert to its prevData under indigo's own check (a
// non-canonical root once failed about one commit in 50,000 at the relay).
func TestYoungRepositoriesInvertExactly(t *testing.T) {
	f, err := New(Config{Hosts: 1, AccountsPerHost: 1})
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(11, 12))
	ctx := context.Background()
	failed, total := 0, 0
	for k := 0; k < 4000; k++ {
		a, err := f.createAccount(0)
		require.NoError(t, err)
		for i := 0; i < 12; i++ {
			if i == 0 || rng.IntN(5) == 0 {
				_, err := a.syncEvent(ctx)
				require.NoError(t, err)
			}
			evt, err := a.commit(ctx, a.nextOps(1, rng, 4), commitOptions{})
			require.NoError(t, err)
			evt.Time = wireTime(time.Now())
			total++
			if _, err := repo.VerifyCommitMessage(ctx, evt); err != nil {
				failed++
				t.Logf("%s: %v", a.did, err)
			}
		}
	}
	assert.Zero(t, failed, "of %d commits", total)
}
