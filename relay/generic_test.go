package relay

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestGenericProfileFromYAML(t *testing.T) {
	g, err := LoadGeneric("testdata/generic-relay.yaml")
	require.NoError(t, err)
	var _ Profile = g
	assert.Equal(t, "zlay-like", g.Name())
	assert.Equal(t, 3000, g.APIPort())
	assert.Equal(t, 3001, g.MetricsPort())
	assert.Equal(t, "/metrics", g.MetricsPath(), "default")
	assert.Equal(t, "/_health", g.HealthPath())
	assert.Equal(t, "/var/lib/relay", g.DataDir())
	assert.Equal(t, "/etc/ssl/certs/ca-certificates.crt", g.CACertMount(), "default: where fixed-path TLS stacks look")
	assert.Equal(t, OnboardUpstream, g.Onboarding())
	assert.Equal(t, []string{"relay_process_rss_bytes", "relay_malloc_arena_bytes", "relay_smaps_anon_kb"}, g.MemoryMetrics())
	assert.Equal(t, "SIGTERM", g.StopSignal())
	assert.Equal(t, 45*time.Second, g.StopGrace())

	assert.Equal(t, 3001, g.HealthPort())
	assert.Equal(t, NetworkNeeds{PLCNames: []string{"plc.directory"}, UpstreamNames: []string{"bsky.network"}, TLSHosts: true}, g.NetworkNeeds())
	assert.Equal(t, []string{"failed to resolve", "error(gpa): memory address"}, g.LogPatterns())
	assert.Equal(t, Counters{CommitsReceived: "relay_commits_received_total", Resolutions: "relay_did_resolutions_total",
		ResolutionErrors: map[string]string{"result": "error"}}, CountersOf(g))
	assert.Equal(t, Counters{}, CountersOf(Zlay(nil)), "a profile naming no counters has none")
	assert.Equal(t, LiveHeap{}, LiveHeapOf(Zlay(nil)), "a Zig relay has no collector")
	assert.Equal(t, LiveHeap{Goal: "go_memstats_next_gc_bytes", Percent: "go_gc_gogc_percent"}, LiveHeapOf(&Indigo{}))

	p := filepath.Join(t.TempDir(), "go-relay.yaml")
	require.NoError(t, os.WriteFile(p, []byte("api_port: 2470\nlive_heap: {goal: go_memstats_next_gc_bytes}\n"), 0o644))
	goRelay, err := LoadGeneric(p)
	require.NoError(t, err)
	assert.Equal(t, LiveHeap{Goal: "go_memstats_next_gc_bytes"}, LiveHeapOf(goRelay), "GOGC's gauge is optional")

	args, env := g.Command(Wiring{PLCURL: "https://plc.directory", UpstreamURL: "https://bsky.network", CACertFile: g.CACertMount()})
	assert.Equal(t, []string{"--upstream", "https://bsky.network"}, args)
	assert.Equal(t, map[string]string{
		"RELAY_UPSTREAM": "bsky.network",
		"PLC":            "https://plc.directory",
	}, env, "no_ssl_cert_file: the CA works from the mount alone")
}

func TestGenericProfileFromJSONDefaults(t *testing.T) {
	g, err := LoadGeneric("testdata/generic-relay.json")
	require.NoError(t, err)
	assert.Equal(t, "generic", g.Name())
	assert.Equal(t, 8080, g.MetricsPort(), "metrics default to the API port")
	assert.Equal(t, "/xrpc/_health", g.HealthPath())
	assert.Equal(t, OnboardNone, g.Onboarding())
	assert.Equal(t, []string{"process_resident_memory_bytes"}, g.MemoryMetrics())
	assert.Equal(t, LiveHeap{}, LiveHeapOf(g), "no live heap unless named")
	args, env := g.Command(Wiring{CACertFile: "/ca.pem"})
	assert.Nil(t, args, "the image's own command")
	assert.Equal(t, "/ca.pem", env["TRUST"])
	assert.Equal(t, "/ca.pem", env["SSL_CERT_FILE"], "set by default for stacks that read it")
	assert.Equal(t, 8080, g.HealthPort())
}

func TestGenericProfileErrors(t *testing.T) {
	for name, body := range map[string]string{
		"no port":             "name: x\n",
		"misspelt key":        "api_port: 1\nhelth_path: /h\n",
		"bad onboarding":      "api_port: 1\nonboarding: sqlite\n",
		"upstream not passed": "api_port: 1\nonboarding: upstream\n",
		"bad grace":           "api_port: 1\nstop_grace: soon\n",
		"relative path":       "api_port: 1\nhealth_path: health\n",
		"unpublished health":  "api_port: 1\nmetrics_port: 2\nhealth_port: 3\n",
		"live heap, no goal":  "api_port: 1\nlive_heap: {percent: go_gc_gogc_percent}\n",
	} {
		p := filepath.Join(t.TempDir(), "p.yaml")
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
		_, err := LoadGeneric(p)
		assert.Error(t, err, name)
	}
	_, err := LoadGeneric(filepath.Join(t.TempDir(), "missing.yaml"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}
