package harness_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/relaysoak/relaysoak/fakepds"
	"github.com/relaysoak/relaysoak/relay"
	"github.com/relaysoak/relaysoak/replay"
	"github.com/relaysoak/relaysoak/soak/harness"
	"github.com/relaysoak/relaysoak/soak/harness/harnesstest"
)

// The indigo relay resolves DIDs at https://plc.directory, the real
// network's name, mapped to the fleet by the container's hosts file and
// served with a certificate from the run's CA, under strict validation. The
// PLC answers with jittered latency and no keep-alive, so every resolution
// pays for a new TLS connection; the fleet's own metrics must show the
// resolver at work through the whole run, not only at start-up.
func TestE2EIndigoPLCDirectory(t *testing.T) {
	const (
		hosts    = 20
		rate     = 30.0 // frames/s across the fleet
		duration = 60 * time.Second
		sampling = 2 * time.Second
	)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rg := harnesstest.Start(t, ctx, harness.Config{
		Fleet: fakepds.Config{
			Hosts:      hosts,
			PLCAliases: []string{"plc.directory"},
			PLC:        fakepds.PLCBehaviour{Latency: 5 * time.Millisecond, Jitter: 5 * time.Millisecond, NoKeepAlive: true},
		},
		// More identity churn than the default keeps the resolver busy at
		// this modest rate (each #identity purges the relay's cache).
		Relay:        relay.Config{Memory: 1 << 30, Profile: &relay.Indigo{}, PLCURL: "https://plc.directory"},
		MetricsEvery: sampling,
	})

	hostsFile, err := os.ReadFile(filepath.Join(rg.RunDir(), "hosts"))
	require.NoError(t, err)
	assert.Contains(t, string(hostsFile), "\tplc.directory\n", "the relay's hosts file sends plc.directory to the fleet")

	// Sample the fleet's own PLC counter, as a Prometheus scrape would.
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(rg.Collector()))
	var (
		mu      sync.Mutex
		samples []harness.Point
	)
	sample := func() {
		mfs, err := reg.Gather()
		if !assert.NoError(t, err) {
			return
		}
		for _, mf := range mfs {
			if mf.GetName() == "relaysoak_fleet_plc_requests_total" {
				mu.Lock()
				samples = append(samples, harness.Point{At: time.Now(), Value: mf.Metric[0].GetCounter().GetValue()})
				mu.Unlock()
			}
		}
	}
	wctx, stopSampling := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(sampling)
		defer tick.Stop()
		for {
			sample()
			select {
			case <-wctx.Done():
				return
			case <-tick.C:
			}
		}
	}()

	start := time.Now()
	require.NoError(t, harnesstest.Write(ctx, rg, rate, duration, &replay.Churn{Identity: 20}))
	stopSampling()
	wg.Wait()
	sample()
	rg.Drain(ctx, 10*time.Second, 30*time.Second)
	rep, err := rg.Finish(ctx)
	require.NoError(t, err)
	fs, fh := rep.Fleet, rep.Firehose
	t.Logf("fleet: %+v", fs)
	t.Logf("delivery %.4f (relay received %.0f of %d emitted); log counts %v; exit %s", rep.Delivery, rep.RelayReceived, fs.Commits, rep.LogCounts, rep.Exit)
	t.Logf("relaysoak_fleet_plc_requests_total: %v", samples)

	require.NotNil(t, rep.Exit)
	assert.True(t, rep.Exit.Expected, "relay died during the run: %s", rep.Exit)
	assert.InDelta(t, rate*duration.Seconds(), float64(fs.Commits+fs.Identity+fs.Account+fs.Sync), rate*duration.Seconds()*0.05)
	require.NotZero(t, fs.Commits)

	// Strict validation, and still ≥99% delivered.
	assert.GreaterOrEqual(t, rep.Delivery, 0.99)
	assert.Zero(t, fh.DecodeErrors)
	assert.Zero(t, fh.ErrorFrames)
	assert.Zero(t, fh.VerifyFailed, "%v", fh.Failures)
	assert.Zero(t, rep.LogCounts[relay.IndigoLogFailedHandling])
	assert.Zero(t, rep.LogCounts[relay.IndigoLogSkippedSig], "strict validation never skips a signature check")

	// The baseline for TestE2EIndigoPLCFaults: without fault settings
	// the relay's resolver never fails.
	if errs := rg.ResolveErrors(); assert.NotEmpty(t, errs) {
		assert.Zero(t, errs[len(errs)-1].Value, "atproto_identity_resolve_did{status=error} without PLC faults")
	}

	// The resolver reached the fleet by the name plc.directory (the only
	// PLC the relay knows) in every quarter of the run.
	require.NotZero(t, fs.PLCRequests)
	mu.Lock()
	defer mu.Unlock()
	for q := 0; q < 4; q++ {
		from, to := start.Add(duration*time.Duration(q)/4), start.Add(duration*time.Duration(q+1)/4)
		var in []harness.Point
		for _, p := range samples {
			if !p.At.Before(from) && !p.At.After(to.Add(sampling)) {
				in = append(in, p)
			}
		}
		if assert.GreaterOrEqual(t, len(in), 2, "samples in quarter %d", q+1) {
			assert.Greater(t, in[len(in)-1].Value, in[0].Value, "relaysoak_fleet_plc_requests_total must rise in quarter %d: %v", q+1, in)
		}
	}
}

// PLC fault settings reach the relay's resolver for the whole run, not only
// at start-up: with half the PLC's answers failing and some connections
// reset, indigo's failed-resolution counter keeps rising in the last
// quarter. Delivery is not judged here: indigo drops what it cannot verify.
func TestE2EIndigoPLCFaults(t *testing.T) {
	const (
		rate     = 30.0
		duration = 40 * time.Second
	)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	rg := harnesstest.Start(t, ctx, harness.Config{
		Fleet: fakepds.Config{
			Hosts: 10, PLCAliases: []string{"plc.directory"},
			PLC: fakepds.PLCBehaviour{ErrorRate: 0.5, ResetRate: 0.1, Jitter: 5 * time.Millisecond},
		},
		// Each #identity purges the relay's cached document, so it resolves
		// again all through the run.
		Relay:        relay.Config{Memory: 1 << 30, PLCURL: "https://plc.directory"},
		MetricsEvery: 2 * time.Second,
	})
	start := time.Now()
	require.NoError(t, harnesstest.Write(ctx, rg, rate, duration, &replay.Churn{Identity: 60}))
	rep, err := rg.Finish(ctx)
	require.NoError(t, err)
	t.Logf("fleet: %+v; delivery %.4f", rep.Fleet, rep.Delivery)
	t.Logf("resolve errors: %v", rg.ResolveErrors())
	require.NotNil(t, rep.Exit)
	assert.True(t, rep.Exit.Expected, "relay died during the run: %s", rep.Exit)
	assert.NotZero(t, rep.Fleet.PLCErrors)
	assert.NotZero(t, rep.Fleet.PLCResets)

	var last []harness.Point
	for _, p := range rg.ResolveErrors() {
		if p.At.After(start.Add(duration * 3 / 4)) {
			last = append(last, p)
		}
	}
	require.GreaterOrEqual(t, len(last), 2, "resolver samples in the last quarter")
	assert.Greater(t, last[len(last)-1].Value, last[0].Value,
		"atproto_identity_resolve_did{status=error} must keep rising in the last quarter: %v", last)
}
