package harness_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/relaysoak/relaysoak/fakepds"
	"github.com/relaysoak/relaysoak/relay"
	"github.com/relaysoak/relaysoak/soak/harness"
	"github.com/relaysoak/relaysoak/soak/harness/harnesstest"
)

// End to end: 50 hosts, 50 frames/s for 60 s into the
// real indigo relay, strict validation, identity churn on, DIDs resolved
// over https with the run's CA.
func TestE2EIndigoStrict(t *testing.T) {
	const (
		hosts    = 50
		rate     = 50.0
		duration = 60 * time.Second
	)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rg := harnesstest.Start(t, ctx, harness.Config{
		Fleet:        fakepds.Config{Hosts: hosts},
		Relay:        relay.Config{Memory: 1 << 30, Profile: &relay.Indigo{}},
		MetricsEvery: 2 * time.Second,
	})

	start := time.Now()
	planted := make(chan string, 1)
	go func() {
		select {
		case <-time.After(duration / 2):
		case <-ctx.Done():
			return
		}
		did, err := rg.Fleet().PlantBadPrevData(ctx)
		assert.NoError(t, err)
		planted <- did
	}()
	require.NoError(t, harnesstest.Write(ctx, rg, rate, duration, nil))
	end := time.Now()
	rg.Drain(ctx, 10*time.Second, 30*time.Second)
	rep, err := rg.Finish(ctx)
	require.NoError(t, err)
	fs, fh := rep.Fleet, rep.Firehose
	t.Logf("fleet: %+v", fs)
	t.Logf("firehose: commits %d identity %d account %d sync %d info %d errors %d decode-errors %d gaps %d; verified %d failed %d skipped %d; with prevData %d",
		fh.Commits, fh.Identity, fh.Account, fh.Sync, fh.Info, fh.ErrorFrames, fh.DecodeErrors, fh.SeqGaps, fh.Verified, fh.VerifyFailed, fh.VerifySkipped, fh.CommitsWithPrevData)
	t.Logf("delivery %.4f (relay received %.0f of %d emitted); lag %+v", rep.Delivery, rep.RelayReceived, fs.Commits, fh.Lag)
	t.Logf("log counts: %v", rep.LogCounts)
	t.Logf("exit: %s", rep.Exit)

	// The relay ran the whole time and stopped when asked.
	require.NotNil(t, rep.Exit)
	assert.True(t, rep.Exit.Expected, "relay died during the run: %s", rep.Exit)
	assert.Equal(t, 0, rep.Exit.Code)

	// Load was what was asked (the writer's schedule is open: it catches up).
	assert.InDelta(t, rate*duration.Seconds(), float64(fs.Commits+fs.Identity+fs.Account+fs.Sync), rate*duration.Seconds()*0.05)
	require.NotZero(t, fs.Commits)

	// ≥99% delivered, and the relay's own counter agrees with the fleet.
	assert.GreaterOrEqual(t, rep.Delivery, 0.99)
	assert.InEpsilon(t, float64(fs.Commits), rep.RelayReceived, 0.01, "relay's repo_commits_received_counter vs fleet")
	assert.Zero(t, fh.DecodeErrors)
	assert.Zero(t, fh.ErrorFrames)

	// Every delivered commit verifies, except the planted one.
	var did string
	select {
	case did = <-planted:
	default:
		t.Fatal("the bad commit was never planted")
	}
	assert.Equal(t, fh.Commits, fh.Verified+fh.VerifyFailed, "complete verification in tests")
	assert.Zero(t, fh.VerifySkipped)
	if assert.Equal(t, uint64(1), fh.VerifyFailed, "only the planted commit fails: %v", fh.Failures) {
		assert.Contains(t, fh.Failures[0], did)
	}

	// Most commits come from accounts the relay had seen, so its prevData
	// and MST-inversion checks ran on them.
	assert.Greater(t, float64(fh.CommitsWithPrevData), 0.9*float64(fh.Commits))
	assert.Less(t, float64(rep.LogCounts[relay.IndigoLogFirstCommit]), 0.1*float64(fh.Commits))

	// Identity churn happened and reached the relay.
	assert.NotZero(t, fs.Identity)
	assert.NotZero(t, fh.Identity)

	// Nothing went wrong in the relay, apart from the planted commit's warning.
	// The planted commit's wrong prevData also fails the MST inversion
	// check: both warnings, once each, name the planted account.
	if !assert.Zero(t, rep.LogCounts[relay.IndigoLogFailedHandling]) {
		lines, _ := harness.GrepLog(rep.LogPath, 10, relay.IndigoLogFailedHandling)
		t.Logf("the relay's %q lines:\n%s", relay.IndigoLogFailedHandling, strings.Join(lines, "\n"))
	}
	assert.Zero(t, rep.LogCounts[relay.IndigoLogSkippedSig])
	for _, pattern := range []string{relay.IndigoLogBadPrevData, relay.IndigoLogBadInversion} {
		assert.Equal(t, 1, rep.LogCounts[pattern], "%q: exactly the planted commit", pattern)
		lines, err := harness.GrepLog(rep.LogPath, 5, pattern, did)
		require.NoError(t, err)
		assert.Len(t, lines, 1, "the relay's %q names the planted account %s", pattern, did)
	}

	// The resolver keeps working in the last quarter of the run.
	var inQuarter []harness.Point
	for _, p := range rg.Resolves() {
		if p.At.After(start.Add(duration * 3 / 4)) {
			inQuarter = append(inQuarter, p)
		}
	}
	require.GreaterOrEqual(t, len(inQuarter), 2, "resolver samples in the last quarter (ended %s)", end)
	assert.Greater(t, inQuarter[len(inQuarter)-1].Value, inQuarter[0].Value,
		"atproto_identity_resolve_did must keep rising in the last quarter: %v", inQuarter)
}

// A relay killed mid-run is reported with its exit code and log tail, and
// what the rig had measured until then is kept.
func TestE2ERelayKilledMidRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rg := harnesstest.Start(t, ctx, harness.Config{
		Fleet: fakepds.Config{Hosts: 10},
		Relay: relay.Config{Memory: 512 << 20, PollInterval: 100 * time.Millisecond},
	})
	go func() {
		// Kill once the relay has delivered something.
		for rg.Counts().Firehose.Commits < 100 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
		assert.NoError(t, rg.Relay().Kill(ctx, "SIGKILL"))
	}()
	require.NoError(t, harnesstest.Write(ctx, rg, 50, time.Minute, nil))
	select {
	case <-rg.Relay().Exited():
	default:
		t.Fatal("the writer ran its course: the kill was not noticed")
	}
	rep, err := rg.Finish(ctx)
	require.NoError(t, err)
	require.NotNil(t, rep.Exit)
	t.Logf("exit: %s", rep.Exit)
	assert.False(t, rep.Exit.Expected)
	assert.Equal(t, 137, rep.Exit.Code)
	assert.False(t, rep.Exit.OOMKilled)
	assert.NotEmpty(t, rep.Exit.Tail)
	assert.GreaterOrEqual(t, rep.Firehose.Commits, uint64(100), "what was collected before the kill is kept")
	assert.NotZero(t, rep.Firehose.Lag.Count)
	assert.NotEmpty(t, rep.RelayMetricsErr, "a dead relay has no metrics to scrape")
}

// A relay over its memory limit is reported as OOM-killed. GOGC=off makes
// indigo keep every allocation, so a 32 MiB limit is reached within
// seconds of traffic: a leak, compressed.
func TestE2ERelayOOMKilled(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rg := harnesstest.Start(t, ctx, harness.Config{
		Fleet: fakepds.Config{Hosts: 10},
		Relay: relay.Config{Memory: 32 << 20, PollInterval: 100 * time.Millisecond,
			Profile: &relay.Indigo{Env: map[string]string{"GOGC": "off"}}},
	})
	require.NoError(t, harnesstest.Write(ctx, rg, 200, 90*time.Second, nil))
	select {
	case <-rg.Relay().Exited():
	default:
		t.Fatal("the relay survived 90 s with GOGC=off in 32 MiB")
	}
	rep, err := rg.Finish(ctx)
	require.NoError(t, err)
	require.NotNil(t, rep.Exit)
	t.Logf("exit: %s", rep.Exit)
	assert.False(t, rep.Exit.Expected)
	assert.True(t, rep.Exit.OOMKilled)
	assert.Equal(t, 137, rep.Exit.Code)
	assert.NotEmpty(t, rep.Exit.Tail)
	assert.Contains(t, rep.Exit.String(), "OOM-killed")
	assert.NotZero(t, rep.Firehose.Commits, "what was collected before the OOM is kept")
}
