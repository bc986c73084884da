package relay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// GenericSpec is a relay's habits written down by the user, in YAML or
// JSON (YAML's parser reads both), for a relay the rig has no profile for.
// Zero values are the defaults on each field; api_port is required.
//
// In args and env values, ${PLC_URL}, ${UPSTREAM_URL}, ${UPSTREAM_HOST}
// and ${CA_FILE} are replaced by where the run put the PLC, the upstream
// face and the CA inside the container.
type GenericSpec struct {
	// Name for reports (default "generic").
	Name string `yaml:"name"`
	// APIPort serves the firehose and health; MetricsPort Prometheus text
	// (default: the API port).
	APIPort     int `yaml:"api_port"`
	MetricsPort int `yaml:"metrics_port"`
	// HealthPort answers HealthPath (default: the API port; it must be the
	// API or the metrics port).
	HealthPort int `yaml:"health_port"`
	// Paths: health (default /xrpc/_health), metrics (default /metrics),
	// firehose (default /xrpc/com.atproto.sync.subscribeRepos).
	HealthPath   string `yaml:"health_path"`
	MetricsPath  string `yaml:"metrics_path"`
	FirehosePath string `yaml:"firehose_path"`
	// DataDir is bind-mounted from the run directory ("" for none).
	DataDir string `yaml:"data_dir"`
	// CAMount is where the run's CA goes in the container (default
	// /etc/ssl/certs/ca-certificates.crt, the path TLS stacks that ignore
	// SSL_CERT_FILE scan). SSL_CERT_FILE is set to it as well unless
	// NoSSLCertFile.
	CAMount       string `yaml:"ca_mount"`
	NoSSLCertFile bool   `yaml:"no_ssl_cert_file"`
	// Args replace the image's command (none: the image's default); Env is
	// the container's environment.
	Args []string          `yaml:"args"`
	Env  map[string]string `yaml:"env"`
	// MemoryMetrics names the gauges that carry the relay's memory
	// (default process_resident_memory_bytes; an empty list [] for none:
	// the sampler's /proc reads are all there is).
	MemoryMetrics []string `yaml:"memory_metrics"`
	// Onboarding says how the relay learns the fleet's hosts: "none"
	// (default: the rig does nothing; args or env tell the relay) or
	// "upstream" (the relay pulls com.atproto.sync.listHosts from the
	// upstream face, so args or env must pass ${UPSTREAM_URL} or
	// ${UPSTREAM_HOST}).
	Onboarding string `yaml:"onboarding"`
	// StopSignal (default SIGTERM) and StopGrace (default 30s, a Go
	// duration) before SIGKILL.
	StopSignal string `yaml:"stop_signal"`
	StopGrace  string `yaml:"stop_grace"`

	// PLCNames and UpstreamNames are names the relay dials whatever it is
	// told (plc.directory, bsky.network): the fleet answers to them too.
	PLCNames      []string `yaml:"plc_names"`
	UpstreamNames []string `yaml:"upstream_names"`
	// TLSHosts: the relay dials every host wss:// on 443.
	TLSHosts bool `yaml:"tls_hosts"`
	// CATrustLimit says why the relay cannot trust the run's CA, when it
	// cannot (roots compiled in); "" when it reads the mounted CA.
	CATrustLimit string `yaml:"ca_trust_limit"`
	// LogPatterns are counted in the relay's log for the report;
	// LeakPattern starts one entry of a leak report printed at shutdown,
	// counted like LogPatterns (package soak/leaks reads the report).
	LogPatterns []string `yaml:"log_patterns"`
	LeakPattern string   `yaml:"leak_pattern"`
	// Counters names the relay's counters of commits received and DID
	// resolutions, when it keeps them (the report cross-checks delivery
	// and follows the resolver with them).
	Counters GenericCounters `yaml:"counters"`
	// LiveHeap names a garbage-collected relay's gauges of its collector's
	// goal and GOGC (a Go relay's: go_memstats_next_gc_bytes and
	// go_gc_gogc_percent); an attribution run regresses the live heap.
	LiveHeap LiveHeap `yaml:"live_heap"`
}

// GenericCounters is Counters in a GenericSpec.
type GenericCounters struct {
	CommitsReceived  string            `yaml:"commits_received"`
	Resolutions      string            `yaml:"resolutions"`
	ResolutionErrors map[string]string `yaml:"resolution_errors"`
}

// Onboarding modes of a generic profile.
const (
	OnboardNone     = "none"
	OnboardUpstream = "upstream"
)

// Generic is the profile a GenericSpec describes.
type Generic struct {
	spec  GenericSpec
	grace time.Duration
}

// LoadGeneric reads a generic profile from a YAML or JSON file. Unknown
// keys are errors: a misspelt key silently ignored would soak the wrong
// relay.
func LoadGeneric(path string) (*Generic, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("relay: reading generic profile: %w", err)
	}
	var spec GenericSpec
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&spec); err != nil {
		return nil, fmt.Errorf("relay: generic profile %s: %w", path, err)
	}
	g, err := NewGeneric(spec)
	if err != nil {
		return nil, fmt.Errorf("relay: generic profile %s: %w", path, err)
	}
	return g, nil
}

// NewGeneric checks a spec and fills in its defaults.
func NewGeneric(spec GenericSpec) (*Generic, error) {
	if spec.APIPort <= 0 || spec.APIPort > 65535 {
		return nil, fmt.Errorf("api_port must be a port number, got %d", spec.APIPort)
	}
	if spec.MetricsPort < 0 || spec.MetricsPort > 65535 {
		return nil, fmt.Errorf("metrics_port must be a port number, got %d", spec.MetricsPort)
	}
	def := func(v *string, d string) {
		if *v == "" {
			*v = d
		}
	}
	def(&spec.Name, "generic")
	def(&spec.HealthPath, "/xrpc/_health")
	def(&spec.MetricsPath, "/metrics")
	def(&spec.FirehosePath, "/xrpc/com.atproto.sync.subscribeRepos")
	def(&spec.CAMount, "/etc/ssl/certs/ca-certificates.crt")
	def(&spec.Onboarding, OnboardNone)
	def(&spec.StopSignal, "SIGTERM")
	def(&spec.StopGrace, "30s")
	if spec.MetricsPort == 0 {
		spec.MetricsPort = spec.APIPort
	}
	if spec.HealthPort == 0 {
		spec.HealthPort = spec.APIPort
	}
	if spec.HealthPort != spec.APIPort && spec.HealthPort != spec.MetricsPort {
		return nil, fmt.Errorf("health_port %d must be the API port (%d) or the metrics port (%d): only those are published", spec.HealthPort, spec.APIPort, spec.MetricsPort)
	}
	if spec.MemoryMetrics == nil {
		spec.MemoryMetrics = []string{"process_resident_memory_bytes"}
	}
	if spec.LiveHeap.Percent != "" && spec.LiveHeap.Goal == "" {
		return nil, fmt.Errorf("live_heap.percent (%s) needs live_heap.goal: the live heap is read from the collector's goal", spec.LiveHeap.Percent)
	}
	for _, p := range []*string{&spec.HealthPath, &spec.MetricsPath, &spec.FirehosePath} {
		if !strings.HasPrefix(*p, "/") {
			return nil, fmt.Errorf("paths must start with /, got %q", *p)
		}
	}
	grace, err := time.ParseDuration(spec.StopGrace)
	if err != nil || grace <= 0 {
		return nil, fmt.Errorf("stop_grace must be a positive duration such as 30s, got %q", spec.StopGrace)
	}
	switch spec.Onboarding {
	case OnboardNone:
	case OnboardUpstream:
		if !spec.mentions("${UPSTREAM_URL}") && !spec.mentions("${UPSTREAM_HOST}") {
			return nil, errors.New("onboarding is upstream, but neither args nor env pass ${UPSTREAM_URL} or ${UPSTREAM_HOST} to the relay: it would never learn the hosts")
		}
	default:
		return nil, fmt.Errorf("onboarding must be %q or %q, got %q", OnboardNone, OnboardUpstream, spec.Onboarding)
	}
	return &Generic{spec: spec, grace: grace}, nil
}

func (s GenericSpec) mentions(v string) bool {
	for _, a := range s.Args {
		if strings.Contains(a, v) {
			return true
		}
	}
	for _, e := range s.Env {
		if strings.Contains(e, v) {
			return true
		}
	}
	return false
}

// Spec is the profile as loaded, defaults filled in.
func (g *Generic) Spec() GenericSpec { return g.spec }

// Onboarding is how the relay learns hosts (OnboardNone, OnboardUpstream).
func (g *Generic) Onboarding() string { return g.spec.Onboarding }

func (g *Generic) HealthPort() int          { return g.spec.HealthPort }
func (g *Generic) Name() string             { return g.spec.Name }
func (g *Generic) APIPort() int             { return g.spec.APIPort }
func (g *Generic) MetricsPort() int         { return g.spec.MetricsPort }
func (g *Generic) MetricsPath() string      { return g.spec.MetricsPath }
func (g *Generic) HealthPath() string       { return g.spec.HealthPath }
func (g *Generic) FirehosePath() string     { return g.spec.FirehosePath }
func (g *Generic) DataDir() string          { return g.spec.DataDir }
func (g *Generic) CACertMount() string      { return g.spec.CAMount }
func (g *Generic) MemoryMetrics() []string  { return append([]string(nil), g.spec.MemoryMetrics...) }
func (g *Generic) LiveHeap() LiveHeap       { return g.spec.LiveHeap }
func (g *Generic) StopSignal() string       { return g.spec.StopSignal }
func (g *Generic) StopGrace() time.Duration { return g.grace }

// Command fills the placeholders in; SSL_CERT_FILE is set for stacks that
// read it (Go, OpenSSL) unless the file sets it.
func (g *Generic) Command(w Wiring) ([]string, map[string]string) {
	upstreamHost := strings.TrimPrefix(strings.TrimPrefix(w.UpstreamURL, "https://"), "http://")
	rep := strings.NewReplacer("${PLC_URL}", w.PLCURL, "${UPSTREAM_URL}", w.UpstreamURL,
		"${UPSTREAM_HOST}", upstreamHost, "${CA_FILE}", w.CACertFile)
	var args []string
	for _, a := range g.spec.Args {
		args = append(args, rep.Replace(a))
	}
	env := map[string]string{}
	if w.CACertFile != "" && !g.spec.NoSSLCertFile {
		env["SSL_CERT_FILE"] = w.CACertFile
	}
	for k, v := range g.spec.Env {
		env[k] = rep.Replace(v)
	}
	return args, env
}

// Onboard does nothing: a generic relay learns its hosts itself, from its
// arguments or from the upstream face.
func (g *Generic) Onboard(context.Context, Controller, []Host) error { return nil }

// NetworkNeeds: names the relay hard-codes, TLS hosts, CA trust.
func (g *Generic) NetworkNeeds() NetworkNeeds {
	return NetworkNeeds{PLCNames: g.spec.PLCNames, UpstreamNames: g.spec.UpstreamNames,
		TLSHosts: g.spec.TLSHosts, CATrustLimit: g.spec.CATrustLimit}
}

// LogPatterns are counted in the report: the file's, and the leak
// pattern.
func (g *Generic) LogPatterns() []string {
	out := append([]string(nil), g.spec.LogPatterns...)
	if g.spec.LeakPattern != "" {
		out = append(out, g.spec.LeakPattern)
	}
	return out
}

// Counters are the file's.
func (g *Generic) Counters() Counters {
	c := g.spec.Counters
	return Counters{CommitsReceived: c.CommitsReceived, Resolutions: c.Resolutions, ResolutionErrors: c.ResolutionErrors}
}
