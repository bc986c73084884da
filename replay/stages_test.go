package replay

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/relaysoak/relaysoak/fakepds"
)

func TestStagedDueIsTheIntegralOfRate(t *testing.T) {
	p := staged{base: Schedule{Target: 100}, of: stageFrames,
		stages: []Stage{{Start: 10 * time.Second, Frames: 2.5}, {Start: 20 * time.Second}}}
	assert.InDelta(t, 1000, p.Due(10*time.Second), 1e-9, "baseline before the first stage")
	assert.InDelta(t, 1000+1250, p.Due(15*time.Second), 1e-9)
	assert.InDelta(t, 3500, p.Due(20*time.Second), 1e-9)
	assert.InDelta(t, 4500, p.Due(30*time.Second), 1e-9, "a stage leaving the factor 0 is its baseline")
	assert.Equal(t, 250.0, p.Rate(15*time.Second))
	assert.Equal(t, 100.0, p.Rate(25*time.Second))
	var sum float64
	for ms := 0; ms < 30000; ms++ {
		sum += p.Rate(time.Duration(ms)*time.Millisecond+500*time.Microsecond) / 1000
	}
	assert.InDelta(t, p.Due(30*time.Second), sum, 1)

	assert.ErrorContains(t, validateStages([]Stage{{Start: 2 * time.Second}, {Start: time.Second}}), "each after the one before")
	assert.ErrorContains(t, validateStages([]Stage{{Frames: -1}}), "non-negative")
	assert.NoError(t, validateStages(nil))
}

// With churn per second on its own clock, raising the frame rate leaves
// churn where it was, and raising churn leaves the frames: the factors an
// attribution plan varies really move apart. A real fleet with no
// subscribers takes the writes.
func TestChurnPerSecondMovesApartFromFrames(t *testing.T) {
	f, err := fakepds.New(fakepds.Config{Hosts: 4, AccountsPerHost: 2})
	require.NoError(t, err)
	defer f.Close()
	seg := 1500 * time.Millisecond
	r, err := New(f, Config{Rate: 200, Duration: 3 * seg, ChurnPerSecond: true, Churn: &Churn{Identity: 40},
		Stages: []Stage{{Start: seg, Frames: 2.5}, {Start: 2 * seg, Churn: 2.5}}})
	require.NoError(t, err)
	before := f.Stats()
	rep, err := r.Run(context.Background())
	require.NoError(t, err)
	st := f.Stats()
	commits, identities := float64(st.Commits-before.Commits), float64(st.Identity-before.Identity)
	// Frames: 200/s, 500/s, 200/s; identity: 40/s, 40/s, 100/s.
	assert.InEpsilon(t, 200*1.5+500*1.5+200*1.5, commits, 0.06, "commits follow the frames' stages alone")
	assert.InEpsilon(t, 40*1.5+40*1.5+100*1.5, identities, 0.12, "identity events follow the churn's stages alone")
	assert.Equal(t, int64(st.Commits-before.Commits+st.Identity-before.Identity+st.Account-before.Account+st.Sync-before.Sync), rep.Frames,
		"the report counts churn's frames too")

	_, err = New(f, Config{Rate: 10, ChurnPerSecond: true, Churn: &Churn{Identity: 5000}})
	assert.NoError(t, err, "per second, churn may outnumber frames")
	_, err = New(f, Config{Rate: 10, Churn: &Churn{Identity: 5000}})
	assert.Error(t, err, "per 1,000 frames it may not")
}
