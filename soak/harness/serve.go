package harness

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// handshakeErrors keeps what net/http logs about failed TLS handshakes: a
// relay that does not trust the run's CA aborts every handshake, and
// without this the run would report only a silent zero.
type handshakeErrors struct {
	mu   sync.Mutex
	n    int
	last string
	out  io.Writer // the server's other complaints go on to the run's log
}

func (h *handshakeErrors) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	h.mu.Lock()
	defer h.mu.Unlock()
	if strings.Contains(line, "TLS handshake error") {
		h.n++
		h.last = line
	} else if h.out != nil {
		fmt.Fprintf(h.out, "relaysoak: fleet TLS server: %s\n", line)
	}
	return len(p), nil
}

// TLSHandshakeErrors counts failed TLS handshakes on the fleet's TLS port
// and gives the last one.
func (r *Harness) TLSHandshakeErrors() (int, string) {
	r.tlsErrs.mu.Lock()
	defer r.tlsErrs.mu.Unlock()
	return r.tlsErrs.n, r.tlsErrs.last
}

// explain says why a relay may not have connected, when TLS is the cause.
func (h *handshakeErrors) explain() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == 0 {
		return ""
	}
	msg := fmt.Sprintf("; the fleet saw %d failed TLS handshakes (last: %s)", h.n, h.last)
	if strings.Contains(h.last, "certificate") {
		msg += ": the relay does not trust the run's CA — is it mounted where the relay's TLS stack looks, or are its roots compiled in?"
	}
	return msg
}

// listen serves the fleet at plain (ws/http) and withTLS (https,
// certificates minted per name by the run's CA): for a relay in a
// container, the run network's gateway only, ports 80 and 443.
func (r *Harness) listen(plain, withTLS string) error {
	for _, p := range []struct {
		addr string
		tls  bool
	}{{plain, false}, {withTLS, true}} {
		if p.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", p.addr)
		if err != nil {
			return fmt.Errorf("rig: the fleet cannot listen on %s: %w", p.addr, err)
		}
		if p.tls {
			r.addrs[1] = ln.Addr().String()
		} else {
			r.addrs[0] = ln.Addr().String()
		}
		srv := &http.Server{Handler: r.fleet, ReadHeaderTimeout: 10 * time.Second}
		r.servers = append(r.servers, srv)
		if p.tls {
			srv.TLSConfig = r.ca.TLSConfig()
			r.tlsErrs.mu.Lock()
			r.tlsErrs.out = r.cfg.Log
			r.tlsErrs.mu.Unlock()
			srv.ErrorLog = log.New(&r.tlsErrs, "", 0)
			go srv.ServeTLS(ln, "", "")
		} else {
			go srv.Serve(ln)
		}
	}
	return nil
}

// serveDNS answers for the fleet's names on addr with the IP the fleet
// listens on.
func (r *Harness) serveDNS(addr, fleetHost string) error {
	ip := net.ParseIP(fleetHost)
	if ip == nil || ip.IsUnspecified() {
		return fmt.Errorf("rig: --fleet-dns-listen answers with the fleet's IP, so --fleet-listen must name one (e.g. 172.30.77.10:80), not %q", r.cfg.FleetAddr)
	}
	d, err := r.fleet.NewDNS(ip)
	if err != nil {
		return fmt.Errorf("rig: %w", err)
	}
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return fmt.Errorf("rig: the fleet's DNS cannot listen on %s (udp): %w", addr, err)
	}
	r.dns = pc
	go d.Serve(context.Background(), pc) // ends when Close closes pc
	fmt.Fprintf(r.cfg.Log, "relaysoak: fleet DNS at %s answers %d names with %s\n", pc.LocalAddr(), len(r.fleet.HostNames())+len(r.fleet.Names()), ip)
	return nil
}
