package harness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/relaysoak/relaysoak/relay"
	"github.com/relaysoak/relaysoak/soak/rundir"
)

// Target is the relay under test as the rig sees it: a container the rig
// runs (*relay.Runner) or a relay running elsewhere (*External).
type Target interface {
	Image() string
	FirehoseURL() string
	MetricsURL() string
	// MemoryMetrics names the gauges that carry the relay's memory.
	MemoryMetrics() []string
	// Exited is closed when the relay dies (never, for an external relay:
	// the rig cannot see its process).
	Exited() <-chan struct{}
	Exit() *relay.Exit
	Restart(ctx context.Context) error
	Stop(ctx context.Context) (*relay.Exit, error)
	LogPath() string
}

// Launcher is an attached Target the rig starts once the fleet listens,
// telling it where the fleet is.
type Launcher interface {
	Target
	Launch(ctx context.Context, w LaunchWiring) error
}

// LaunchWiring is where a launched relay finds the fake network: every
// fleet name is served at FleetAddr (ws/http) and FleetTLSAddr (wss/https,
// certificates of the CA in Wiring.CACertFile, a path on this machine).
type LaunchWiring struct {
	relay.Wiring
	FleetAddr, FleetTLSAddr string
	RunDir                  string
}

// PIDer is a Target whose process runs on this machine: the sampler reads
// its /proc.
type PIDer interface {
	PID(ctx context.Context) int
}

// External is a relay running elsewhere, known by its endpoints.
type External struct {
	// Firehose is its com.atproto.sync.subscribeRepos URL (ws:// or wss://).
	Firehose string
	// Metrics is its Prometheus endpoint; Memory the gauges to sample
	// (default process_resident_memory_bytes and go_memstats_heap_inuse_bytes).
	Metrics string
	Memory  []string

	never chan struct{}
}

func (e *External) Image() string { return "external relay at " + e.Firehose }

func (e *External) FirehoseURL() string { return e.Firehose }

func (e *External) MetricsURL() string { return e.Metrics }

func (e *External) Exited() <-chan struct{} { return e.never }

func (e *External) Exit() *relay.Exit { return nil }

func (e *External) LogPath() string { return "" }

func (e *External) MemoryMetrics() []string {
	if len(e.Memory) > 0 {
		return e.Memory
	}
	return []string{"process_resident_memory_bytes", "go_memstats_heap_inuse_bytes"}
}

func (e *External) Restart(context.Context) error {
	return errors.New("rig: a relay running elsewhere cannot be restarted by the rig")
}

func (e *External) Stop(context.Context) (*relay.Exit, error) { return nil, nil }

// checkNamed fails when a URL the relay is given names a host the fleet
// does not answer to.
func (r *Harness) checkNamed(what, rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil || u.Hostname() == "" {
		return fmt.Errorf("rig: the relay's %s URL %q is not a URL: %v", what, rawURL, err)
	}
	for _, n := range r.fleet.Names() {
		if strings.EqualFold(n, u.Hostname()) {
			return nil
		}
	}
	return fmt.Errorf("rig: the relay's %s URL %s names %s, which the fleet does not answer to (its names: %s; add it to Fleet.PLCAliases or Fleet.UpstreamAliases)",
		what, rawURL, u.Hostname(), strings.Join(r.fleet.Names(), ", "))
}

// attach wires the fleet to a relay the rig does not run in a container:
// the fleet listens where the caller said (a share's fleet already does), a
// hosts file for the relay's machine is written to the run directory, a
// Launcher is launched, and the rig waits for the relay to dial in.
func (r *Harness) attach(ctx context.Context) error {
	cfg := r.cfg
	if cfg.External != nil {
		if cfg.External.Firehose == "" {
			return errors.New("rig: an external relay needs its firehose URL (--target-url)")
		}
		cfg.External.never = make(chan struct{})
		r.target = cfg.External
	} else {
		r.target = cfg.Attach
	}
	if !r.shared {
		if cfg.FleetAddr == "" {
			return errors.New("rig: an external relay needs an address for the fleet (--fleet-listen) that it can reach")
		}
		if err := r.listen(cfg.FleetAddr, cfg.FleetTLSAddr); err != nil {
			return err
		}
		if err := r.writeHostsForRelay(); err != nil {
			return err
		}
		if cfg.FleetDNSAddr != "" {
			host, _, _ := net.SplitHostPort(r.addrs[0])
			if err := r.serveDNS(cfg.FleetDNSAddr, host); err != nil {
				return err
			}
		}
	}
	r.connBase = r.fleet.Stats().Connections
	if l, ok := r.target.(Launcher); ok {
		w := LaunchWiring{FleetAddr: r.addrs[0], FleetTLSAddr: r.addrs[1], RunDir: r.RunDir(),
			Wiring: relay.Wiring{PLCURL: cfg.PLCScheme + "://" + r.fleet.PLCName(), UpstreamURL: "https://" + r.fleet.UpstreamName(), CACertFile: r.ca.CertPath()}}
		if err := l.Launch(ctx, w); err != nil {
			return fmt.Errorf("rig: launching %s: %w", l.Image(), err)
		}
	}
	if err := r.consume(r.connectWithin(3 * time.Minute)); err != nil {
		return err
	}
	fmt.Fprintf(cfg.Log, "relaysoak: %s connected to %d hosts; firehose %s\n", r.target.Image(), r.fleet.Stats().Connections-r.connBase, r.target.FirehoseURL())
	return nil
}

// writeHostsForRelay writes hosts-for-relay into the run directory (every
// fleet name at the fleet's address, for the relay's /etc/hosts) and says
// what the relay needs.
func (r *Harness) writeHostsForRelay() error {
	cfg := r.cfg
	host, _, err := net.SplitHostPort(r.addrs[0])
	if err != nil {
		return fmt.Errorf("rig: --fleet-listen %q: %w", cfg.FleetAddr, err)
	}
	hostsPath := filepath.Join(cfg.RunDir, rundir.HostsForRelay)
	var b strings.Builder
	fmt.Fprintf(&b, "# Map every fleet name to the fleet (%s), e.g. append to the relay's /etc/hosts.\n", host)
	for _, n := range append(r.fleet.Names(), r.fleet.HostNames()...) {
		fmt.Fprintf(&b, "%s %s\n", host, n)
	}
	if err := os.WriteFile(hostsPath, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("rig: writing %s: %w", hostsPath, err)
	}
	plc := fmt.Sprintf("PLC http://%s", r.fleet.PLCName())
	at := r.addrs[0]
	if r.addrs[1] != "" {
		plc = fmt.Sprintf("PLC https://%s trusting %s", r.fleet.PLCName(), r.ca.CertPath())
		at += " (TLS at " + r.addrs[1] + ")"
	}
	fmt.Fprintf(cfg.Log, "relaysoak: fleet of %d hosts at %s; the relay needs: the names in %s, %s, and the hosts as ws:// rows\n",
		len(r.fleet.HostNames()), at, hostsPath, plc)
	return nil
}
