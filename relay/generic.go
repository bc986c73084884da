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
// JSON (YAML's parser reads both), for a relay the rig has no profile for:
// its Facts under their yaml keys, and how to run it. api_port is
// required; NewGeneric fills in the defaults of zero values:
//
//   - name: generic
//   - metrics_port: the API port
//   - health_port: the API port (it must be the API or the metrics port)
//   - health_path /xrpc/_health, metrics_path /metrics, firehose_path
//     /xrpc/com.atproto.sync.subscribeRepos
//   - ca_mount: /etc/ssl/certs/ca-certificates.crt, the path TLS stacks
//     that ignore SSL_CERT_FILE scan
//   - memory_metrics: process_resident_memory_bytes (an empty list [] for
//     none: the sampler's /proc reads are all there is)
//   - stop_signal SIGTERM, stop_grace 30s
//   - onboarding: none
//
// data_dir is bind-mounted from the run directory ("" for none).
// plc_names and upstream_names are names the relay dials whatever it is
// told (plc.directory, bsky.network): the fleet answers to them too.
// ca_trust_limit says why the relay cannot trust the run's CA, when it
// cannot (roots compiled in). counters name the relay's counters of
// commits received and DID resolutions, when it keeps them (the report
// cross-checks delivery and follows the resolver with them). live_heap
// names a garbage-collected relay's gauges of its collector's goal and
// GOGC (a Go relay's: go_memstats_next_gc_bytes and go_gc_gogc_percent);
// the verdict judges its floors and an attribution run regresses it.
// goroutines names the gauge of its goroutines (go_goroutines), judged as
// kept memory too. dark_log_patterns are the log lines in which the relay
// says it stopped reading a host; the report quotes those naming a host it
// found dark. build says how a bisect builds a Go relay from a checkout of
// its source: main (its main package, ./cmd/relay), cgo, tags, ldflags and
// args (the image's command after the binary).
//
// In args and env values, ${PLC_URL}, ${UPSTREAM_URL}, ${UPSTREAM_HOST}
// and ${CA_FILE} are replaced by where the run put the PLC, the upstream
// face and the CA inside the container.
type GenericSpec struct {
	Facts `yaml:",inline"`
	// StopGrace is the grace written as a Go duration ("45s"); NewGeneric
	// parses it into Facts.StopGrace, which it shadows.
	StopGrace string `yaml:"stop_grace"`
	// NoSSLCertFile leaves SSL_CERT_FILE unset; otherwise it is set to
	// the CA's mount, for TLS stacks that read it.
	NoSSLCertFile bool `yaml:"no_ssl_cert_file"`
	// Args replace the image's command (none: the image's default); Env is
	// the container's environment.
	Args []string          `yaml:"args"`
	Env  map[string]string `yaml:"env"`
	// Onboarding says how the relay learns the fleet's hosts: "none"
	// (default: the rig does nothing; args or env tell the relay) or
	// "upstream" (the relay pulls com.atproto.sync.listHosts from the
	// upstream face, so args or env must pass ${UPSTREAM_URL} or
	// ${UPSTREAM_HOST}).
	Onboarding string `yaml:"onboarding"`
	// LeakPattern starts one entry of a leak report printed at shutdown,
	// counted like LogPatterns (package soak/leaks reads the report).
	LeakPattern string `yaml:"leak_pattern"`
}

// Onboarding modes of a generic profile.
const (
	OnboardNone     = "none"
	OnboardUpstream = "upstream"
)

// Generic is the profile a GenericSpec describes.
type Generic struct {
	spec  GenericSpec
	facts Facts
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
	f := &spec.Facts
	if f.APIPort <= 0 || f.APIPort > 65535 {
		return nil, fmt.Errorf("api_port must be a port number, got %d", f.APIPort)
	}
	if f.MetricsPort < 0 || f.MetricsPort > 65535 {
		return nil, fmt.Errorf("metrics_port must be a port number, got %d", f.MetricsPort)
	}
	def := func(v *string, d string) {
		if *v == "" {
			*v = d
		}
	}
	def(&f.Name, "generic")
	def(&f.HealthPath, "/xrpc/_health")
	def(&f.MetricsPath, "/metrics")
	def(&f.FirehosePath, "/xrpc/com.atproto.sync.subscribeRepos")
	def(&f.CACertMount, "/etc/ssl/certs/ca-certificates.crt")
	def(&spec.Onboarding, OnboardNone)
	def(&f.StopSignal, "SIGTERM")
	def(&spec.StopGrace, "30s")
	if f.MetricsPort == 0 {
		f.MetricsPort = f.APIPort
	}
	if f.HealthPort == 0 {
		f.HealthPort = f.APIPort
	}
	if f.HealthPort != f.APIPort && f.HealthPort != f.MetricsPort {
		return nil, fmt.Errorf("health_port %d must be the API port (%d) or the metrics port (%d): only those are published", f.HealthPort, f.APIPort, f.MetricsPort)
	}
	if f.MemoryMetrics == nil {
		f.MemoryMetrics = []string{"process_resident_memory_bytes"}
	}
	if f.LiveHeap.Percent != "" && f.LiveHeap.Goal == "" {
		return nil, fmt.Errorf("live_heap.percent (%s) needs live_heap.goal: the live heap is read from the collector's goal", f.LiveHeap.Percent)
	}
	for _, p := range []*string{&f.HealthPath, &f.MetricsPath, &f.FirehosePath} {
		if !strings.HasPrefix(*p, "/") {
			return nil, fmt.Errorf("paths must start with /, got %q", *p)
		}
	}
	grace, err := time.ParseDuration(spec.StopGrace)
	if err != nil || grace <= 0 {
		return nil, fmt.Errorf("stop_grace must be a positive duration such as 30s, got %q", spec.StopGrace)
	}
	f.StopGrace = grace
	switch spec.Onboarding {
	case OnboardNone:
	case OnboardUpstream:
		if !spec.mentions("${UPSTREAM_URL}") && !spec.mentions("${UPSTREAM_HOST}") {
			return nil, errors.New("onboarding is upstream, but neither args nor env pass ${UPSTREAM_URL} or ${UPSTREAM_HOST} to the relay: it would never learn the hosts")
		}
	default:
		return nil, fmt.Errorf("onboarding must be %q or %q, got %q", OnboardNone, OnboardUpstream, spec.Onboarding)
	}
	facts := spec.Facts.clone()
	if spec.LeakPattern != "" {
		facts.LogPatterns = append(facts.LogPatterns, spec.LeakPattern)
	}
	return &Generic{spec: spec, facts: facts}, nil
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

// Facts are the spec's, with LeakPattern counted among the LogPatterns.
func (g *Generic) Facts() Facts { return g.facts.clone() }

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
