package harness_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/relaysoak/relaysoak/fakepds"
	"github.com/relaysoak/relaysoak/internal/promtext"
	"github.com/relaysoak/relaysoak/internal/testkit"
	"github.com/relaysoak/relaysoak/relay"
	"github.com/relaysoak/relaysoak/soak/harness"
	"github.com/relaysoak/relaysoak/soak/harness/harnesstest"
	"github.com/relaysoak/relaysoak/soak/leaks"
)

// zlay and rsky-relay cannot be built here; their profiles are tested
// against the test relay (soak/testdata/testrelay) in their flavours: it
// behaves like them where the profiles touch them: hosts from listHosts over
// https, wss:// hosts, DIDs at https://plc.directory, their ports and metric
// names.

const standinTag = "relaysoak/testrelay:test"

// standin is the stand-in (static) in its FROM scratch image, built once
// per test binary. Docker is required: a missing engine fails the test.
var standin = testkit.ImageOnce{Tag: standinTag, Build: func(ctx context.Context) (bool, error) {
	return relay.EnsureGoImage(ctx, "../testdata/testrelay", relay.ScratchImage{Tag: standinTag, Ports: []int{2470, 2471, 3000, 3001, 9000, 9100}})
}}

// standinImage is the stand-in's image, for a test in a container tier.
func standinImage(t *testing.T) string {
	t.Helper()
	testkit.RequireDocker(t)
	return standin.Require(t)
}

// The zlay profile: the stand-in reaches the fleet over TLS only (the CA
// mounted over the system bundle, no SSL_CERT_FILE), learns every host
// from the upstream face, resolves at plc.directory, delivers, serves
// zlay's memory gauges, and its leak report is read back after Stop.
func TestE2EZlayProfileAgainstStandIn(t *testing.T) {
	img := standinImage(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	prof := relay.Zlay(map[string]string{"FLAVOUR": "zlay", "LEAK_REPORTS": "2"})
	rg := harnesstest.Start(t, ctx, harness.Config{
		Fleet: fakepds.Config{Hosts: 10},
		Relay: relay.Config{Image: img, Profile: prof, Memory: 256 << 20},
	})
	assert.Equal(t, "https", rg.Fleet().PDSScheme(), "zlay dials wss:// only")

	require.NoError(t, harnesstest.Write(ctx, rg, 30, 15*time.Second, nil))
	rg.Drain(ctx, 5*time.Second, 20*time.Second)
	m, err := promtext.Scrape(ctx, rg.Relay().MetricsURL())
	require.NoError(t, err)
	for _, name := range prof.Facts().MemoryMetrics {
		v, ok := m.Sum(name, nil)
		assert.True(t, ok, "zlay gauge %s served", name)
		if name == "relay_process_rss_bytes" {
			assert.Greater(t, v, 0.0)
		}
	}
	hosts, _ := m.Sum("relay_hosts", nil)
	assert.Equal(t, 10.0, hosts, "every host learnt from listHosts")

	rep, err := rg.Finish(ctx)
	require.NoError(t, err)
	t.Logf("fleet %+v; delivery %.4f; exit %s", rep.Fleet, rep.Delivery, rep.Exit)
	n, last := rg.TLSHandshakeErrors()
	assert.Zero(t, n, "failed TLS handshakes: %s", last)
	require.NotZero(t, rep.Fleet.Commits)
	assert.GreaterOrEqual(t, rep.Delivery, 0.99)
	assert.NotZero(t, rep.Fleet.PLCRequests, "DIDs resolved at https://plc.directory")
	require.NotNil(t, rep.Exit)
	assert.True(t, rep.Exit.Expected)
	assert.Equal(t, 0, rep.Exit.Code)

	assert.Equal(t, 2, rep.LogCounts["error(gpa): memory address"], "leak report lines counted in the report")
	lr, err := leaks.FromLog(rep.LogPath)
	require.NoError(t, err)
	assert.Equal(t, 2, lr.Leaks, "the whole report was kept in relay.log")
	if assert.NotEmpty(t, lr.Sites) {
		assert.Len(t, lr.Sites[0].Frames, 2)
		assert.Equal(t, "resolveDid", lr.Sites[0].Where.Func)
	}
}

// The rsky profile with the relay as built upstream: its compiled-in roots
// refuse the run's CA, and the rig says so, naming the failed handshakes
// and the profile's reason, instead of reporting zero frames.
func TestE2ERskyProfileWithoutTheRunsCA(t *testing.T) {
	img := standinImage(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cfg := harness.Config{
		RunDir: t.TempDir(),
		Fleet:  fakepds.Config{Hosts: 3},
		Relay:  relay.Config{Image: img, Profile: relay.Rsky(map[string]string{"FLAVOUR": "rsky"}), Memory: 256 << 20},
		Log:    testkit.LogWriter{T: t},
		// Every handshake fails at once; a quarter of a minute shows it.
		ConnectWithin: 15 * time.Second,
	}
	runID := filepath.Base(cfg.RunDir)
	t.Cleanup(func() {
		testkit.AssertNoneLeft(t, relay.Label+".run="+runID)
	})
	r, err := harness.Start(ctx, cfg)
	if r != nil {
		assert.NoError(t, r.Close(context.Background()))
	}
	require.Error(t, err, "a relay that trusts no private CA cannot have connected")
	t.Logf("%v", err)
	assert.Contains(t, err.Error(), "connected to 0 of 3 hosts")
	assert.Contains(t, err.Error(), "failed TLS handshakes")
	assert.Contains(t, err.Error(), "does not trust the run's CA")
	assert.Contains(t, err.Error(), relay.RskyCATrustLimit)
}

// The rsky profile with a build that trusts the run's CA (the stand-in's
// TRUST_SYSTEM=1): hosts from RELAY_DISCOVERY_UPSTREAMS, wss://,
// /export polled at plc.directory, frames delivered, metrics on
// RELAY_METRICS_LISTEN.
func TestE2ERskyProfileTrustingTheRunsCA(t *testing.T) {
	img := standinImage(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	rg := harnesstest.Start(t, ctx, harness.Config{
		Fleet: fakepds.Config{Hosts: 5},
		Relay: relay.Config{Image: img, Memory: 256 << 20,
			Profile: relay.Rsky(map[string]string{"FLAVOUR": "rsky", "TRUST_SYSTEM": "1"})},
	})
	require.NoError(t, harnesstest.Write(ctx, rg, 30, 10*time.Second, nil))
	rg.Drain(ctx, 5*time.Second, 20*time.Second)
	m, err := promtext.Scrape(ctx, rg.Relay().MetricsURL())
	require.NoError(t, err)
	polls, _ := m.Sum("relay_plc_export_polls_total", nil)
	assert.GreaterOrEqual(t, polls, 1.0, "PLC /export polled at plc.directory")
	emitted, ok := m.Sum("relay_frames_emitted_total", nil)
	assert.True(t, ok)
	rep, err := rg.Finish(ctx)
	require.NoError(t, err)
	t.Logf("fleet %+v; delivery %.4f; emitted %.0f", rep.Fleet, rep.Delivery, emitted)
	n, last := rg.TLSHandshakeErrors()
	assert.Zero(t, n, "failed TLS handshakes: %s", last)
	require.NotZero(t, rep.Fleet.Commits)
	assert.GreaterOrEqual(t, rep.Delivery, 0.99)
	assert.NotZero(t, rep.Fleet.PLCRequests)
}
