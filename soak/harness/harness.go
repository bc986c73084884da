// Package harness assembles one run: the run's CA, the fake network (fleet)
// listening on the run network's gateway, the relay under test in its
// container, and a consumer of the relay's firehose; it hands the fleet to
// a replay for the load and reports delivery, lag and what the relay
// logged.
//
// It must not know a relay's habits (package relay's profiles do: which
// counters and log lines to read are asked of them) nor how frames are
// made (package fakepds does). It lives under soak because a run is a
// part of a soak: package soak samples, judges and reports around it, and
// the top level still reads captures → replay → fakepds → relay → soak.
package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relaysoak/relaysoak/fakepds"
	"github.com/relaysoak/relaysoak/fakepds/pki"
	"github.com/relaysoak/relaysoak/internal/promtext"
	"github.com/relaysoak/relaysoak/relay"
	"github.com/relaysoak/relaysoak/soak/firehose"
)

// Config of a run. Zero values are sensible defaults except RunDir.
type Config struct {
	// RunDir holds the CA, the relay's data and log. Required.
	RunDir string
	// Fleet configures the fake network (hosts, accounts, PLC…).
	Fleet fakepds.Config
	// Relay configures the container (image, profile, memory…); RunDir and
	// CACertFile are filled in here, and PLCURL and UpstreamURL when empty
	// (the fleet's own names). A URL set here must name a host the fleet
	// answers to, e.g. https://plc.directory with Fleet.PLCAliases.
	Relay relay.Config
	// PLCScheme: "https" (default: the production resolution path, over
	// TLS with the run's CA) or "http".
	PLCScheme string
	// VerifyEvery, passed to the firehose consumer: 0/1 all (tests), n
	// every nth (long runs), <0 none.
	VerifyEvery int
	// MetricsEvery is how often the relay's metrics are scraped during the
	// run (default 5s); the resolver counter's series is kept, bounded.
	MetricsEvery time.Duration
	// Log receives progress; default discard.
	Log io.Writer

	// External soaks a relay the rig does not start (a Kubernetes
	// deployment, a staging box): no container; the fleet listens at
	// FleetAddr (ws/http) and FleetTLSAddr (https/wss), with the CA kept in
	// CADir (default: the run directory) so the relay can trust it once.
	External                *External
	FleetAddr, FleetTLSAddr string
	CADir                   string
	// FleetDNSAddr, with an external relay, serves DNS (UDP) answering every
	// fleet name with FleetAddr's IP: for a relay whose resolver can be
	// pointed at a server but whose hosts file cannot be written
	// (docker-compose's `dns:`).
	FleetDNSAddr string
	// Attach, in place of External, soaks a relay the caller runs itself
	// (a test relay beside the test): the fleet listens at FleetAddr and
	// FleetTLSAddr (port 0 picks a free one), and a Launcher is launched
	// once it does.
	Attach Target
	// ConnectWithin bounds the wait for the relay to dial every host
	// (default 60 s for a container, 3 minutes for a relay the rig does
	// not start).
	ConnectWithin time.Duration

	// Share runs this rig's relay on another rig's fleet and CA (an A/B
	// soak): every host serves both relays the same stream. The fleet is
	// served on this relay's network too, and is not closed with this rig;
	// the other rig writes the load.
	Share *Harness
}

// Harness is one assembled run.
type Harness struct {
	cfg      Config
	ca       *pki.CA
	fleet    *fakepds.Fleet
	relay    *relay.Runner // nil for an external relay
	target   Target        // relay, or the external relay
	firehose *firehose.Consumer

	servers  []*http.Server
	addrs    [2]string // where the fleet listens: plain, TLS
	dns      net.PacketConn
	shared   bool            // the fleet belongs to cfg.Share
	connBase int             // fleet connections before this relay dialled in
	tlsErrs  handshakeErrors // failed TLS handshakes on the fleet's TLS port
	needs    relay.NetworkNeeds
	cancel   context.CancelFunc
	bg       sync.WaitGroup

	mu          sync.Mutex
	resolves    []Point // the profile's resolutions counter over time, bounded
	resolveErrs []Point // its failed resolutions, bounded
	scrapeErr   string
}

// Counts is what the fleet emitted and the rig's consumer received so far.
type Counts struct {
	Fleet    fakepds.Stats
	Firehose firehose.Stats
}

// Counts reads both sides' counters now.
func (r *Harness) Counts() Counts {
	return Counts{Fleet: r.fleet.Stats(), Firehose: r.firehose.Stats()}
}

// Collector exports the fleet's counters to Prometheus.
func (r *Harness) Collector() prometheus.Collector { return r.fleet.Collector() }

// Target is the relay under test.
func (r *Harness) Target() Target { return r.target }

// Relay is the relay's container, nil for an external relay: what only a
// container has (its PID, a signal, its pprof endpoint).
func (r *Harness) Relay() *relay.Runner { return r.relay }

// Fleet is the fake network, for what a run plants in it on purpose
// (tests' faults) and for the replay that loads it.
func (r *Harness) Fleet() *fakepds.Fleet { return r.fleet }

// Start builds everything and returns once the relay is healthy, connected
// to every host, and the rig's consumer is subscribed to its firehose. On
// error everything made so far is removed.
func Start(ctx context.Context, cfg Config) (_ *Harness, err error) {
	if cfg.RunDir == "" {
		return nil, errors.New("rig: Config.RunDir is required")
	}
	if cfg.PLCScheme == "" {
		cfg.PLCScheme = "https"
	}
	if cfg.MetricsEvery <= 0 {
		cfg.MetricsEvery = 5 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if err := os.MkdirAll(cfg.RunDir, 0o755); err != nil {
		return nil, fmt.Errorf("rig: run dir: %w", err)
	}
	r := &Harness{cfg: cfg}
	defer func() {
		if err != nil {
			r.Close(context.WithoutCancel(ctx))
		}
	}()
	if cfg.Share != nil {
		if cfg.External != nil {
			return nil, errors.New("rig: an external relay cannot share another rig's fleet")
		}
		if err := checkOpenFiles(len(cfg.Share.fleet.HostNames()), 2); err != nil {
			return nil, err
		}
		r.ca, r.fleet, r.shared = cfg.Share.ca, cfg.Share.fleet, true
		facts := profileFacts(cfg.Relay.Profile)
		r.needs = facts.Network
		if r.needs.TLSHosts != (r.fleet.PDSScheme() == "https") {
			return nil, fmt.Errorf("rig: the %s relay and the relay it is compared with need the fleet's hosts with different schemes (wss:// against ws://): they cannot share one fleet", facts.Name)
		}
		if cfg.Attach != nil {
			r.addrs = cfg.Share.addrs
			return r, r.attach(ctx)
		}
		return r, r.startRelay(ctx)
	}
	if err := checkOpenFiles(max(cfg.Fleet.Hosts, 1), 1); err != nil {
		return nil, err
	}
	if cfg.External != nil && cfg.Attach != nil {
		return nil, errors.New("rig: External and Attach are two ways to name the relay: set one")
	}
	if cfg.External != nil {
		caDir := cfg.CADir
		if caDir == "" {
			caDir = cfg.RunDir
		}
		r.ca, err = pki.Open(pki.Config{Dir: caDir})
	} else {
		r.ca, err = pki.New(pki.Config{Dir: cfg.RunDir})
	}
	if err != nil {
		return nil, err
	}
	// A relay that hard-codes names of the real network, or dials only
	// wss://, shapes the fleet: the fleet answers to those names and its
	// DID documents say https.
	facts := profileFacts(cfg.Relay.Profile)
	needs := facts.Network
	fc := cfg.Fleet
	fc.PLCAliases = append(append([]string(nil), fc.PLCAliases...), needs.PLCNames...)
	fc.UpstreamAliases = append(append([]string(nil), fc.UpstreamAliases...), needs.UpstreamNames...)
	if needs.TLSHosts {
		if fc.PDSScheme == "http" {
			return nil, fmt.Errorf("rig: the %s relay dials hosts wss:// only, but the fleet is set to PDSScheme http", facts.Name)
		}
		fc.PDSScheme = "https"
	}
	r.needs = needs
	if needs.CATrustLimit != "" {
		fmt.Fprintf(cfg.Log, "relaysoak: warning: %s\n", needs.CATrustLimit)
	}
	if fc.HistoryDir == "" && cfg.RunDir != "" {
		// The fleet's history sits beside the run it serves, where an
		// operator looking at disk use finds it; it goes when the fleet does.
		fc.HistoryDir = filepath.Join(cfg.RunDir, "fleet-history")
	}
	if fc.Logger == nil {
		fc.Logger = slog.New(slog.NewTextHandler(cfg.Log, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	r.fleet, err = fakepds.New(fc)
	if err != nil {
		return nil, fmt.Errorf("rig: fleet: %w", err)
	}
	if cfg.External != nil || cfg.Attach != nil {
		return r, r.attach(ctx)
	}
	return r, r.startRelay(ctx)
}

// startRelay starts the relay container on its own network, serves the
// fleet on that network's gateway, onboards the hosts and subscribes to the
// relay's firehose.
func (r *Harness) startRelay(ctx context.Context) (err error) {
	cfg, needs := r.cfg, r.needs
	rc := cfg.Relay
	rc.RunDir = cfg.RunDir
	rc.CACertFile = r.ca.CertPath()
	// A relay told where its PLC and upstream are gets the fleet's own
	// names; one that names them itself (https://plc.directory) must name
	// one the fleet answers to, or it would resolve nothing.
	if rc.PLCURL == "" && len(needs.PLCNames) > 0 {
		rc.PLCURL = "https://" + needs.PLCNames[0]
	}
	if rc.PLCURL == "" {
		rc.PLCURL = cfg.PLCScheme + "://" + r.fleet.PLCName()
	}
	if rc.UpstreamURL == "" {
		rc.UpstreamURL = "https://" + r.fleet.UpstreamName()
	}
	if err := r.checkNamed("PLC", rc.PLCURL); err != nil {
		return err
	}
	if err := r.checkNamed("upstream", rc.UpstreamURL); err != nil {
		return err
	}
	if rc.Log == nil {
		rc.Log = cfg.Log
	}
	r.relay, err = relay.New(ctx, rc)
	if err != nil {
		return err
	}
	r.target = r.relay
	gw := r.relay.Gateway().String()
	if err := r.listen(net.JoinHostPort(gw, "80"), net.JoinHostPort(gw, "443")); err != nil {
		return err
	}
	// Hosts are dialled as the DID documents name them: wss:// on 443 with
	// a certificate minted for each name when the fleet says https.
	tlsHosts := r.fleet.PDSScheme() == "https"
	var hosts []relay.Host
	for _, h := range r.fleet.HostNames() {
		hosts = append(hosts, relay.Host{Name: h, TLS: tlsHosts})
	}
	r.connBase = r.fleet.Stats().Connections
	if err := r.relay.Start(ctx, relay.StartOptions{
		Names: r.fleet.Names(), Hosts: hosts}); err != nil {
		return err
	}
	if err := r.consume(r.connectWithin(60 * time.Second)); err != nil {
		return err
	}
	fmt.Fprintf(cfg.Log, "relaysoak: relay %s connected to %d hosts; fleet at %s, firehose %s\n",
		r.relay.Image(), len(hosts), r.relay.Gateway(), r.relay.FirehoseURL())
	return nil
}

// profileFacts are p's facts; none when p is nil (the default, indigo,
// needs nothing of the fake network).
func profileFacts(p relay.Profile) relay.Facts {
	if p == nil {
		return relay.Facts{}
	}
	return p.Facts()
}

// connectWithin is the configured wait for the relay's connections, or def.
func (r *Harness) connectWithin(def time.Duration) time.Duration {
	if r.cfg.ConnectWithin > 0 {
		return r.cfg.ConnectWithin
	}
	return def
}

// consume subscribes the rig to the relay's firehose, starts scraping its
// metrics, and waits until the relay has dialled every host, so the first
// frames are not written into the void.
func (r *Harness) consume(connectWithin time.Duration) error {
	var err error
	r.firehose, err = firehose.New(firehose.Config{
		URL: r.target.FirehoseURL(), Origin: r.fleet.HostOfDID, Directory: r.fleet.Directory(),
		VerifyEvery: r.cfg.VerifyEvery, Captured: r.fleet.IsImported,
		// Deleted accounts leave at their #account event; the bound,
		// twice the population, only backs that up, so the cache never
		// grows with the run toward the consumer's default bound.
		MaxIdentities: 2*r.fleet.Stats().Accounts + 1024,
	})
	if err != nil {
		return err
	}
	bctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.bg.Add(2)
	go func() { defer r.bg.Done(); r.firehose.Run(bctx) }()
	go func() { defer r.bg.Done(); r.scrapeLoop(bctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for r.firehose.Stats().Connects == 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("rig: could not subscribe to the relay's firehose at %s: %s", r.target.FirehoseURL(), r.firehose.Stats().LastError)
		}
		time.Sleep(50 * time.Millisecond)
	}
	want := r.connBase + len(r.fleet.HostNames())
	deadline = time.Now().Add(connectWithin)
	for r.fleet.Stats().Connections < want {
		if time.Now().After(deadline) {
			msg := fmt.Sprintf("rig: the relay connected to %d of %d hosts within %s%s", r.fleet.Stats().Connections-r.connBase, want-r.connBase, connectWithin, r.tlsErrs.explain())
			if r.needs.CATrustLimit != "" {
				msg += "; its profile says: " + r.needs.CATrustLimit
			}
			return errors.New(msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

// profile is the relay's profile: the runner's (which fills in the
// default), or the one configured for an external relay (nil when none).
func (r *Harness) profile() relay.Profile {
	if r.relay != nil {
		return r.relay.Profile()
	}
	return r.cfg.Relay.Profile
}

// facts are the relay's profile's facts, none when it has no profile.
func (r *Harness) facts() relay.Facts { return profileFacts(r.profile()) }

// Drain waits until the consumer has every commit the fleet emitted, or
// nothing arrives for quiet, or max passes.
func (r *Harness) Drain(ctx context.Context, quiet, max time.Duration) {
	deadline := time.Now().Add(max)
	last, lastChange := r.firehose.Stats().Commits, time.Now()
	for time.Now().Before(deadline) && ctx.Err() == nil {
		select {
		case <-r.target.Exited():
			return
		default:
		}
		got := r.firehose.Stats().Commits
		if got >= r.fleet.Stats().Commits {
			return
		}
		if got != last {
			last, lastChange = got, time.Now()
		} else if time.Since(lastChange) > quiet {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Report is what a run measured.
type Report struct {
	Fleet    fakepds.Stats
	Firehose firehose.Stats
	// Delivery is commits out of the relay ÷ commits the fleet emitted.
	Delivery float64
	// RelayReceived is the relay's own count of commits received (its
	// profile's CommitsReceived counter), summed over hosts: the
	// cross-check (received by the relay ÷ emitted). 0 when it keeps none.
	RelayReceived   float64
	RelayMetricsErr string
	Exit            *relay.Exit
	// LogCounts counts lines of the relay's log containing each pattern.
	LogCounts map[string]int
	LogPath   string
}

// Finish scrapes the relay's counters, stops the relay (keeping its
// complete log), stops the consumer and reports. The rig must still be
// closed. Patterns default to the profile's LogPatterns.
func (r *Harness) Finish(ctx context.Context, patterns ...string) (Report, error) {
	facts := r.facts()
	if len(patterns) == 0 {
		patterns = facts.LogPatterns
	}
	var rep Report
	var errs []error
	if c := facts.Counters; c.CommitsReceived != "" || c.Resolutions != "" {
		var names []string
		for _, n := range []string{c.CommitsReceived, c.Resolutions} {
			if n != "" {
				names = append(names, n)
			}
		}
		if m, err := promtext.Scrape(ctx, r.target.MetricsURL(), names...); err == nil {
			rep.RelayReceived, _ = m.Sum(c.CommitsReceived, nil)
			if c.Resolutions != "" {
				v, _ := m.Sum(c.Resolutions, nil)
				r.mu.Lock()
				r.resolves = append(r.resolves, Point{At: time.Now(), Value: v})
				r.mu.Unlock()
			}
		} else {
			rep.RelayMetricsErr = err.Error()
		}
	}
	exit, err := r.target.Stop(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	rep.Exit = exit
	if r.cancel != nil {
		r.cancel()
		r.bg.Wait()
	}
	rep.Fleet = r.fleet.Stats()
	rep.Firehose = r.firehose.Stats()
	rep.Delivery = rep.Firehose.Delivery(rep.Fleet.Commits)
	if rep.LogPath = r.target.LogPath(); rep.LogPath != "" {
		rep.LogCounts, err = CountLog(rep.LogPath, patterns)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return rep, errors.Join(errs...)
}

// Close stops everything and removes the container and network. Safe to
// call more than once.
func (r *Harness) Close(ctx context.Context) error {
	var errs []error
	if r.cancel != nil {
		r.cancel()
		r.bg.Wait()
		r.cancel = nil
	}
	if r.relay != nil {
		if err := r.relay.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if l, ok := r.target.(Launcher); ok {
		if _, err := l.Stop(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	for _, s := range r.servers {
		s.Close()
	}
	r.servers = nil
	if r.dns != nil {
		r.dns.Close()
		r.dns = nil
	}
	if r.fleet != nil && !r.shared {
		if err := r.fleet.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	r.fleet = nil
	return errors.Join(errs...)
}

// RunDir of the run.
func (r *Harness) RunDir() string { p, _ := filepath.Abs(r.cfg.RunDir); return p }

// Ledger is the fleet's account of every host's commits for this rig's
// relay (fakepds.HostLedger), the relay known by the address its firehose
// is served at; on a fleet with one reader, that reader. Nil before the
// relay subscribed to any host, or when the fleet cannot tell which
// reader is this relay.
func (r *Harness) Ledger() []fakepds.HostLedger {
	readers := r.fleet.Readers()
	if u, err := url.Parse(r.target.FirehoseURL()); err == nil {
		if l := r.fleet.Ledger(u.Hostname()); l != nil {
			return l
		}
	}
	if len(readers) == 1 {
		return r.fleet.Ledger(readers[0])
	}
	return nil
}
