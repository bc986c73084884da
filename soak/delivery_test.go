package soak

import (
	"fmt"
	"testing"

	"github.com/relaysoak/relaysoak/soak/firehose"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Commits written at 100/s and delivered 2 s later: each interval
// delivers all that was due, however the lag compares with the interval.
func TestDeliveryTrackCountsCommitsInFlight(t *testing.T) {
	for _, lag := range []float64{0.5, 2, 25} {
		var d deliveryTrack
		var got []float64
		for s := 10.0; s <= 600; s += 10 {
			written := 100 * s
			delivered := max(0, 100*(s-lag))
			if r, ok := d.add(s, written, delivered, lag); ok {
				got = append(got, r)
			}
		}
		assert.NotEmpty(t, got, "lag %g s", lag)
		for _, r := range got {
			assert.InDelta(t, 1, r, 1e-9, "lag %g s: nothing is lost", lag)
		}
	}
}

// A host that goes dark for a minute shows in the intervals it covers, and
// only there.
func TestDeliveryTrackShowsALossInItsInterval(t *testing.T) {
	var d deliveryTrack
	delivered := 0.0
	worst, n := 1.0, 0
	for s := 10.0; s <= 3600; s += 10 {
		if s > 1200 && s <= 1260 {
			delivered += 8000 // a fifth of the 1,000/s lost for a minute
		} else {
			delivered += 10000
		}
		if r, ok := d.add(s, 1000*s, delivered, 0); ok {
			n++
			worst = min(worst, r)
			if s <= 1200 || s > 1260 {
				assert.InDelta(t, 1, r, 1e-9, "at %g s", s)
			}
		}
	}
	assert.InDelta(t, 0.8, worst, 1e-9)
	assert.Equal(t, 359, n, "every interval after the first")
}

// The ring is bounded: a week of samples keeps maxTrack of them, and a lag
// longer than the ring reaches back to its oldest.
func TestDeliveryTrackIsBounded(t *testing.T) {
	var d deliveryTrack
	for s := 10.0; s <= 7*24*3600; s += 10 {
		d.add(s, 100*s, 100*s, 5)
	}
	assert.Len(t, d.t, maxTrack)
	// Past the ring's wrap, what was due is still read right: all of it,
	// one lag before.
	week := 7 * 24 * 3600.0
	r, ok := d.add(week+5, 100*(week+5), 100*(week+5), 5)
	require.True(t, ok)
	assert.InDelta(t, 1, r, 1e-9)
	assert.InDelta(t, 100*week, d.latest().due, 1e-6)
	_, ok = d.add(week+10, 100*(week+10), 100*(week+10), 1e6)
	assert.False(t, ok, "a lag past the ring: nothing newly due")
}

func TestHostsShortNamesTheMostMissingFirst(t *testing.T) {
	written := map[string]uint64{"a": 100, "b": 200, "c": 50, "d": 10}
	delivered := map[string]firehose.HostCounts{"a": {Commits: 100}, "b": {Commits: 170}, "c": {Commits: 20}, "d": {Commits: 12}}
	got := hostsShort(written, delivered)
	require.Len(t, got, 2, "hosts that delivered all (or more, after a move) are not short")
	assert.Equal(t, "b", got[0].Host)
	assert.Equal(t, uint64(30), got[0].Missing())
	assert.Equal(t, "c", got[1].Host)
	many := map[string]uint64{}
	for i := range 50 {
		many[fmt.Sprintf("h%02d", i)] = uint64(i + 1)
	}
	assert.Len(t, hostsShort(many, nil), maxHostsShort, "the list is bounded")
}
