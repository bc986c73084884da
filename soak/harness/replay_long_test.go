package harness_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/relaysoak/relaysoak/fakepds"
	"github.com/relaysoak/relaysoak/relay"
	"github.com/relaysoak/relaysoak/replay"
	"github.com/relaysoak/relaysoak/soak/harness"
	"github.com/relaysoak/relaysoak/soak/harness/harnesstest"
)

// rehostedThroughIndigo runs re-hosted traffic shaped by the shared
// capture at rate over hosts into indigo (strict) for d, counting each
// window where the relay emits it.
func rehostedThroughIndigo(t *testing.T, rate float64, hosts int, d time.Duration) (replay.Report, harness.Report, []uint64) {
	p, err := replay.ProfileFromCapture(sharedCapture(t), replay.ShapeConfig{})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), d+10*time.Minute)
	defer cancel()
	rg := harnesstest.Start(t, ctx, harness.Config{
		Fleet:       fakepds.Config{Hosts: hosts, AccountsPerHost: 2, Shape: &p.Shape},
		Relay:       relay.Config{Memory: 4 << 30, Profile: &relay.Indigo{}},
		VerifyEvery: 20,
	})
	// Count the relay's output per window as the windows close: commits and
	// other events the relay emitted, read by the rig's consumer.
	var relayWindows []uint64
	last := uint64(0)
	outOf := func() uint64 {
		s := rg.Counts().Firehose
		return s.Commits + s.Identity + s.Account + s.Sync
	}
	r, err := replay.New(rg.Fleet(), replay.Config{Rate: rate, Duration: d, Churn: &p.Churn, OnWindow: func(w replay.Window) {
		time.Sleep(2 * time.Second) // the relay's own lag, then count
		n := outOf()
		relayWindows = append(relayWindows, n-last)
		last = n
		t.Logf("window %d: sent %d (target %.0f), relay emitted %d; lateness p50 %s p99 %s", w.Index, w.Frames, w.Target, relayWindows[len(relayWindows)-1], w.Lateness.P50, w.Lateness.P99)
	}})
	require.NoError(t, err)
	rep, err := r.Run(ctx)
	require.NoError(t, err)
	rg.Drain(ctx, 10*time.Second, time.Minute)
	res, err := rg.Finish(ctx)
	require.NoError(t, err)
	t.Logf("replay: %d frames in %s, lateness %+v, errors %d %v", rep.Frames, rep.Elapsed, rep.Lateness, rep.Errors, rep.FirstErrors)
	t.Logf("relay: delivery %.4f, firehose %+v, log counts %v, exit %s", res.Delivery, res.Firehose.Lag, res.LogCounts, res.Exit)
	return rep, res, relayWindows
}

// At RATE=700 HOSTS=2750 re-hosted, the rate the relay receives is within
// ±1% of the target in every 60-second window.
func TestLongRateAccuracy(t *testing.T) {
	if os.Getenv("RELAYSOAK_LONG") == "" {
		t.Skip("long tier: make test-long")
	}
	const rate = 700.0
	rep, res, relayWins := rehostedThroughIndigo(t, rate, 2750, 5*time.Minute)
	for i, w := range rep.Windows {
		if w.End-w.Start < time.Minute {
			continue // the last, partial window
		}
		assert.InEpsilon(t, w.Target, float64(w.Frames), 0.01, "window %d sent", i)
		if i < len(relayWins) {
			assert.InEpsilon(t, w.Target, float64(relayWins[i]), 0.01, "window %d as the relay emitted it", i)
		}
	}
	t.Logf("lateness p50 %s p99 %s", rep.Lateness.P50, rep.Lateness.P99)
	assert.GreaterOrEqual(t, res.Delivery, 0.99)
}

// At least ten minutes at production shape: ≥ 99% delivery and none of
// the relay warnings.
func TestLongProductionShapeRehosted(t *testing.T) {
	if os.Getenv("RELAYSOAK_LONG") == "" {
		t.Skip("long tier: make test-long")
	}
	rep, res, _ := rehostedThroughIndigo(t, 700, 2750, 10*time.Minute)
	assert.Zero(t, rep.Errors, "%v", rep.FirstErrors)
	assert.GreaterOrEqual(t, res.Delivery, 0.99)
	assert.Zero(t, res.Firehose.VerifyFailed, "%v", res.Firehose.Failures)
	for _, p := range []string{relay.IndigoLogFailedHandling, relay.IndigoLogBadPrevData, relay.IndigoLogBadInversion, relay.IndigoLogSkippedSig} {
		if !assert.Zero(t, res.LogCounts[p], "relay warning %q", p) {
			lines, _ := harness.GrepLog(res.LogPath, 10, p)
			t.Logf("first lines with %q:\n%s", p, strings.Join(lines, "\n"))
		}
	}
	require.NotNil(t, res.Exit)
	assert.True(t, res.Exit.Expected, "relay died: %s", res.Exit)
}
