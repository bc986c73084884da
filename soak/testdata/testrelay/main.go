// Command testrelay is the project's one stand-in relay, built for tests
// only. It has two uses, chosen by FLAVOUR:
//
//   - (unset) the rig's positive control: a target whose memory growth is
//     set by configuration (the leaks below), so the soak's verdict, measured
//     slope and attribution can be checked against the truth;
//   - zlay or rsky: it behaves like those relays at the edges their profiles
//     touch, so the profiles' wiring can be tested where neither relay can
//     be built (no Zig toolchain, no crates registry). The leaks apply too.
//
// At the edges the rig touches it behaves like a relay: it learns its hosts
// from the upstream's com.atproto.sync.listHosts (paged, over HTTPS trusting
// the run's CA) or from HOSTS, subscribes to every host's subscribeRepos,
// re-emits every frame on its own subscribeRepos with its own seq, serves
// /xrpc/_health and Prometheus /metrics, resolves DIDs at the PLC, and exits
// 0 promptly on SIGTERM.
//
// What it retains lives in anonymous mappings written page by page and never
// unmapped: outside the Go heap, so the garbage collector cannot blur it, and
// counted exactly in RssAnon. RETAIN_IN=heap keeps it in the Go heap
// instead, where the collector's goal (its live heap) sees it: what a Go
// relay's own leak looks like.
//
// FLAVOUR=zlay: firehose on RELAY_PORT (3000); /metrics, /_health and
// /_readyz on RELAY_METRICS_PORT (3001) with zlay's memory gauges; hosts once
// at start from listHosts at https://$RELAY_UPSTREAM, dialled wss://; DIDs
// resolved at the hard-coded https://plc.directory; trusts the system bundle
// (Go reads /etc/ssl/certs/ca-certificates.crt when SSL_CERT_FILE is unset,
// as Zig's standard library does); on SIGTERM prints LEAK_REPORTS allocator
// leak reports in the form of Zig's GeneralPurposeAllocator.
//
// FLAVOUR=rsky: firehose on :9000; /metrics and /_health on
// RELAY_METRICS_LISTEN (:9100); hosts from paged listHosts on each of
// RELAY_DISCOVERY_UPSTREAMS (host names, every 5 min), dialled wss://; DIDs
// at https://plc.directory, whose /export it polls every 60 s; its roots are
// compiled in, so it trusts no private CA unless TRUST_SYSTEM=1 stands for
// a build that does.
//
// Settings of the control (environment; the leaks apply to every flavour):
//
//	API_LISTEN            firehose and health (default :2470)
//	METRICS_LISTEN        /metrics (default :2471)
//	UPSTREAM_URL          learn hosts from its listHosts (e.g. https://relay.test)
//	HOSTS                 comma-separated host names instead of UPSTREAM_URL
//	HOST_SCHEME           ws (default) or wss, for dialling hosts
//	CA_FILE               PEM CA bundle trusted for HTTPS (default: system
//	                      roots, which honour SSL_CERT_FILE)
//	PLC_URL               resolve DIDs at {PLC_URL}/{did} ("" = no resolver)
//	LEAK_BYTES_PER_FRAME  bytes retained per received frame
//	LEAK_AFTER            retain per frame only after this long (e.g. 2m)
//	WARMUP                SIZE:TAU, e.g. 64MiB:30s: retain SIZE·(1−e^(−t/TAU)),
//	                      a rise that levels off, as caches filling do
//	SAWTOOTH              SIZE:PERIOD, e.g. 16MiB:20s: every PERIOD map and
//	                      touch SIZE, unmap it half a PERIOD later
//	RESOLVER_LEAK_BYTES   bytes retained per DID lookup (the resolver path is
//	                      where the seed relay's leak lived)
//	LEAK_BYTES_PER_DISCONNECT
//	                      bytes retained each time one of its own firehose
//	                      subscribers goes, for any reason (closed, reset,
//	                      cut off as too slow, shutdown): the consumer-side
//	                      leak of a subscriber's buffers kept after it left
//	LEAK_BYTES_PER_RECONNECT
//	                      bytes retained each time it subscribes to a host
//	                      again after losing it (an outage): the upstream-side
//	                      leak of a connection's state kept after it ended
//	FLEET_ADDR, FLEET_TLS_ADDR
//	                      dial every name's port 80 at FLEET_ADDR and 443 at
//	                      FLEET_TLS_ADDR instead of resolving it: for the
//	                      relay run as a process beside a test, where the
//	                      fleet's names resolve nowhere
//	DROP_HOST             HOST:EVERY[:AFTER], e.g. pds0001.test:100:1m: after
//	                      AFTER, silently pass on no #commit of HOST's one
//	                      in EVERY (a planted loss), counted in
//	                      testrelay_dropped_commits_total
//	ABANDON_HOST          HOST:AFTER, e.g. pds0001.test:1m: after AFTER, close
//	                      the connection to HOST cleanly (a close frame, and
//	                      what HOST sent before it saw the close passed on)
//	                      and never dial it again (a relay that stops reading
//	                      a host), logging "abandoning host"
//	RETAIN_IN             mmap (default: anonymous pages outside the Go heap)
//	                      or heap (the Go heap, seen by the collector)
//	HEAP_TEETH            SIZE:PERIOD, e.g. 32MiB:10s: climb to SIZE in the Go
//	                      heap over each PERIOD, then let it go: the sawtooth
//	                      whose floors are the live heap
//	CURSOR_LEAK           bytes held in the Go heap, by a goroutine that waits
//	                      for shutdown, for each subscribe with a cursor (a
//	                      consumer coming back): a goroutine and its buffer
//	                      kept per reconnect
//	IDENTITY_LEAK         bytes retained, forever, for each client identity
//	                      (the remote address's host and the User-Agent, as
//	                      indigo labels its per-client metrics) the first time
//	                      it subscribes
//	STUCK_PIN             bytes pinned in the Go heap by a subscriber whose
//	                      queue is full, until its connection ends; with it a
//	                      subscriber is never cut off and its writes have no
//	                      deadline (frames it has no room for are dropped), so
//	                      a client that stops reading and keeps its socket
//	                      open holds them for as long as it stays (a bounded
//	                      queue per stuck client)
//	SUBSCRIBER_QUEUE      frames queued per subscriber (default 4096); a
//	                      subscriber that falls further behind, or takes no
//	                      frame for 10 s, is cut off: an error frame
//	                      ConsumerTooSlow, a close frame, the connection closed
//
// Subscribers' disconnects are counted in
// testrelay_subscriber_disconnects_total{reason}, reason one of closed (a
// close frame or a clean end of the connection), reset, too_slow, shutdown
// or error.
//
// Sizes are bytes, or a number with KiB, MiB or GiB.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/bluesky-social/indigo/events"
	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

const firehosePath = "/xrpc/com.atproto.sync.subscribeRepos"

var (
	// Named as indigo's relay names them, so the rig's cross-checks
	// (commits received, DID resolutions) read this target unchanged.
	commitsReceived = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "repo_commits_received_counter", Help: "#commit frames received, by host"}, []string{"pds"})
	didResolutions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "atproto_identity_resolve_did", Help: "DID resolutions at the PLC"}, []string{"directory", "status"})
	framesReceived = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "testrelay_frames_received_total", Help: "frames received from all hosts"})
	framesSent = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "testrelay_frames_sent_total", Help: "frames written to subscribers"})
	retainedBytes = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "testrelay_retained_bytes", Help: "bytes retained on purpose (never freed)"})
	connectedHosts = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "testrelay_connected_hosts", Help: "upstream hosts subscribed now"})
	subscribers = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "testrelay_subscribers", Help: "firehose subscribers connected now"})
	clientIdentities = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "testrelay_client_identities", Help: "client identities seen (with IDENTITY_LEAK)"})
	pinnedBytes = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "testrelay_pinned_bytes", Help: "bytes pinned by subscribers with a full queue (with STUCK_PIN)"})
	subscriberDisconnects = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "testrelay_subscriber_disconnects_total", Help: "firehose subscribers gone, by reason"}, []string{"reason"})
	hostReconnects = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "testrelay_host_reconnects_total", Help: "upstream hosts subscribed to again after losing them"})
	droppedCommits = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "testrelay_dropped_commits_total", Help: "#commit frames received and not passed on, on purpose (DROP_HOST)"})

	// The zlay and rsky flavours' own names, registered for those flavours.
	flavourResolutions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "relay_did_resolutions_total", Help: "DID resolutions, by status"}, []string{"status"})
	hostDialFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "relay_host_dial_failures_total", Help: "failed dials of upstream hosts"})
	exportPolls = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "relay_plc_export_polls_total", Help: "polls of the PLC's /export"})
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if err := run(log); err != nil {
		log.Error("testrelay failed", "err", err)
		os.Exit(1)
	}
}

type settings struct {
	flavour                  string // "", zlay or rsky
	apiListen, metricsListen string
	upstreams                []string // base URLs whose listHosts name the hosts
	hostScheme               string
	hosts                    []string
	caFile, plcURL           string
	noRoots                  bool          // trust no CA at all (rsky's compiled-in roots)
	discoverEvery            time.Duration // 0: hosts learnt once, at start
	exportEvery              time.Duration // 0: the PLC's /export is not polled
	leakReports              int           // zlay's allocator leak reports printed at exit
	leakPerFrame             int
	leakAfter                time.Duration
	warmupBytes              int64
	warmupTau                time.Duration
	sawBytes                 int64
	sawPeriod                time.Duration
	resolverLeak             int
	leakPerDisconnect        int
	leakPerReconnect         int
	retainInHeap             bool
	teethBytes               int64
	teethPeriod              time.Duration
	cursorLeak               int
	identityLeak             int
	stuckPin                 int
	subscriberQueue          int
	// DROP_HOST: one in dropEvery of dropHost's commits, after dropAfter.
	dropHost  string
	dropEvery int
	dropAfter time.Duration
	// ABANDON_HOST: stop reading abandonHost after abandonAfter.
	abandonHost  string
	abandonAfter time.Duration
}

// plcDirectory is where zlay and rsky-relay resolve DIDs: hard-coded.
const plcDirectory = "https://plc.directory"

func loadSettings() (settings, error) {
	s := settings{flavour: os.Getenv("FLAVOUR")}
	var err error
	switch s.flavour {
	case "":
		s.apiListen, s.metricsListen = envOr("API_LISTEN", ":2470"), envOr("METRICS_LISTEN", ":2471")
		s.hostScheme = envOr("HOST_SCHEME", "ws")
		s.caFile = os.Getenv("CA_FILE")
		s.plcURL = strings.TrimRight(os.Getenv("PLC_URL"), "/")
		if u := os.Getenv("UPSTREAM_URL"); u != "" {
			s.upstreams = []string{u}
		}
		for _, h := range strings.Split(os.Getenv("HOSTS"), ",") {
			if h = strings.TrimSpace(h); h != "" {
				s.hosts = append(s.hosts, h)
			}
		}
		if len(s.upstreams) == 0 && len(s.hosts) == 0 {
			return s, errors.New("set UPSTREAM_URL (hosts from its listHosts) or HOSTS")
		}
		if s.hostScheme != "ws" && s.hostScheme != "wss" {
			return s, fmt.Errorf("HOST_SCHEME must be ws or wss, got %q", s.hostScheme)
		}
	case "zlay":
		s.apiListen, s.metricsListen = ":"+envOr("RELAY_PORT", "3000"), ":"+envOr("RELAY_METRICS_PORT", "3001")
		s.upstreams = []string{"https://" + envOr("RELAY_UPSTREAM", "bsky.network")}
		s.hostScheme, s.plcURL = "wss", plcDirectory
		if v := os.Getenv("LEAK_REPORTS"); v != "" {
			if s.leakReports, err = strconv.Atoi(v); err != nil || s.leakReports < 0 {
				return s, fmt.Errorf("LEAK_REPORTS: want a number of reports, got %q", v)
			}
		}
	case "rsky":
		s.apiListen, s.metricsListen = ":9000", envOr("RELAY_METRICS_LISTEN", ":9100")
		for _, u := range strings.Split(envOr("RELAY_DISCOVERY_UPSTREAMS", "bsky.network"), ",") {
			if u = strings.TrimSpace(u); u != "" {
				s.upstreams = append(s.upstreams, "https://"+u)
			}
		}
		s.hostScheme, s.plcURL = "wss", plcDirectory
		s.noRoots = os.Getenv("TRUST_SYSTEM") != "1"
		s.discoverEvery, s.exportEvery = 5*time.Minute, time.Minute
	default:
		return s, fmt.Errorf("FLAVOUR must be unset, zlay or rsky, got %q", s.flavour)
	}
	if s.leakPerFrame, err = sizeEnv("LEAK_BYTES_PER_FRAME"); err != nil {
		return s, err
	}
	if s.resolverLeak, err = sizeEnv("RESOLVER_LEAK_BYTES"); err != nil {
		return s, err
	}
	if s.leakPerDisconnect, err = sizeEnv("LEAK_BYTES_PER_DISCONNECT"); err != nil {
		return s, err
	}
	if s.leakPerReconnect, err = sizeEnv("LEAK_BYTES_PER_RECONNECT"); err != nil {
		return s, err
	}
	if s.cursorLeak, err = sizeEnv("CURSOR_LEAK"); err != nil {
		return s, err
	}
	if s.identityLeak, err = sizeEnv("IDENTITY_LEAK"); err != nil {
		return s, err
	}
	if s.stuckPin, err = sizeEnv("STUCK_PIN"); err != nil {
		return s, err
	}
	switch v := envOr("RETAIN_IN", "mmap"); v {
	case "mmap":
	case "heap":
		s.retainInHeap = true
	default:
		return s, fmt.Errorf("RETAIN_IN must be mmap or heap, got %q", v)
	}
	s.subscriberQueue = 4096
	if v := os.Getenv("SUBSCRIBER_QUEUE"); v != "" {
		if s.subscriberQueue, err = strconv.Atoi(v); err != nil || s.subscriberQueue < 1 {
			return s, fmt.Errorf("SUBSCRIBER_QUEUE: want a positive number of frames, got %q", v)
		}
	}
	if v := os.Getenv("LEAK_AFTER"); v != "" {
		if s.leakAfter, err = time.ParseDuration(v); err != nil {
			return s, fmt.Errorf("LEAK_AFTER: %w", err)
		}
	}
	if v := os.Getenv("DROP_HOST"); v != "" {
		parts := strings.Split(v, ":")
		if len(parts) < 2 || len(parts) > 3 {
			return s, fmt.Errorf("DROP_HOST: want HOST:EVERY[:AFTER], got %q", v)
		}
		s.dropHost = parts[0]
		if s.dropEvery, err = strconv.Atoi(parts[1]); err != nil || s.dropEvery < 1 {
			return s, fmt.Errorf("DROP_HOST: EVERY must be a positive number, got %q", parts[1])
		}
		if len(parts) == 3 {
			if s.dropAfter, err = time.ParseDuration(parts[2]); err != nil {
				return s, fmt.Errorf("DROP_HOST: AFTER: %w", err)
			}
		}
	}
	if v := os.Getenv("ABANDON_HOST"); v != "" {
		host, after, ok := strings.Cut(v, ":")
		if !ok {
			return s, fmt.Errorf("ABANDON_HOST: want HOST:AFTER, got %q", v)
		}
		s.abandonHost = host
		if s.abandonAfter, err = time.ParseDuration(after); err != nil {
			return s, fmt.Errorf("ABANDON_HOST: AFTER: %w", err)
		}
	}
	if s.warmupBytes, s.warmupTau, err = sizeAndDuration("WARMUP"); err != nil {
		return s, err
	}
	if s.sawBytes, s.sawPeriod, err = sizeAndDuration("SAWTOOTH"); err != nil {
		return s, err
	}
	if s.teethBytes, s.teethPeriod, err = sizeAndDuration("HEAP_TEETH"); err != nil {
		return s, err
	}
	return s, nil
}

func run(log *slog.Logger) error {
	cfg, err := loadSettings()
	if err != nil {
		return err
	}
	prometheus.MustRegister(commitsReceived, didResolutions, framesReceived, framesSent, retainedBytes, connectedHosts,
		subscribers, subscriberDisconnects, hostReconnects, droppedCommits, clientIdentities, pinnedBytes)
	registerFlavourMetrics(cfg.flavour)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	started := time.Now()

	hc, tlsCfg, err := httpClient(cfg.caFile, cfg.noRoots)
	if err != nil {
		return err
	}
	dial := fleetDial(os.Getenv("FLEET_ADDR"), os.Getenv("FLEET_TLS_ADDR"))
	hc.Transport.(*http.Transport).DialContext = dial
	mem := &arena{heap: cfg.retainInHeap}
	h := newHub(hubConfig{queue: cfg.subscriberQueue, leakPerDisconnect: cfg.leakPerDisconnect, cursorLeak: cfg.cursorLeak,
		identityLeak: cfg.identityLeak, stuckPin: cfg.stuckPin}, mem, log)
	var res *resolver
	if cfg.plcURL != "" {
		res = newResolver(hc, cfg.plcURL, cfg.resolverLeak, mem, log)
		go res.run(ctx, 4)
	}
	if cfg.warmupBytes > 0 {
		go warmup(ctx, mem, cfg.warmupBytes, cfg.warmupTau, log)
	}
	if cfg.sawBytes > 0 {
		go sawtooth(ctx, cfg.sawBytes, cfg.sawPeriod, log)
	}
	if cfg.teethBytes > 0 {
		go heapTeeth(ctx, cfg.teethBytes, cfg.teethPeriod)
	}

	var ready atomic.Bool
	api := http.NewServeMux()
	health := func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() {
			http.Error(w, `{"status":"starting"}`, http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"ok"}`)
	}
	api.HandleFunc("/xrpc/_health", health)
	api.HandleFunc("/_health", health)
	api.HandleFunc(firehosePath, func(w http.ResponseWriter, r *http.Request) { h.serve(ctx, w, r) })
	metrics := http.NewServeMux()
	metrics.Handle("/metrics", promhttp.Handler())
	metrics.Handle("/debug/pprof/heap", pprof.Handler("heap")) // as indigo serves it
	metrics.HandleFunc("/_health", health)                     // zlay and rsky serve health beside metrics
	metrics.HandleFunc("/_readyz", health)
	servers := []*http.Server{
		{Addr: cfg.apiListen, Handler: api, ReadHeaderTimeout: 10 * time.Second},
		{Addr: cfg.metricsListen, Handler: metrics, ReadHeaderTimeout: 10 * time.Second},
	}
	serveErr := make(chan error, len(servers))
	for _, s := range servers {
		go func() {
			if err := s.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				serveErr <- fmt.Errorf("serving %s: %w", s.Addr, err)
			}
		}()
	}

	f := &follower{cfg: cfg, hub: h, res: res, mem: mem, started: started, log: log,
		dialer: &websocket.Dialer{HandshakeTimeout: 10 * time.Second, TLSClientConfig: tlsCfg, NetDialContext: dial}}
	switch {
	case len(cfg.hosts) > 0:
		f.followAll(ctx, cfg.hosts)
	case cfg.flavour == "":
		// The control needs its hosts before it says it is ready.
		hosts, err := listHosts(ctx, hc, cfg.upstreams[0])
		if err != nil {
			return err
		}
		f.followAll(ctx, hosts)
	case cfg.discoverEvery == 0: // zlay: once, at start; a failure is logged
		f.discover(ctx, hc)
	default: // rsky: in the background, again and again
		go every(ctx, cfg.discoverEvery, func() { f.discover(ctx, hc) })
	}
	if cfg.exportEvery > 0 {
		go every(ctx, cfg.exportEvery, func() { pollExport(ctx, hc, log) })
	}
	ready.Store(true)
	log.Info("testrelay ready", "flavour", cfg.flavour, "hosts", f.count(), "leak_bytes_per_frame", cfg.leakPerFrame,
		"leak_after", cfg.leakAfter.String(), "warmup_bytes", cfg.warmupBytes, "sawtooth_bytes", cfg.sawBytes,
		"resolver", cfg.plcURL, "resolver_leak_bytes", cfg.resolverLeak,
		"leak_bytes_per_disconnect", cfg.leakPerDisconnect, "leak_bytes_per_reconnect", cfg.leakPerReconnect,
		"retain_in_heap", cfg.retainInHeap, "heap_teeth_bytes", cfg.teethBytes, "cursor_leak_bytes", cfg.cursorLeak, "identity_leak_bytes", cfg.identityLeak, "stuck_pin_bytes", cfg.stuckPin,
		"subscriber_queue", cfg.subscriberQueue)

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		return err
	}
	// Nothing is kept that a shutdown must flush: stop serving and go.
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, s := range servers {
		s.Shutdown(sctx)
	}
	log.Info("testrelay stopped", "retained_bytes", mem.total.Load(), "frames_received", f.frames.Load(),
		"dropped_commits", int64(readCounter(droppedCommits)))
	// Zig's GeneralPurposeAllocator reports each leak on stderr after
	// teardown: the address line, then its stack trace.
	for i := range cfg.leakReports {
		fmt.Fprintf(os.Stderr, "error(gpa): memory address 0x7f%08x leaked:\n", 0x1000*(i+1))
		fmt.Fprintf(os.Stderr, "/src/resolver.zig:%d:31: 0x10b2c in resolveDid (zlay)\n", 100+i)
		fmt.Fprintf(os.Stderr, "/src/http_pool.zig:42:17: 0x10c40 in acquire (zlay)\n\n")
	}
	return nil
}

// registerFlavourMetrics registers the names zlay or rsky-relay serve.
func registerFlavourMetrics(flavour string) {
	switch flavour {
	case "zlay":
		gauge := func(name string, f func() float64) {
			prometheus.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: "as zlay names it"}, f))
		}
		memStats := func(f func(*runtime.MemStats) uint64) func() float64 {
			return func() float64 { var ms runtime.MemStats; runtime.ReadMemStats(&ms); return float64(f(&ms)) }
		}
		gauge("relay_process_rss_bytes", func() float64 { return 1024 * procStatusKB("VmRSS") })
		gauge("relay_malloc_arena_bytes", memStats(func(ms *runtime.MemStats) uint64 { return ms.HeapInuse }))
		gauge("relay_malloc_mmap_bytes", memStats(func(ms *runtime.MemStats) uint64 { return ms.HeapSys - ms.HeapInuse }))
		gauge("relay_smaps_rss_kb", func() float64 { return procStatusKB("VmRSS") })
		gauge("relay_smaps_anon_kb", func() float64 { return procStatusKB("RssAnon") })
		gauge("relay_heap_rss_kb", memStats(func(ms *runtime.MemStats) uint64 { return ms.HeapInuse / 1024 }))
		gauge("relay_hosts", func() float64 { return float64(knownHosts.Load()) })
		prometheus.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "relay_frames_received_total", Help: "as zlay names it"},
			func() float64 { return readCounter(framesReceived) }))
	case "rsky":
		prometheus.MustRegister(exportPolls,
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "relay_upstream_events_total", Help: "as rsky-relay names it"},
				func() float64 { return readCounter(framesReceived) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "relay_frames_emitted_total", Help: "as rsky-relay names it"},
				func() float64 { return readCounter(framesSent) }))
	default:
		return
	}
	prometheus.MustRegister(flavourResolutions, hostDialFailures)
}

func readCounter(c prometheus.Counter) float64 {
	var m dto.Metric
	if c.Write(&m) != nil {
		return 0
	}
	return m.GetCounter().GetValue()
}

func procStatusKB(field string) float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			v, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return v
		}
	}
	return 0
}

func every(ctx context.Context, d time.Duration, f func()) {
	for {
		f()
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
		}
	}
}

// pollExport reads a page of the PLC's /export, as rsky-relay does.
func pollExport(ctx context.Context, hc *http.Client, log *slog.Logger) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, plcDirectory+"/export?count=1000&after=", nil)
	if err != nil {
		return
	}
	resp, err := hc.Do(req)
	if err != nil {
		log.Warn("PLC export failed", "err", err)
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	exportPolls.Inc()
}

// follower subscribes to upstream hosts and passes their frames on.
type follower struct {
	cfg     settings
	hub     *hub
	res     *resolver
	mem     *arena
	dialer  *websocket.Dialer
	started time.Time
	log     *slog.Logger
	frames  atomic.Int64
	known   sync.Map // host name → struct{}: each followed once
	// dropSeen counts DROP_HOST's commits since its AFTER.
	dropSeen atomic.Int64
}

// knownHosts is how many hosts are followed (zlay's relay_hosts).
var knownHosts atomic.Int64

func (f *follower) followAll(ctx context.Context, hosts []string) {
	for _, h := range hosts {
		if _, seen := f.known.LoadOrStore(h, struct{}{}); !seen {
			knownHosts.Add(1)
			go f.follow(ctx, h)
		}
	}
}

func (f *follower) count() int64 { return knownHosts.Load() }

// discover learns hosts from every upstream's listHosts and follows the new
// ones; an upstream that cannot be read is logged, as the relays do.
func (f *follower) discover(ctx context.Context, hc *http.Client) {
	for _, u := range f.cfg.upstreams {
		hosts, err := listHostsOnce(ctx, hc, u)
		if err != nil {
			f.log.Warn("listHosts failed", "upstream", u, "err", err)
		}
		f.followAll(ctx, hosts)
	}
}

// follow keeps one host subscribed until ctx ends, resuming from the last
// seq seen on reconnect, as a relay does.
func (f *follower) follow(ctx context.Context, host string) {
	var cursor int64
	connected := false
	if host == f.cfg.abandonHost {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, f.started.Add(f.cfg.abandonAfter))
		defer cancel()
		context.AfterFunc(ctx, func() {
			if ctx.Err() != context.DeadlineExceeded {
				return // the relay is shutting down
			}
			f.log.Warn("abandoning host: closing its connection and never dialling it again", "host", host)
		})
	}
	for ctx.Err() == nil {
		err := f.session(ctx, host, &cursor, &connected)
		if ctx.Err() != nil {
			return
		}
		f.log.Warn("upstream session ended", "host", host, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// session is one subscription to host; connected records that some session
// got through, so every later one is a reconnect.
func (f *follower) session(ctx context.Context, host string, cursor *int64, connected *bool) error {
	u := url.URL{Scheme: f.cfg.hostScheme, Host: host, Path: firehosePath}
	if *cursor > 0 {
		u.RawQuery = "cursor=" + strconv.FormatInt(*cursor, 10)
	}
	conn, _, err := f.dialer.DialContext(ctx, u.String(), nil)
	if err != nil {
		hostDialFailures.Inc()
		return fmt.Errorf("dialling %s: %w", u.String(), err)
	}
	defer conn.Close()
	if *connected {
		hostReconnects.Inc()
		if f.cfg.leakPerReconnect > 0 {
			f.mem.retain(f.cfg.leakPerReconnect)
		}
	}
	*connected = true
	conn.SetReadLimit(5_000_000)
	connectedHosts.Inc()
	defer connectedHosts.Dec()
	stop := context.AfterFunc(ctx, func() {
		if ctx.Err() == context.DeadlineExceeded {
			// Only ABANDON_HOST's context has a deadline. A clean close:
			// the frames already on the wire are read (and passed on)
			// until the host answers the close, so that what reached this
			// relay is never lost by the abandon itself.
			conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "abandoning host"), time.Now().Add(time.Second))
			conn.SetReadDeadline(time.Now().Add(2 * time.Second))
			return
		}
		conn.Close()
	})
	defer stop()
	for {
		mt, data, err := conn.ReadMessage()
		if err != nil {
			return fmt.Errorf("reading %s: %w", u.String(), err)
		}
		if mt != websocket.BinaryMessage {
			continue
		}
		f.handle(host, data, cursor)
	}
}

func (f *follower) handle(host string, data []byte, cursor *int64) {
	framesReceived.Inc()
	f.frames.Add(1)
	if f.cfg.leakPerFrame > 0 && time.Since(f.started) >= f.cfg.leakAfter {
		f.mem.retain(f.cfg.leakPerFrame)
	}
	var evt events.XRPCStreamEvent
	if err := evt.Deserialize(bytes.NewReader(data)); err != nil {
		f.log.Warn("undecodable frame", "host", host, "err", err)
		return
	}
	var did string
	var seq int64
	switch {
	case evt.Error != nil:
		f.log.Warn("error frame from upstream", "host", host, "error", evt.Error.Error, "message", evt.Error.Message)
		return
	case evt.RepoCommit != nil:
		commitsReceived.WithLabelValues(host).Inc()
		did, seq = evt.RepoCommit.Repo, evt.RepoCommit.Seq
		if host == f.cfg.dropHost && time.Since(f.started) >= f.cfg.dropAfter {
			if f.dropSeen.Add(1)%int64(f.cfg.dropEvery) == 0 {
				droppedCommits.Inc()
				if seq > *cursor {
					*cursor = seq
				}
				return
			}
		}
	case evt.RepoSync != nil:
		did, seq = evt.RepoSync.Did, evt.RepoSync.Seq
	case evt.RepoIdentity != nil:
		did, seq = evt.RepoIdentity.Did, evt.RepoIdentity.Seq
		if f.res != nil {
			f.res.lookup(did, true)
		}
	case evt.RepoAccount != nil:
		did, seq = evt.RepoAccount.Did, evt.RepoAccount.Seq
	default:
		return // #info and unknown kinds are not passed on
	}
	if seq > *cursor {
		*cursor = seq
	}
	if f.res != nil && did != "" {
		f.res.lookup(did, false)
	}
	f.hub.publish(&evt)
}

// hub re-emits frames to the relay's own subscribers under its own seq.
type hub struct {
	mu   sync.Mutex
	seq  int64
	subs map[*subscriber]struct{}
	ids  map[string]struct{} // client identities seen, with IDENTITY_LEAK

	cfg hubConfig
	mem *arena
	log *slog.Logger
}

// hubConfig is what the hub queues per subscriber and what it keeps, on
// purpose, as subscribers come and go.
type hubConfig struct {
	queue             int // frames queued per subscriber before it is cut off
	leakPerDisconnect int // bytes retained when a subscriber goes
	cursorLeak        int // bytes held by a parked goroutine per subscribe with a cursor
	identityLeak      int // bytes retained per client identity first seen
	stuckPin          int // bytes a subscriber with a full queue pins until it goes
}

func newHub(cfg hubConfig, mem *arena, log *slog.Logger) *hub {
	return &hub{subs: map[*subscriber]struct{}{}, ids: map[string]struct{}{}, cfg: cfg, mem: mem, log: log}
}

type subscriber struct {
	ch  chan []byte
	cut chan struct{} // closed when the queue overflowed: the subscriber is cut off
	pin []byte        // STUCK_PIN's bytes, while its queue is full; under hub.mu
}

func (h *hub) publish(evt *events.XRPCStreamEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	switch {
	case evt.RepoCommit != nil:
		evt.RepoCommit.Seq = h.seq
	case evt.RepoSync != nil:
		evt.RepoSync.Seq = h.seq
	case evt.RepoIdentity != nil:
		evt.RepoIdentity.Seq = h.seq
	case evt.RepoAccount != nil:
		evt.RepoAccount.Seq = h.seq
	}
	var buf bytes.Buffer
	if err := evt.Serialize(&buf); err != nil {
		h.log.Warn("re-encoding frame", "err", err)
		return
	}
	for s := range h.subs {
		select {
		case s.ch <- buf.Bytes():
		default:
			if h.cfg.stuckPin > 0 {
				// No cut-off: the frame is dropped for s, and s pins its
				// queue's worth until its connection ends.
				if s.pin == nil {
					s.pin = make([]byte, h.cfg.stuckPin)
					fill(s.pin)
					pinnedBytes.Add(float64(h.cfg.stuckPin))
				}
				continue
			}
			// A consumer that fell this far behind is cut off, as relays
			// do: its handler says so and closes the connection.
			delete(h.subs, s)
			close(s.cut)
		}
	}
}

var upgrader = websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 64 << 10}

// subscriberWriteTimeout bounds one frame's write: a subscriber that takes
// nothing for this long is as good as one whose queue overflowed.
const subscriberWriteTimeout = 10 * time.Second

// tooSlowFrame is the error frame a subscriber gets when it is cut off.
var tooSlowFrame = func() []byte {
	var buf bytes.Buffer
	if err := (&events.EventHeader{Op: events.EvtKindErrorFrame}).MarshalCBOR(&buf); err != nil {
		panic(err)
	}
	if err := (&events.ErrorFrame{Error: "ConsumerTooSlow", Message: "subscriber fell too far behind"}).MarshalCBOR(&buf); err != nil {
		panic(err)
	}
	return buf.Bytes()
}()

func (h *hub) serve(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	if h.cfg.cursorLeak > 0 && r.URL.Query().Has("cursor") {
		h.mem.park(ctx, h.cfg.cursorLeak)
	}
	if h.cfg.identityLeak > 0 {
		h.identify(r)
	}
	s := &subscriber{ch: make(chan []byte, h.cfg.queue), cut: make(chan struct{})}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	subscribers.Inc()
	reason := "error"
	defer func() {
		h.mu.Lock()
		delete(h.subs, s)
		if s.pin != nil {
			pinnedBytes.Sub(float64(len(s.pin)))
			s.pin = nil
		}
		h.mu.Unlock()
		conn.Close()
		// The leak on purpose: whatever the subscriber held, kept.
		if h.cfg.leakPerDisconnect > 0 {
			h.mem.retain(h.cfg.leakPerDisconnect)
		}
		subscriberDisconnects.WithLabelValues(reason).Inc()
		subscribers.Dec() // last: none connected means every disconnect is counted
	}()
	gone := make(chan error, 1)
	go func() { // reads only to notice the close and answer pings
		for {
			if _, _, err := conn.NextReader(); err != nil {
				gone <- err
				return
			}
		}
	}()
	for {
		select {
		case <-s.cut: // a cut wins over frames still queued
			reason = "too_slow"
			cutOff(conn)
			return
		default:
		}
		select {
		case <-ctx.Done():
			reason = "shutdown"
			conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "shutting down"), time.Now().Add(time.Second))
			return
		case err := <-gone:
			reason = readEndReason(err)
			return
		case <-s.cut:
			reason = "too_slow"
			cutOff(conn)
			return
		case b := <-s.ch:
			if h.cfg.stuckPin == 0 {
				conn.SetWriteDeadline(time.Now().Add(subscriberWriteTimeout))
			}
			if err := conn.WriteMessage(websocket.BinaryMessage, b); err != nil {
				reason = writeEndReason(err, s.cut)
				return
			}
			framesSent.Inc()
		}
	}
}

// identify retains IDENTITY_LEAK bytes the first time r's client identity
// (its address's host and User-Agent) subscribes.
func (h *hub) identify(r *http.Request) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	id := host + " " + r.UserAgent()
	h.mu.Lock()
	_, seen := h.ids[id]
	h.ids[id] = struct{}{}
	n := len(h.ids)
	h.mu.Unlock()
	if !seen {
		clientIdentities.Set(float64(n))
		h.mem.retain(h.cfg.identityLeak)
	}
}

// cutOff tells a subscriber it was too slow, then closes.
func cutOff(conn *websocket.Conn) {
	conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if conn.WriteMessage(websocket.BinaryMessage, tooSlowFrame) == nil {
		conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.ClosePolicyViolation, "ConsumerTooSlow"), time.Now().Add(time.Second))
	}
}

// readEndReason names why a subscriber's connection ended on the read side.
func readEndReason(err error) string {
	var ce *websocket.CloseError
	switch {
	case errors.As(err, &ce), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "closed"
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	}
	return "error"
}

// writeEndReason names why a write to a subscriber failed.
func writeEndReason(err error, cut <-chan struct{}) string {
	var ne net.Error
	select {
	case <-cut:
		return "too_slow"
	default:
	}
	switch {
	case errors.Is(err, websocket.ErrCloseSent): // the reader answered the subscriber's close frame
		return "closed"
	case errors.As(err, &ne) && ne.Timeout():
		return "too_slow"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "reset"
	}
	return "error"
}

// resolver looks DIDs up at the PLC: every #identity event, and every DID
// the first time it is seen. Each lookup retains leak bytes.
type resolver struct {
	hc   *http.Client
	base string
	leak int
	mem  *arena
	log  *slog.Logger
	q    chan string

	mu   sync.Mutex
	seen map[string]struct{}
}

func newResolver(hc *http.Client, base string, leak int, mem *arena, log *slog.Logger) *resolver {
	return &resolver{hc: hc, base: base, leak: leak, mem: mem, log: log, q: make(chan string, 65536), seen: map[string]struct{}{}}
}

// lookup queues a resolution: always when force (an #identity event purges
// the cache), else only for a DID not seen before.
func (r *resolver) lookup(did string, force bool) {
	r.mu.Lock()
	_, known := r.seen[did]
	r.seen[did] = struct{}{}
	r.mu.Unlock()
	if known && !force {
		return
	}
	select {
	case r.q <- did:
	default:
		didResolutions.WithLabelValues("plc", "dropped").Inc()
	}
}

func (r *resolver) run(ctx context.Context, workers int) {
	for range workers {
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case did := <-r.q:
					status := "success"
					if err := r.resolve(ctx, did); err != nil {
						status = "error"
						if ctx.Err() == nil {
							r.log.Warn("DID resolution failed", "did", did, "err", err)
						}
					}
					didResolutions.WithLabelValues("plc", status).Inc()
					flavourResolutions.WithLabelValues(map[string]string{"success": "ok", "error": "error"}[status]).Inc()
					if r.leak > 0 {
						r.mem.retain(r.leak)
					}
				}
			}
		}()
	}
}

func (r *resolver) resolve(ctx context.Context, did string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.base+"/"+did, nil)
	if err != nil {
		return err
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		return fmt.Errorf("PLC answered %s", resp.Status)
	}
	var doc struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&doc); err != nil {
		return fmt.Errorf("decoding DID document: %w", err)
	}
	if doc.ID != did {
		return fmt.Errorf("DID document names %q", doc.ID)
	}
	return nil
}

// listHosts pages through the upstream's com.atproto.sync.listHosts,
// retrying for a while: the upstream may come up after this process.
func listHosts(ctx context.Context, hc *http.Client, upstream string) ([]string, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		hosts, err := listHostsOnce(ctx, hc, upstream)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return hosts, err
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func listHostsOnce(ctx context.Context, hc *http.Client, upstream string) ([]string, error) {
	var hosts []string
	cursor := ""
	for {
		u := strings.TrimRight(upstream, "/") + "/xrpc/com.atproto.sync.listHosts?limit=1000"
		if cursor != "" {
			u += "&cursor=" + url.QueryEscape(cursor)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, fmt.Errorf("listHosts at %s: %w", upstream, err)
		}
		var page struct {
			Cursor string `json:"cursor"`
			Hosts  []struct {
				Hostname string `json:"hostname"`
				Status   string `json:"status"`
			} `json:"hosts"`
		}
		err = json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&page)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("listHosts at %s: %s", upstream, resp.Status)
		}
		if err != nil {
			return nil, fmt.Errorf("listHosts at %s: decoding: %w", upstream, err)
		}
		for _, h := range page.Hosts {
			if h.Status == "" || h.Status == "active" {
				hosts = append(hosts, h.Hostname)
			}
		}
		if page.Cursor == "" || len(page.Hosts) == 0 {
			return hosts, nil
		}
		cursor = page.Cursor
	}
}

// httpClient trusts caFile when given (the run's CA; a scratch image has no
// roots), no CA at all with noRoots (an empty pool stands for compiled-in
// roots, which hold no private CA either), else the system roots. The TLS
// settings are returned for dialling hosts too.
func httpClient(caFile string, noRoots bool) (*http.Client, *tls.Config, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 16
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	switch {
	case noRoots:
		tlsCfg.RootCAs = x509.NewCertPool()
	case caFile != "":
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, nil, fmt.Errorf("CA_FILE: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("CA_FILE %s holds no PEM certificate", caFile)
		}
		tlsCfg.RootCAs = pool
	}
	// A copy: the transport adds "h2" to its config's ALPN list, and a
	// websocket dialled with that list would be offered HTTP/2.
	tr.TLSClientConfig = tlsCfg.Clone()
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, tlsCfg, nil
}

// fleetDial dials port 80 of any name at plain and 443 at withTLS when they
// are set, and every other address as it is.
func fleetDial(plain, withTLS string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if _, port, err := net.SplitHostPort(addr); err == nil {
			switch {
			case port == "80" && plain != "":
				addr = plain
			case port == "443" && withTLS != "":
				addr = withTLS
			}
		}
		return d.DialContext(ctx, network, addr)
	}
}

// arena keeps what the target retains on purpose, written so every page is
// resident: by default in anonymous mappings the garbage collector never
// sees (RssAnon), never unmapped; with heap set, in the Go heap, where the
// collector's goal counts it.
type arena struct {
	heap  bool
	mu    sync.Mutex
	cur   []byte
	off   int
	kept  [][][]byte // heap: every block retained, in chunks of keptChunk
	total atomic.Int64
}

const arenaChunk = 64 << 20

// keptChunk is how many blocks one chunk of the heap arena's index holds.
const keptChunk = 1024

func (a *arena) retain(n int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.heap {
		b := make([]byte, n)
		fill(b)
		// Fixed chunks, not one slice: a slice that doubles steps the
		// heap up by half of what it holds at once, which a fit reads as
		// whatever factor was raised then.
		if len(a.kept) == 0 || len(a.kept[len(a.kept)-1]) == keptChunk {
			a.kept = append(a.kept, make([][]byte, 0, keptChunk))
		}
		last := len(a.kept) - 1
		a.kept[last] = append(a.kept[last], b)
		a.count(n)
		return
	}
	for n > 0 {
		if a.off == len(a.cur) {
			m, err := mapAnon(arenaChunk)
			if err != nil {
				// Out of address space or memory: the leak has done its job.
				return
			}
			a.cur, a.off = m, 0
		}
		k := min(n, len(a.cur)-a.off)
		fill(a.cur[a.off : a.off+k])
		a.off += k
		n -= k
		a.count(k)
	}
}

// count adds n bytes to what is retained, and to its gauge.
func (a *arena) count(n int) { retainedBytes.Set(float64(a.total.Add(int64(n)))) }

// park starts a goroutine that holds n bytes of the Go heap until ctx ends:
// a goroutine and its buffer kept, as a handler that never returns keeps
// them.
func (a *arena) park(ctx context.Context, n int) {
	b := make([]byte, n)
	fill(b)
	a.count(n)
	go func() {
		<-ctx.Done()
		runtime.KeepAlive(b)
	}()
}

func mapAnon(n int) ([]byte, error) {
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS)
	if err != nil {
		return nil, fmt.Errorf("mmap of %d bytes: %w", n, err)
	}
	// Small pages only: a huge page would make 2 MiB resident on one touch,
	// a staircase instead of the configured slope.
	_ = syscall.Madvise(b, syscall.MADV_NOHUGEPAGE)
	return b, nil
}

// fill writes non-zero bytes: a written page is resident and private.
func fill(b []byte) {
	for i := range b {
		b[i] = 0xa5
	}
}

// warmup retains size·(1−e^(−t/τ)): a plateau-shaped rise, as caches
// filling make, topped up four times a second until it is within a page.
func warmup(ctx context.Context, mem *arena, size int64, tau time.Duration, log *slog.Logger) {
	start := time.Now()
	var done int64
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for done < size-4096 {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		want := int64(float64(size) * (1 - math.Exp(-time.Since(start).Seconds()/tau.Seconds())))
		if want > done {
			mem.retain(int(want - done))
			done = want
		}
	}
	log.Info("warm-up reached its plateau", "bytes", done)
}

// sawtooth maps and touches size bytes every period and unmaps them half a
// period later: churn that comes and goes, leaking nothing.
func sawtooth(ctx context.Context, size int64, period time.Duration, log *slog.Logger) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		b, err := mapAnon(int(size))
		if err != nil {
			log.Warn("sawtooth", "err", err)
			return
		}
		fill(b)
		select {
		case <-ctx.Done():
			return
		case <-time.After(period / 2):
		}
		syscall.Munmap(b)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// heapTeeth climbs to size bytes of the Go heap over each period, in
// teethSteps steps, and lets them all go at the period's end, collecting
// after each step so the collector's goal follows at once: the sawtooth of
// a Go relay's heap (buffers and queues that fill and are flushed), whose
// floors are what the process keeps.
func heapTeeth(ctx context.Context, size int64, period time.Duration) {
	t := time.NewTicker(period / teethSteps)
	defer t.Stop()
	var hold [][]byte
	for i := 1; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if i%teethSteps == 0 {
			hold = nil // the drop
		} else {
			b := make([]byte, size/(teethSteps-1))
			fill(b)
			hold = append(hold, b)
		}
		runtime.GC()
	}
}

// teethSteps is how many ticks a tooth of heapTeeth lasts: a rise at each
// but the last, which drops.
const teethSteps = 8

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func sizeEnv(k string) (int, error) {
	v := os.Getenv(k)
	if v == "" {
		return 0, nil
	}
	n, err := parseSize(v)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", k, err)
	}
	return int(n), nil
}

func sizeAndDuration(k string) (int64, time.Duration, error) {
	v := os.Getenv(k)
	if v == "" {
		return 0, 0, nil
	}
	s, d, ok := strings.Cut(v, ":")
	if !ok {
		return 0, 0, fmt.Errorf("%s: want SIZE:DURATION (e.g. 64MiB:30s), got %q", k, v)
	}
	n, err := parseSize(s)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: %w", k, err)
	}
	dur, err := time.ParseDuration(d)
	if err != nil || dur <= 0 {
		return 0, 0, fmt.Errorf("%s: want a positive duration after the colon, got %q", k, d)
	}
	return n, dur, nil
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	for suf, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if v, ok := strings.CutSuffix(s, suf); ok {
			s, mult = v, m
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("want a size in bytes (or KiB, MiB, GiB), got %q", s)
	}
	return n * mult, nil
}
