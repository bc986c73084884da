package relay

import (
	"context"
	"io"
	"maps"
	"slices"
	"time"
)

// Host is one upstream host the relay must subscribe to.
type Host struct {
	// Name as the relay knows it (pds0001.test): no scheme, no port.
	Name string
	// TLS: the host serves wss:// on 443; otherwise ws:// on 80.
	TLS bool
}

// Wiring is what the runner tells a profile about the world the relay is
// placed in. Paths are inside the container.
type Wiring struct {
	// PLCURL is where DIDs resolve, e.g. https://plc.test.
	PLCURL string
	// UpstreamURL is the upstream relay face (for relays that learn hosts
	// from listHosts), e.g. https://relay.test.
	UpstreamURL string
	// CACertFile is the run's CA certificate mounted in the container, ""
	// when the run has no CA.
	CACertFile string
}

// Profile knows one relay implementation's habits, so the runner can drive
// any relay without knowing which one it is: what the relay is (Facts) and
// how it is configured and onboarded.
type Profile interface {
	// Facts are the relay's ports, paths, names and metrics.
	Facts() Facts
	// Command returns the container's arguments (nil: the image's default)
	// and environment for the given wiring.
	Command(w Wiring) (args []string, env map[string]string)
	// Onboard makes the relay subscribe to hosts. It is called once the
	// container is created and started; it may stop and start it through c.
	Onboard(ctx context.Context, c Controller, hosts []Host) error
}

// Facts are what the rig knows about one relay implementation; a zero
// field is a fact the relay lacks ("" path, no names), except where its
// comment gives a default. The yaml keys are a generic profile's
// (GenericSpec).
type Facts struct {
	// Name of the implementation, for reports ("indigo").
	Name string `yaml:"name"`
	// APIPort serves the firehose and health (container port number).
	APIPort int `yaml:"api_port"`
	// MetricsPort serves Prometheus text at MetricsPath.
	MetricsPort int    `yaml:"metrics_port"`
	MetricsPath string `yaml:"metrics_path"`
	// HealthPath answers 200 when the relay is ready, on HealthPort.
	HealthPath string `yaml:"health_path"`
	// HealthPort answers HealthPath: APIPort or MetricsPort, the ports
	// that are published (0: APIPort).
	HealthPort int `yaml:"health_port"`
	// FirehosePath is com.atproto.sync.subscribeRepos on APIPort.
	FirehosePath string `yaml:"firehose_path"`
	// DataDir is where the relay keeps state in the container ("" when it
	// keeps none worth a bind mount). The runner bind-mounts a directory of
	// the run there, so onboarding can edit it between starts.
	DataDir string `yaml:"data_dir"`
	// CACertMount is where the run's CA is mounted in the container.
	CACertMount string `yaml:"ca_mount"`
	// MemoryMetrics names the Prometheus series that carry the relay's own
	// view of its memory (the sampler also reads /proc from outside).
	MemoryMetrics []string `yaml:"memory_metrics"`
	// StopSignal asks the relay to shut down gracefully; StopGrace is how
	// long it may take before SIGKILL (a leak report printed at shutdown
	// needs time). A generic profile writes the grace as a string
	// (GenericSpec.StopGrace).
	StopSignal string        `yaml:"stop_signal"`
	StopGrace  time.Duration `yaml:"-"`
	// Network is what the relay needs the fake network to be; zero for a
	// relay that can be told everything.
	Network NetworkNeeds `yaml:",inline"`
	// LogPatterns are log lines the report counts (a leak report printed
	// at shutdown, for one).
	LogPatterns []string `yaml:"log_patterns"`
	// DarkLogPatterns are log lines in which the relay says it stopped
	// reading a host (a dial that failed, a host given up as offline): the
	// report quotes those naming a host it found dark.
	DarkLogPatterns []string `yaml:"dark_log_patterns"`
	// Counters name the relay's counters that the rig cross-checks.
	Counters Counters `yaml:"counters"`
	// LiveHeap names a garbage-collected relay's live-heap gauges.
	LiveHeap LiveHeap `yaml:"live_heap"`
	// Goroutines names the gauge of the relay's goroutines (or threads,
	// or tasks): kept memory too, judged beside it ("" for none).
	Goroutines string `yaml:"goroutines"`
	// Build says how to build the relay from a checkout of its source
	// (a bisect does, one commit at a time); zero for a relay not built
	// from Go source here.
	Build GoBuild `yaml:"build"`
	// PprofPath serves Go's heap profile on MetricsPort ("" for none): the
	// soak takes heap profiles from it. A generic profile has none.
	PprofPath string `yaml:"-"`
}

// clone is f with slices and a map of its own, so a caller that edits them
// leaves the profile's intact.
func (f Facts) clone() Facts {
	f.MemoryMetrics = slices.Clone(f.MemoryMetrics)
	f.LogPatterns = slices.Clone(f.LogPatterns)
	f.DarkLogPatterns = slices.Clone(f.DarkLogPatterns)
	f.Network.PLCNames = slices.Clone(f.Network.PLCNames)
	f.Network.UpstreamNames = slices.Clone(f.Network.UpstreamNames)
	f.Counters.ResolutionErrors = maps.Clone(f.Counters.ResolutionErrors)
	f.Build.Tags = slices.Clone(f.Build.Tags)
	f.Build.Args = slices.Clone(f.Build.Args)
	return f
}

// NetworkNeeds is what a relay that cannot be told everything needs the
// fake network to be.
type NetworkNeeds struct {
	// PLCNames and UpstreamNames are names the relay dials whatever it is
	// told (its PLC is compiled in): the fleet must answer to them.
	PLCNames      []string `yaml:"plc_names"`
	UpstreamNames []string `yaml:"upstream_names"`
	// TLSHosts: the relay dials every host wss:// on 443.
	TLSHosts bool `yaml:"tls_hosts"`
	// CATrustLimit, when set, says why the relay cannot trust the run's CA
	// (roots compiled into the binary); the rig repeats it wherever the
	// relay's TLS failures show, so they are not read as the relay's fault.
	CATrustLimit string `yaml:"ca_trust_limit"`
}

// Counters names the Prometheus counters in which a relay counts what the
// rig cross-checks; "" where it counts none. Each is summed over its
// labels.
type Counters struct {
	// CommitsReceived counts #commit frames the relay received from hosts.
	CommitsReceived string `yaml:"commits_received"`
	// Resolutions counts DID resolutions (attempts, whatever their
	// outcome); ResolutionErrors are the labels that select the failed
	// ones among them.
	Resolutions      string            `yaml:"resolutions"`
	ResolutionErrors map[string]string `yaml:"resolution_errors"`
}

// LiveHeap names the gauges from which a garbage-collected relay's live
// heap is read. RSS and heap in use swing with the collector (a Go relay's
// by a hundred MiB every minute or two), which buries a slope of a few
// MiB an hour; the collector's next goal moves only at a collection, with
// what the relay keeps: goal = live × (1 + GOGC/100), plus the stacks' and
// globals' share.
type LiveHeap struct {
	// Goal is the gauge of the collector's next heap goal, in bytes.
	Goal string `yaml:"goal"`
	// Percent is the gauge of GOGC; when the relay does not serve it, 100.
	Percent string `yaml:"percent"`
}

// Controller is what a Profile may do to its container while onboarding.
type Controller interface {
	// HostDataDir is the run's directory mounted at Facts.DataDir.
	HostDataDir() string
	// Stop stops the relay gracefully (StopSignal, StopGrace).
	Stop(ctx context.Context) error
	// Start starts it again and waits until it is healthy.
	Start(ctx context.Context) error
}

// The interfaces below are optional behaviour: a profile implements one
// only when it can do that for its relay.

// Preparer is a profile that can onboard hosts before the relay's first
// start, by writing the relay's data directory itself: one boot instead of
// Onboard's stop and start. It does so only for an image whose data format
// it knows.
type Preparer interface {
	// PrepareData writes into hostDataDir (mounted at DataDir) what
	// Onboard would make, and says whether it did; false leaves the hosts
	// to Onboard.
	PrepareData(ctx context.Context, image, hostDataDir string, hosts []Host) (bool, error)
}

// DefaultImager is a profile whose relay the rig can build here when no
// image is named (indigo's, from the version pinned in go.mod).
type DefaultImager interface {
	// DefaultImage returns the image's tag, building it when missing;
	// progress goes to log.
	DefaultImage(ctx context.Context, log io.Writer) (string, error)
}
