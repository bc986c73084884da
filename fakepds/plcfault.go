package fakepds

import (
	"bytes"
	"crypto/tls"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// servePLC is the PLC directory face with the run's fault settings
// (PLCBehaviour) applied in front of it: resets and closes first (no
// answer at all), then latency, injected errors, and trickled bodies.
// Health checks are exempt, so a relay's readiness probe is not the fault.
func (f *Fleet) servePLC(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, "/")
	if path == "" || path == "_health" {
		f.servePLCRoutes(w, r)
		return
	}
	if strings.HasPrefix(path, "did:plc:") && !strings.Contains(path, "/") {
		f.plcRequests.Add(1)
	}
	b := f.cfg.PLC
	if b.NoKeepAlive {
		// net/http closes an HTTP/1 connection after this answer; the HTTP/2
		// server reads it as a request to go away gracefully.
		w.Header().Set("Connection", "close")
	}
	if b.ResetRate > 0 || b.CloseRate > 0 {
		switch x := rand.Float64(); {
		case x < b.ResetRate:
			f.plcResets.Add(1)
			dropConn(w, true)
			return
		case x < b.ResetRate+b.CloseRate:
			f.plcCloses.Add(1)
			dropConn(w, false)
			return
		}
	}
	if d := b.delay(); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if b.ErrorRate > 0 && rand.Float64() < b.ErrorRate {
		f.plcErrors.Add(1)
		plcError(w, http.StatusInternalServerError, "injected PLC failure (fault setting)")
		return
	}
	if b.SlowRate > 0 && rand.Float64() < b.SlowRate {
		f.plcSlow.Add(1)
		tw := &trickleWriter{ResponseWriter: w}
		f.servePLCRoutes(tw, r)
		tw.trickle(r, b.SlowFor)
		return
	}
	f.servePLCRoutes(w, r)
}

// delay draws one request's added latency: Latency plus a lognormal with
// median Jitter, capped at 20 × Jitter.
func (b PLCBehaviour) delay() time.Duration {
	d := b.Latency
	if b.Jitter > 0 {
		x := math.Exp(rand.NormFloat64() * b.JitterSigma)
		d += time.Duration(math.Min(x, 20) * float64(b.Jitter))
	}
	return d
}

// dropConn ends the request's connection without an answer. With rst the
// socket lingers for 0 s so the kernel sends RST instead of FIN: the client
// sees "connection reset by peer", not EOF. Where the connection cannot be
// taken over (HTTP/2), the stream is aborted instead (RST_STREAM).
func dropConn(w http.ResponseWriter, rst bool) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	raw := conn
	if tc, ok := conn.(*tls.Conn); ok {
		// Close the socket under TLS directly: a close_notify alert would
		// be a polite goodbye, not a reset.
		raw = tc.NetConn()
	}
	if tcp, ok := raw.(*net.TCPConn); ok && rst {
		tcp.SetLinger(0)
	}
	raw.Close()
}

// trickleWriter holds an answer back so it can be dripped out slowly.
type trickleWriter struct {
	http.ResponseWriter
	code int
	body bytes.Buffer
}

func (t *trickleWriter) WriteHeader(code int) {
	if t.code == 0 {
		t.code = code
	}
}

func (t *trickleWriter) Write(p []byte) (int, error) {
	if t.code == 0 {
		t.code = http.StatusOK
	}
	return t.body.Write(p)
}

// trickle sends the headers at once and the body in about 20 flushed
// pieces spread over d, with its full length announced, so the client
// waits for every piece.
func (t *trickleWriter) trickle(r *http.Request, d time.Duration) {
	if t.code == 0 {
		t.code = http.StatusOK
	}
	w := t.ResponseWriter
	body := t.body.Bytes()
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(t.code)
	rc := http.NewResponseController(w)
	rc.Flush()
	const pieces = 20
	step := max(1, (len(body)+pieces-1)/pieces)
	n := (len(body) + step - 1) / step
	pause := d / time.Duration(max(1, n))
	for len(body) > 0 {
		select {
		case <-time.After(pause):
		case <-r.Context().Done():
			return
		}
		k := min(step, len(body))
		if _, err := w.Write(body[:k]); err != nil {
			return
		}
		rc.Flush()
		body = body[k:]
	}
}
