package relay

// Profiles of relays that cannot be built here (no Zig toolchain, no crates
// registry). They are data: what the relays' sources say about their ports,
// settings, names and metrics. Their wiring is tested against a stand-in
// (soak/testdata/testrelay with FLAVOUR=zlay or rsky), never against the
// relays themselves.

// Zlay is the profile of zlay: firehose on 3000, metrics and health on
// 3001, hosts learnt once at start from listHosts on RELAY_UPSTREAM (the
// fleet's upstream face), the PLC hard-coded to https://plc.directory, hosts
// dialled wss://. Zig's standard library reads the system bundle at a fixed
// path, not SSL_CERT_FILE, so the run's CA is mounted over it. A diagnostic
// build (-Duse_gpa=true) prints the allocator's leak report on stderr after
// teardown: its lines are counted, and package soak/leaks reads the
// whole report from the log after Stop. zlay also needs
// Postgres and a RocksDB directory, which this profile does not provide:
// pass them with env (its DATABASE_URL) and, for RocksDB, data_dir.
func Zlay(env map[string]string) *Generic {
	e := map[string]string{"RELAY_PORT": "3000", "RELAY_METRICS_PORT": "3001", "RELAY_UPSTREAM": "${UPSTREAM_HOST}"}
	for k, v := range env {
		e[k] = v
	}
	g, err := NewGeneric(GenericSpec{
		Facts: Facts{
			Name: "zlay", APIPort: 3000, MetricsPort: 3001, HealthPort: 3001, HealthPath: "/_health",
			CACertMount: "/etc/ssl/certs/ca-certificates.crt",
			MemoryMetrics: []string{"relay_process_rss_bytes", "relay_malloc_arena_bytes", "relay_malloc_mmap_bytes",
				"relay_smaps_rss_kb", "relay_smaps_anon_kb", "relay_heap_rss_kb"},
			Network: NetworkNeeds{PLCNames: []string{"plc.directory"}, TLSHosts: true},
		},
		NoSSLCertFile: true, Env: e,
		Onboarding: OnboardUpstream, StopGrace: "60s",
		LeakPattern: "error(gpa): memory address",
	})
	if err != nil {
		panic(err) // a constant spec: a test catches a broken one
	}
	return g
}

// RskyCATrustLimit is why rsky-relay cannot be soaked unmodified here.
const RskyCATrustLimit = "rsky-relay compiles Mozilla's roots into its binary (webpki-roots, in its crawler and its HTTP client), so it cannot trust the run's CA: without a build that adds the CA it connects to no host and resolves no DID"

// Rsky is the profile of rsky-relay: firehose on 9000, metrics and health
// on RELAY_METRICS_LISTEN (here :9100), hosts from paged listHosts on
// RELAY_DISCOVERY_UPSTREAMS every 5 min, the PLC hard-coded to
// https://plc.directory (it polls /export every 60 s), hosts dialled
// wss://. It exposes no memory gauges: the sampler's /proc reads carry its
// memory. See RskyCATrustLimit: the run reports it rather than a silent
// zero.
func Rsky(env map[string]string) *Generic {
	e := map[string]string{"RELAY_DISCOVERY_UPSTREAMS": "${UPSTREAM_HOST}", "RELAY_METRICS_LISTEN": "0.0.0.0:9100"}
	for k, v := range env {
		e[k] = v
	}
	g, err := NewGeneric(GenericSpec{
		Facts: Facts{
			Name: "rsky", APIPort: 9000, MetricsPort: 9100, HealthPort: 9100, HealthPath: "/_health",
			MemoryMetrics: []string{},
			Network:       NetworkNeeds{PLCNames: []string{"plc.directory"}, TLSHosts: true, CATrustLimit: RskyCATrustLimit},
		},
		Env: e, Onboarding: OnboardUpstream, StopGrace: "30s",
	})
	if err != nil {
		panic(err)
	}
	return g
}
