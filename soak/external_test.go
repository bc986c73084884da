package soak

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/relaysoak/relaysoak/fakepds/pki"
	"github.com/relaysoak/relaysoak/relay"
	"github.com/relaysoak/relaysoak/soak/harness"
	"github.com/relaysoak/relaysoak/soak/rundir"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A relay the rig does not start: the indigo relay is started separately
// (here by the test, as a deployment would be), trusting a CA the user keeps
// and naming the fleet's hosts; the soak attaches to its endpoints, serves
// the fleet where the relay can reach it, and judges memory from its
// metrics alone.
func TestE2ESoakExternalRelay(t *testing.T) {
	requireDocker(t, "ext-relay")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	caDir := t.TempDir()
	ca, err := pki.Open(pki.Config{Dir: caDir})
	require.NoError(t, err)

	const hosts = 5
	runner, err := relay.New(ctx, relay.Config{RunDir: filepath.Join(t.TempDir(), "ext-relay"), CACertFile: ca.CertPath(), PLCURL: "https://plc.test", Log: io.Discard})
	require.NoError(t, err)
	t.Cleanup(func() { runner.Close(context.Background()) })
	var hs []relay.Host
	for i := 1; i <= hosts; i++ {
		hs = append(hs, relay.Host{Name: fmt.Sprintf("pds%04d.test", i)})
	}
	require.NoError(t, runner.Start(ctx, relay.StartOptions{Names: []string{"plc.test", "relay.test"}, Hosts: hs}))

	gw := runner.Gateway().String()
	out, err := Run(ctx, Config{RunsDir: t.TempDir(), ID: "ext", Hosts: hosts, Rate: 20, Duration: 30 * time.Second, SampleEvery: 3 * time.Second,
		External:  &harness.External{Firehose: runner.FirehoseURL(), Metrics: runner.MetricsURL()},
		FleetAddr: net.JoinHostPort(gw, "80"), FleetTLSAddr: net.JoinHostPort(gw, "443"), CADir: caDir, VerifyEvery: 1, Out: io.Discard})
	require.NoError(t, err)
	s := out.Summary
	assert.GreaterOrEqual(t, s.Delivery, 0.99, "delivery through the external relay")
	assert.Positive(t, s.PLCRequests, "the external relay resolved DIDs at the fleet's PLC over TLS")
	assert.Equal(t, "rss", s.Judged.CarriedBy, "memory comes from the relay's metrics alone")
	lines := readLines(t, filepath.Join(out.Dir, rundir.Samples))
	require.NotEmpty(t, lines)
	last := lines[len(lines)-1]
	assert.Positive(t, last.Signals["rss"])
	assert.Positive(t, last.Signals["heap_inuse"])
	assert.NotContains(t, last.Signals, "rss_anon", "the rig cannot read an external relay's /proc")
	hostsFile, err := os.ReadFile(filepath.Join(out.Dir, "hosts-for-relay"))
	require.NoError(t, err)
	assert.Contains(t, string(hostsFile), gw+" pds0005.test")
	_, err = os.Stat(filepath.Join(out.Dir, rundir.Report))
	assert.NoError(t, err)
	// The relay runs on: the soak does not own it.
	assert.Nil(t, runner.Exit(), "the external relay must still run")
}
