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
	f := g.Facts()
	assert.Equal(t, "zlay-like", f.Name)
	assert.Equal(t, 3000, f.APIPort)
	assert.Equal(t, 3001, f.MetricsPort)
	assert.Equal(t, "/metrics", f.MetricsPath, "default")
	assert.Equal(t, "/_health", f.HealthPath)
	assert.Equal(t, "/var/lib/relay", f.DataDir)
	assert.Equal(t, "/etc/ssl/certs/ca-certificates.crt", f.CACertMount, "default: where fixed-path TLS stacks look")
	assert.Equal(t, OnboardUpstream, g.Onboarding())
	assert.Equal(t, []string{"relay_process_rss_bytes", "relay_malloc_arena_bytes", "relay_smaps_anon_kb"}, f.MemoryMetrics)
	assert.Equal(t, "SIGTERM", f.StopSignal)
	assert.Equal(t, 45*time.Second, f.StopGrace)

	assert.Equal(t, 3001, f.HealthPort)
	assert.Equal(t, NetworkNeeds{PLCNames: []string{"plc.directory"}, UpstreamNames: []string{"bsky.network"}, TLSHosts: true}, f.Network)
	assert.Equal(t, []string{"failed to resolve", "error(gpa): memory address"}, f.LogPatterns)
	assert.Equal(t, []string{"failed to resolve"}, g.Spec().LogPatterns, "the spec keeps the file's patterns")
	assert.Equal(t, Counters{CommitsReceived: "relay_commits_received_total", Resolutions: "relay_did_resolutions_total",
		ResolutionErrors: map[string]string{"result": "error"}}, f.Counters)
	assert.Empty(t, f.PprofPath, "a generic profile serves no heap profile")
	assert.Equal(t, Counters{}, Zlay(nil).Facts().Counters, "a profile naming no counters has none")
	assert.Equal(t, LiveHeap{}, Zlay(nil).Facts().LiveHeap, "a Zig relay has no collector")
	assert.Equal(t, LiveHeap{Goal: "go_memstats_next_gc_bytes", Percent: "go_gc_gogc_percent"}, (&Indigo{}).Facts().LiveHeap)

	p := filepath.Join(t.TempDir(), "go-relay.yaml")
	require.NoError(t, os.WriteFile(p, []byte("api_port: 2470\nlive_heap: {goal: go_memstats_next_gc_bytes}\n"), 0o644))
	goRelay, err := LoadGeneric(p)
	require.NoError(t, err)
	assert.Equal(t, LiveHeap{Goal: "go_memstats_next_gc_bytes"}, goRelay.Facts().LiveHeap, "GOGC's gauge is optional")

	f.MemoryMetrics[0], f.LogPatterns[0], f.Counters.ResolutionErrors["result"] = "edited", "edited", "edited"
	assert.Equal(t, "relay_process_rss_bytes", g.Facts().MemoryMetrics[0], "a caller's edits leave the profile's facts intact")
	assert.Equal(t, "failed to resolve", g.Facts().LogPatterns[0])
	assert.Equal(t, "error", g.Facts().Counters.ResolutionErrors["result"])

	args, env := g.Command(Wiring{PLCURL: "https://plc.directory", UpstreamURL: "https://bsky.network", CACertFile: f.CACertMount})
	assert.Equal(t, []string{"--upstream", "https://bsky.network"}, args)
	assert.Equal(t, map[string]string{
		"RELAY_UPSTREAM": "bsky.network",
		"PLC":            "https://plc.directory",
	}, env, "no_ssl_cert_file: the CA works from the mount alone")
}

func TestGenericProfileFromJSONDefaults(t *testing.T) {
	g, err := LoadGeneric("testdata/generic-relay.json")
	require.NoError(t, err)
	f := g.Facts()
	assert.Equal(t, "generic", f.Name)
	assert.Equal(t, 8080, f.MetricsPort, "metrics default to the API port")
	assert.Equal(t, "/xrpc/_health", f.HealthPath)
	assert.Equal(t, "/metrics", f.MetricsPath)
	assert.Equal(t, "/xrpc/com.atproto.sync.subscribeRepos", f.FirehosePath)
	assert.Equal(t, "/etc/ssl/certs/ca-certificates.crt", f.CACertMount)
	assert.Equal(t, OnboardNone, g.Onboarding())
	assert.Equal(t, []string{"process_resident_memory_bytes"}, f.MemoryMetrics)
	assert.Equal(t, "SIGTERM", f.StopSignal)
	assert.Equal(t, 30*time.Second, f.StopGrace)
	assert.Equal(t, LiveHeap{}, f.LiveHeap, "no live heap unless named")
	assert.Nil(t, f.LogPatterns)
	args, env := g.Command(Wiring{CACertFile: "/ca.pem"})
	assert.Nil(t, args, "the image's own command")
	assert.Equal(t, "/ca.pem", env["TRUST"])
	assert.Equal(t, "/ca.pem", env["SSL_CERT_FILE"], "set by default for stacks that read it")
	assert.Equal(t, 8080, f.HealthPort)
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

// Every key a generic profile file may use lands on its fact.
func TestGenericProfileEveryKey(t *testing.T) {
	body := `name: every
api_port: 1
metrics_port: 2
health_port: 2
health_path: /h
metrics_path: /m
firehose_path: /f
data_dir: /d
ca_mount: /ca
no_ssl_cert_file: true
args: [a]
env: {K: v}
memory_metrics: [rss]
onboarding: none
stop_signal: SIGINT
stop_grace: 2m
plc_names: [plc.directory]
upstream_names: [bsky.network]
tls_hosts: true
ca_trust_limit: roots compiled in
log_patterns: [oops]
dark_log_patterns: [gone]
leak_pattern: leaked
counters: {commits_received: c, resolutions: r, resolution_errors: {status: error}}
live_heap: {goal: g, percent: p}
goroutines: gr
`
	p := filepath.Join(t.TempDir(), "every.yaml")
	require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	g, err := LoadGeneric(p)
	require.NoError(t, err)
	assert.Equal(t, Facts{
		Name: "every", APIPort: 1, MetricsPort: 2, HealthPort: 2, HealthPath: "/h", MetricsPath: "/m", FirehosePath: "/f",
		DataDir: "/d", CACertMount: "/ca", MemoryMetrics: []string{"rss"}, StopSignal: "SIGINT", StopGrace: 2 * time.Minute,
		Network:         NetworkNeeds{PLCNames: []string{"plc.directory"}, UpstreamNames: []string{"bsky.network"}, TLSHosts: true, CATrustLimit: "roots compiled in"},
		LogPatterns:     []string{"oops", "leaked"},
		DarkLogPatterns: []string{"gone"},
		Counters:        Counters{CommitsReceived: "c", Resolutions: "r", ResolutionErrors: map[string]string{"status": "error"}},
		LiveHeap:        LiveHeap{Goal: "g", Percent: "p"},
		Goroutines:      "gr",
	}, g.Facts())
	edited := g.Facts()
	edited.DarkLogPatterns[0] = "edited"
	assert.Equal(t, "gone", g.Facts().DarkLogPatterns[0], "a caller's edits leave the profile's facts intact")
	assert.Equal(t, "2m", g.Spec().StopGrace)
	args, env := g.Command(Wiring{CACertFile: "/ca"})
	assert.Equal(t, []string{"a"}, args)
	assert.Equal(t, map[string]string{"K": "v"}, env)
}
