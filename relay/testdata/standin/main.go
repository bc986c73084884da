// Command standin is a relay built for tests only: it behaves like zlay or
// rsky-relay at the edges their profiles touch, so the profiles' wiring can
// be tested where neither relay can be built (no Zig toolchain, no crates
// registry). It is not a relay: it validates nothing and keeps no state.
//
// Like both, it learns its hosts from com.atproto.sync.listHosts over
// https, dials every host wss:// (port 443), resolves the DIDs it sees at
// the hard-coded https://plc.directory, and re-emits every frame on its own
// subscribeRepos under its own seq.
//
// STANDIN_FLAVOUR=zlay: firehose on RELAY_PORT (3000); /metrics, /_health
// and /_readyz on RELAY_METRICS_PORT (3001) with zlay's memory gauges;
// hosts once at start from https://$RELAY_UPSTREAM; trusts the CA bundle at
// the fixed system path (/etc/ssl/certs/ca-certificates.crt; Go reads it
// when SSL_CERT_FILE is unset, as Zig's standard library does); on SIGTERM
// prints STANDIN_LEAKS allocator leak reports in the form of Zig's
// GeneralPurposeAllocator.
//
// STANDIN_FLAVOUR=rsky: firehose on :9000; /metrics and /_health on
// RELAY_METRICS_LISTEN; hosts from paged listHosts on each of
// RELAY_DISCOVERY_UPSTREAMS (host names, every 5 min); polls
// https://plc.directory/export?count=1000&after= (every 60 s); its roots
// are compiled in, so it trusts no private CA unless STANDIN_TRUST_SYSTEM=1
// stands for a build that does.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
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

	"github.com/gorilla/websocket"

	"github.com/relaysoak/relaysoak/fakepds"
)

type standin struct {
	flavour string
	client  *http.Client
	dialer  *websocket.Dialer

	mu   sync.Mutex
	seq  int64
	subs map[chan []byte]struct{}

	resolved               sync.Map // did → struct{}
	hosts                  sync.Map // name → struct{}
	framesIn, framesOut    atomic.Uint64
	resolveOK, resolveFail atomic.Uint64
	exportPolls            atomic.Uint64
	dialFail               atomic.Uint64
}

func main() {
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	s := &standin{flavour: os.Getenv("STANDIN_FLAVOUR"), subs: map[chan []byte]struct{}{}}
	tlsCfg := &tls.Config{}
	switch s.flavour {
	case "zlay":
	case "rsky":
		if os.Getenv("STANDIN_TRUST_SYSTEM") != "1" {
			// Compiled-in roots: an empty pool stands for Mozilla's list,
			// which has no private CA in it either.
			tlsCfg.RootCAs = x509.NewCertPool()
		}
	default:
		log.Fatalf("standin: STANDIN_FLAVOUR must be zlay or rsky, got %q", s.flavour)
	}
	s.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg}}
	s.dialer = &websocket.Dialer{HandshakeTimeout: 5 * time.Second, TLSClientConfig: tlsCfg}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	api, metrics := ":3000", ":3001"
	if s.flavour == "zlay" {
		api, metrics = ":"+env("RELAY_PORT", "3000"), ":"+env("RELAY_METRICS_PORT", "3001")
	} else {
		api, metrics = ":9000", env("RELAY_METRICS_LISTEN", ":9100")
	}
	apiMux := http.NewServeMux()
	apiMux.HandleFunc("/xrpc/com.atproto.sync.subscribeRepos", s.serveFirehose)
	apiMux.HandleFunc("/xrpc/_health", s.serveHealth)
	metMux := http.NewServeMux()
	metMux.HandleFunc("/metrics", s.serveMetrics)
	metMux.HandleFunc("/_health", s.serveHealth)
	metMux.HandleFunc("/_readyz", s.serveHealth)
	for _, srv := range []*http.Server{{Addr: api, Handler: apiMux}, {Addr: metrics, Handler: metMux}} {
		go func() { log.Printf("standin: listening on %s", srv.Addr); log.Fatal(srv.ListenAndServe()) }()
	}

	if s.flavour == "zlay" {
		// zlay learns its hosts once, at start.
		s.discover(ctx, env("RELAY_UPSTREAM", "bsky.network"))
	} else {
		go s.every(ctx, 5*time.Minute, func() {
			for _, u := range strings.Split(env("RELAY_DISCOVERY_UPSTREAMS", "bsky.network"), ",") {
				s.discover(ctx, strings.TrimSpace(u))
			}
		})
		go s.every(ctx, time.Minute, func() { s.pollExport(ctx) })
	}
	<-ctx.Done()
	log.Printf("standin: shutting down")
	if n, _ := strconv.Atoi(os.Getenv("STANDIN_LEAKS")); n > 0 {
		// Zig's GeneralPurposeAllocator reports each leak on stderr after
		// teardown: the address line, then its stack trace.
		for i := 0; i < n; i++ {
			fmt.Fprintf(os.Stderr, "error(gpa): memory address 0x7f%08x leaked:\n", 0x1000*(i+1))
			fmt.Fprintf(os.Stderr, "/src/resolver.zig:%d:31: 0x10b2c in resolveDid (zlay)\n", 100+i)
			fmt.Fprintf(os.Stderr, "/src/http_pool.zig:42:17: 0x10c40 in acquire (zlay)\n\n")
		}
	}
}

func env(k, d string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return d
}

func (s *standin) every(ctx context.Context, d time.Duration, f func()) {
	for {
		f()
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
		}
	}
}

// discover pages through listHosts on an upstream and dials every new host.
func (s *standin) discover(ctx context.Context, upstream string) {
	cursor := ""
	for {
		u := "https://" + upstream + "/xrpc/com.atproto.sync.listHosts?limit=500"
		if cursor != "" {
			u += "&cursor=" + url.QueryEscape(cursor)
		}
		var out struct {
			Cursor string `json:"cursor"`
			Hosts  []struct {
				Hostname string `json:"hostname"`
			} `json:"hosts"`
		}
		if err := s.getJSON(ctx, u, &out); err != nil {
			log.Printf("standin: listHosts at %s failed: %v", upstream, err)
			return
		}
		for _, h := range out.Hosts {
			if _, seen := s.hosts.LoadOrStore(h.Hostname, struct{}{}); !seen {
				go s.subscribe(ctx, h.Hostname)
			}
		}
		if out.Cursor == "" || len(out.Hosts) == 0 {
			return
		}
		cursor = out.Cursor
	}
}

func (s *standin) getJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: %s: %s", u, resp.Status, b)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// subscribe follows one host over wss:// until shutdown, redialling.
func (s *standin) subscribe(ctx context.Context, host string) {
	u := "wss://" + host + "/xrpc/com.atproto.sync.subscribeRepos"
	for ctx.Err() == nil {
		conn, _, err := s.dialer.DialContext(ctx, u, nil)
		if err != nil {
			s.dialFail.Add(1)
			log.Printf("standin: dialling %s failed: %v", u, err)
			select {
			case <-ctx.Done():
			case <-time.After(2 * time.Second):
			}
			continue
		}
		log.Printf("standin: connected to %s", u)
		go func() { <-ctx.Done(); conn.Close() }()
		for {
			_, frame, err := conn.ReadMessage()
			if err != nil {
				break
			}
			s.framesIn.Add(1)
			slot, err := fakepds.LocateSeq(frame)
			if err != nil {
				continue
			}
			if _, seen := s.resolved.Load(slot.DID); !seen || slot.Kind == "#identity" {
				s.resolve(ctx, slot.DID)
			}
			s.emit(frame, slot)
		}
		conn.Close()
	}
}

// resolve fetches a DID document where the real relays look for it.
func (s *standin) resolve(ctx context.Context, did string) {
	var doc map[string]any
	if err := s.getJSON(ctx, "https://plc.directory/"+did, &doc); err != nil {
		s.resolveFail.Add(1)
		log.Printf("standin: resolving %s failed: %v", did, err)
		return
	}
	s.resolveOK.Add(1)
	s.resolved.Store(did, struct{}{})
}

func (s *standin) pollExport(ctx context.Context) {
	resp, err := s.client.Get("https://plc.directory/export?count=1000&after=")
	if err != nil {
		log.Printf("standin: PLC export failed: %v", err)
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	s.exportPolls.Add(1)
}

func (s *standin) emit(frame []byte, slot fakepds.SeqSlot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	out := fakepds.RewriteSeq(frame, slot, s.seq)
	for ch := range s.subs {
		select {
		case ch <- out:
		default: // a slow consumer loses frames; the soak will say so
		}
	}
	s.framesOut.Add(1)
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

func (s *standin) serveFirehose(w http.ResponseWriter, r *http.Request) {
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	ch := make(chan []byte, 4096)
	s.mu.Lock()
	s.subs[ch] = struct{}{}
	s.mu.Unlock()
	defer func() { s.mu.Lock(); delete(s.subs, ch); s.mu.Unlock() }()
	go func() {
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				conn.Close()
				return
			}
		}
	}()
	for f := range ch {
		if err := conn.WriteMessage(websocket.BinaryMessage, f); err != nil {
			return
		}
	}
}

func (s *standin) serveHealth(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"status":"ok"}`)
}

func (s *standin) serveMetrics(w http.ResponseWriter, _ *http.Request) {
	var b strings.Builder
	counter := func(name string, v uint64, labels string) {
		fmt.Fprintf(&b, "# TYPE %s counter\n%s%s %d\n", name, name, labels, v)
	}
	gauge := func(name string, v uint64) { fmt.Fprintf(&b, "# TYPE %s gauge\n%s %d\n", name, name, v) }
	hosts := 0
	s.hosts.Range(func(any, any) bool { hosts++; return true })
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rssKB := procStatusKB("VmRSS")
	if s.flavour == "zlay" {
		gauge("relay_process_rss_bytes", rssKB*1024)
		gauge("relay_malloc_arena_bytes", ms.HeapInuse)
		gauge("relay_malloc_mmap_bytes", ms.HeapSys-ms.HeapInuse)
		gauge("relay_smaps_rss_kb", rssKB)
		gauge("relay_smaps_anon_kb", procStatusKB("RssAnon"))
		gauge("relay_heap_rss_kb", ms.HeapInuse/1024)
		gauge("relay_hosts", uint64(hosts))
		counter("relay_frames_received_total", s.framesIn.Load(), "")
	} else {
		counter("relay_upstream_events_total", s.framesIn.Load(), "")
		counter("relay_frames_emitted_total", s.framesOut.Load(), "")
		counter("relay_plc_export_polls_total", s.exportPolls.Load(), "")
	}
	fmt.Fprintf(&b, "# TYPE relay_did_resolutions_total counter\nrelay_did_resolutions_total{status=\"ok\"} %d\nrelay_did_resolutions_total{status=\"error\"} %d\n",
		s.resolveOK.Load(), s.resolveFail.Load())
	counter("relay_host_dial_failures_total", s.dialFail.Load(), "")
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	io.WriteString(w, b.String())
}

func procStatusKB(field string) uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			v, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return v
		}
	}
	return 0
}
