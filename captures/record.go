package captures

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// RecordConfig says what to record. URL and Out are required; every other
// zero value means a sensible default.
type RecordConfig struct {
	// URL is a subscribeRepos endpoint of any server (PDS, relay, fleet):
	// ws:// or wss:// (http and https are taken to mean them). A bare host
	// gets /xrpc/com.atproto.sync.subscribeRepos; a cursor query parameter
	// is the first cursor.
	URL string
	Out string
	// Duration stops the recording after this long; 0 records until ctx
	// ends or MaxFrames is reached.
	Duration time.Duration
	// MaxFrames stops the recording after this many frames; 0 means no limit.
	MaxFrames int64
	Writer    WriterConfig // its Source is set to URL

	// ResolveDIDs fetches each account's DID document once, as of capture
	// time, and stores it in the capture.
	ResolveDIDs bool
	// PLC is the PLC directory for did:plc (GET {PLC}/{did}). Default https://plc.directory.
	PLC string
	// ResolveConcurrency bounds requests in flight. Default 4: PLC
	// directories rate-limit, and a capture is not worth a ban.
	ResolveConcurrency int
	// ResolveGrace is how long resolutions still queued may go on after the
	// recording stopped because its Duration or MaxFrames ran out. Default
	// 30s. A cancelled ctx (Ctrl-C) abandons them at once: they are counted
	// as unresolved, and inspect lists those accounts.
	ResolveGrace time.Duration
	HTTPClient   *http.Client // default: 10s timeout

	Dialer *websocket.Dialer // default: websocket.DefaultDialer with a 10s handshake timeout
	// ReconnectMin and ReconnectMax bound the wait before redialling a
	// dropped connection; it doubles per failed attempt. Defaults 1s and 30s.
	ReconnectMin, ReconnectMax time.Duration
	// IdleTimeout drops and redials a connection on which neither a frame
	// nor a ping arrived for this long. Default 2m.
	IdleTimeout time.Duration

	// Progress, when set, is called every ProgressInterval (default 1s)
	// from a goroutine of its own, and once more at the end.
	Progress         func(RecordProgress)
	ProgressInterval time.Duration
	// Logf, when set, receives one line per connection event (drops,
	// redials, resolution failures).
	Logf func(format string, args ...any)
}

// RecordProgress is a recording's state.
type RecordProgress struct {
	Elapsed    time.Duration
	Frames     int64
	Bytes      int64
	LastSeq    int64
	Connected  bool
	Reconnects int64
	// Duplicates counts frames dropped right after a resume because their
	// seq was not above the cursor (a server that resends the cursor's event).
	Duplicates int64
	// Oversized counts frames above MaxFrameSize, which the format cannot hold.
	Oversized                            int64
	DIDsQueued, DIDsResolved, DIDsFailed int64
	LastError                            string
	// Done is set on the last call, made after the capture was closed.
	Done bool
}

// Why a recording stopped (RecordResult.Stopped).
const (
	StoppedDuration  = "duration"  // RecordConfig.Duration ran out
	StoppedFrames    = "frames"    // RecordConfig.MaxFrames were recorded
	StoppedCancelled = "cancelled" // the context ended: Ctrl-C, SIGTERM
	StoppedError     = "error"     // Err stopped it
)

// RecordResult is what a finished recording did. A recording keeps what it
// recorded however it stops; Closed says whether the file got its clean
// close, so a caller can say how it ended (Describe).
type RecordResult struct {
	Manifest Manifest
	Progress RecordProgress
	// Stopped says why: one of the Stopped constants.
	Stopped string
	// Err is what stopped the recording early (Stopped is StoppedError); it
	// is also RecordFirehose's error.
	Err error
	// Closed is true when the capture was closed cleanly (manifest and
	// footer written and synced); CloseErr says why not otherwise, and the
	// file then reads as cut off after its last flushed block.
	Closed   bool
	CloseErr error
}

// Describe says how the recording ended and what it kept, in one line:
// "stopped: interrupted; 1,234 frames kept, closed cleanly".
func (r RecordResult) Describe() string {
	var why string
	switch r.Stopped {
	case StoppedDuration:
		why = "duration reached"
	case StoppedFrames:
		why = "frame limit reached"
	case StoppedCancelled:
		why = "interrupted"
	case StoppedError:
		why = "error"
		if r.Err != nil {
			why += ": " + r.Err.Error()
		}
	default:
		why = r.Stopped
	}
	closed := "closed cleanly"
	if !r.Closed {
		closed = "NOT closed cleanly"
		if r.CloseErr != nil {
			closed += " (" + r.CloseErr.Error() + ")"
		}
	}
	return fmt.Sprintf("stopped: %s; %s frames kept, %s", why, groupDigits(r.Manifest.Frames), closed)
}

// groupDigits writes n with thousands separators: frame counts run to
// millions.
func groupDigits(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func (c *RecordConfig) defaults() {
	if c.PLC == "" {
		c.PLC = "https://plc.directory"
	}
	c.PLC = strings.TrimRight(c.PLC, "/")
	if c.ResolveConcurrency <= 0 {
		c.ResolveConcurrency = 4
	}
	if c.ResolveGrace <= 0 {
		c.ResolveGrace = 30 * time.Second
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if c.Dialer == nil {
		d := *websocket.DefaultDialer
		d.HandshakeTimeout = 10 * time.Second
		c.Dialer = &d
	}
	if c.ReconnectMin <= 0 {
		c.ReconnectMin = time.Second
	}
	if c.ReconnectMax < c.ReconnectMin {
		c.ReconnectMax = max(30*time.Second, c.ReconnectMin)
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 2 * time.Minute
	}
	if c.ProgressInterval <= 0 {
		c.ProgressInterval = time.Second
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
}

// SubscribeURL turns what a person types into a subscribeRepos websocket
// URL: http(s) becomes ws(s), and a bare host gets the endpoint's path.
func SubscribeURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("firehose URL %q: %w", raw, err)
	}
	switch u.Scheme {
	case "ws", "wss":
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return nil, fmt.Errorf("firehose URL %q: scheme %q; want ws:// or wss:// (e.g. wss://bsky.network/xrpc/com.atproto.sync.subscribeRepos)", raw, u.Scheme)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("firehose URL %q has no host", raw)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/xrpc/com.atproto.sync.subscribeRepos"
	}
	return u, nil
}

type recorder struct {
	cfg   RecordConfig
	url   *url.URL
	host  string
	w     *Writer
	res   *resolver
	start time.Time
	stop  context.CancelFunc

	frames, bytes, lastSeq, reconnects, dups, oversized atomic.Int64
	connected                                           atomic.Bool
	mu                                                  sync.Mutex
	lastErr                                             string
	stoppedByFrames                                     atomic.Bool
}

// RecordFirehose records a subscribeRepos stream into a capture file until the
// Duration or MaxFrames runs out or ctx ends. A dropped connection is
// redialled with ?cursor= set to the last seq recorded, so the capture has
// no hole where the server keeps enough history. The file is closed cleanly
// however the recording stops; the returned error is for what stopped it
// early (a first dial that fails, a write that fails).
func RecordFirehose(ctx context.Context, cfg RecordConfig) (RecordResult, error) {
	cfg.defaults()
	if cfg.Out == "" {
		return RecordResult{}, errors.New("record: no output file given")
	}
	u, err := SubscribeURL(cfg.URL)
	if err != nil {
		return RecordResult{}, fmt.Errorf("record: %w", err)
	}
	var cursor int64 = -1
	if c := u.Query().Get("cursor"); c != "" {
		if cursor, err = strconv.ParseInt(c, 10, 64); err != nil || cursor < 0 {
			return RecordResult{}, fmt.Errorf("record: firehose URL %s: cursor %q is not a seq number", u, c)
		}
	}
	wcfg := cfg.Writer
	wcfg.Source = u.String()
	w, err := Create(cfg.Out, wcfg)
	if err != nil {
		return RecordResult{}, fmt.Errorf("record: %w", err)
	}
	rc := &recorder{cfg: cfg, url: u, host: u.Host, w: w, start: time.Now()}

	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	if cfg.Duration > 0 {
		var c context.CancelFunc
		runCtx, c = context.WithTimeout(runCtx, cfg.Duration)
		defer c()
	}
	runCtx, rc.stop = context.WithCancel(runCtx)
	if cfg.ResolveDIDs {
		rc.res = newResolver(ctx, cfg, w)
	}

	tickDone := make(chan struct{})
	var tickWG sync.WaitGroup
	tickWG.Add(1)
	go func() {
		defer tickWG.Done()
		t := time.NewTicker(cfg.ProgressInterval)
		defer t.Stop()
		for {
			select {
			case <-tickDone:
				return
			case <-t.C:
				// Flushing on the tick too bounds what a crash loses when
				// the stream goes quiet and no Append triggers a flush.
				if err := w.Flush(); err != nil {
					rc.setErr(err)
					rc.stop()
				}
				// Once the run is over, the final call (Done) speaks for it.
				if cfg.Progress != nil && runCtx.Err() == nil {
					cfg.Progress(rc.progress())
				}
			}
		}
	}()

	runErr := rc.run(runCtx, cursor)
	close(tickDone)
	tickWG.Wait()

	if rc.res != nil {
		rc.res.finish(cfg.ResolveGrace)
	}
	closeErr := w.Close()
	res := RecordResult{Manifest: w.Manifest(), Progress: rc.progress(), Err: runErr, Closed: closeErr == nil, CloseErr: closeErr}
	switch {
	case runErr != nil:
		res.Stopped = StoppedError
	case rc.stoppedByFrames.Load():
		res.Stopped = StoppedFrames
	case ctx.Err() != nil:
		res.Stopped = StoppedCancelled
	default:
		res.Stopped = StoppedDuration
	}
	if cfg.Progress != nil {
		final := res.Progress
		final.Done = true
		cfg.Progress(final)
	}
	if runErr != nil {
		return res, runErr
	}
	if closeErr != nil {
		return res, fmt.Errorf("record: %w", closeErr)
	}
	return res, nil
}

func (rc *recorder) setErr(err error) {
	rc.mu.Lock()
	rc.lastErr = err.Error()
	rc.mu.Unlock()
}

func (rc *recorder) progress() RecordProgress {
	p := RecordProgress{
		Elapsed:    time.Since(rc.start),
		Frames:     rc.frames.Load(),
		Bytes:      rc.bytes.Load(),
		LastSeq:    rc.lastSeq.Load(),
		Connected:  rc.connected.Load(),
		Reconnects: rc.reconnects.Load(),
		Duplicates: rc.dups.Load(),
		Oversized:  rc.oversized.Load(),
	}
	if rc.res != nil {
		p.DIDsQueued, p.DIDsResolved, p.DIDsFailed = rc.res.queued.Load(), rc.res.resolved.Load(), rc.res.failed.Load()
	}
	rc.mu.Lock()
	p.LastError = rc.lastErr
	rc.mu.Unlock()
	return p
}

// run dials and redials until ctx ends.
func (rc *recorder) run(ctx context.Context, cursor int64) error {
	delay := rc.cfg.ReconnectMin
	everConnected := false
	for ctx.Err() == nil {
		got, connected, err := rc.session(ctx, cursor)
		everConnected = everConnected || connected
		if got > 0 {
			delay = rc.cfg.ReconnectMin
		}
		if ctx.Err() != nil {
			return nil
		}
		var fatal *fatalError
		if errors.As(err, &fatal) {
			return fatal.err
		}
		if !everConnected {
			return fmt.Errorf("record: connect to %s: %w; check the URL (a subscribeRepos endpoint, ws:// or wss://) and that the server is up", rc.url.Redacted(), err)
		}
		rc.setErr(err)
		if s := rc.lastSeq.Load(); s > 0 {
			cursor = s
		}
		rc.cfg.Logf("connection to %s lost after %d frames: %v; redialling in %s with cursor %d", rc.url.Host, got, err, delay, cursor)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
		delay = min(2*delay, rc.cfg.ReconnectMax)
		rc.reconnects.Add(1)
	}
	return nil
}

type fatalError struct{ err error }

func (f *fatalError) Error() string { return f.err.Error() }

// session is one connection. It returns the frames it recorded, whether
// the dial succeeded, and why it ended.
func (rc *recorder) session(ctx context.Context, cursor int64) (int64, bool, error) {
	u := *rc.url
	if cursor >= 0 {
		q := u.Query()
		q.Set("cursor", strconv.FormatInt(cursor, 10))
		u.RawQuery = q.Encode()
	}
	hdr := http.Header{"User-Agent": []string{"relaysoak-capture"}}
	conn, resp, err := rc.cfg.Dialer.DialContext(ctx, u.String(), hdr)
	if err != nil {
		if resp != nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			return 0, false, fmt.Errorf("dial: %w (HTTP %s: %s)", err, resp.Status, strings.TrimSpace(string(body)))
		}
		return 0, false, fmt.Errorf("dial: %w", err)
	}
	rc.connected.Store(true)
	defer rc.connected.Store(false)

	// Closing the connection is the only way to end a blocked ReadMessage.
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			_ = conn.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseNormalClosure, "recording done"), time.Now().Add(time.Second))
			conn.Close()
		case <-done:
			conn.Close()
		}
	}()
	idle := rc.cfg.IdleTimeout
	_ = conn.SetReadDeadline(time.Now().Add(idle))
	conn.SetPingHandler(func(data string) error {
		_ = conn.SetReadDeadline(time.Now().Add(idle))
		return conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(5*time.Second))
	})

	var got int64
	for {
		typ, data, err := conn.ReadMessage()
		if err != nil {
			return got, true, err
		}
		now := time.Now()
		_ = conn.SetReadDeadline(now.Add(idle))
		if typ != websocket.BinaryMessage && typ != websocket.TextMessage {
			continue
		}
		fi, _ := ParseFrame(data)
		// Right after a resume a server may resend the cursor's own event;
		// the capture already has it. Later repeats are the server's and are
		// kept, since the relay under test may be the one repeating.
		if cursor >= 0 && got == 0 && fi.Seq > 0 && fi.Seq <= cursor {
			rc.dups.Add(1)
			continue
		}
		if err := rc.w.append(Record{Time: now, Host: rc.host, Frame: data}, fi); err != nil {
			if len(data) > MaxFrameSize {
				rc.oversized.Add(1)
				rc.setErr(err)
				rc.cfg.Logf("%v", err)
				continue
			}
			return got, true, &fatalError{fmt.Errorf("record: %w; the capture is readable up to the last flush", err)}
		}
		got++
		rc.bytes.Add(int64(len(data)))
		if fi.Seq > rc.lastSeq.Load() {
			rc.lastSeq.Store(fi.Seq)
		}
		if rc.res != nil {
			rc.res.add(fi.DID)
		}
		if n := rc.frames.Add(1); rc.cfg.MaxFrames > 0 && n >= rc.cfg.MaxFrames {
			rc.stoppedByFrames.Store(true)
			rc.stop()
			return got, true, nil
		}
	}
}

// resolver fetches each DID's document once, with bounded concurrency, and
// stores it in the capture. Its queue holds DIDs only (the seen-set is the
// per-account map the capture needs anyway), so it never blocks recording.
type resolver struct {
	cfg    RecordConfig
	w      *Writer
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	cond    *sync.Cond
	seen    map[string]bool
	queue   []string
	closing bool
	wg      sync.WaitGroup

	queued, resolved, failed atomic.Int64
}

func newResolver(ctx context.Context, cfg RecordConfig, w *Writer) *resolver {
	r := &resolver{cfg: cfg, w: w, seen: map[string]bool{}}
	r.ctx, r.cancel = context.WithCancel(ctx)
	r.cond = sync.NewCond(&r.mu)
	for range cfg.ResolveConcurrency {
		r.wg.Add(1)
		go r.work()
	}
	return r
}

func (r *resolver) add(did string) {
	if did == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen[did] || r.closing {
		return
	}
	r.seen[did] = true
	r.queue = append(r.queue, did)
	r.queued.Add(1)
	r.cond.Signal()
}

// finish lets the queue drain for at most grace, then abandons the rest.
func (r *resolver) finish(grace time.Duration) {
	r.mu.Lock()
	r.closing = true
	r.cond.Broadcast()
	r.mu.Unlock()
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
	case <-r.ctx.Done():
	}
	r.cancel()
	r.mu.Lock()
	r.failed.Add(int64(len(r.queue)))
	r.queue = nil
	r.cond.Broadcast()
	r.mu.Unlock()
	<-done
}

func (r *resolver) work() {
	defer r.wg.Done()
	for {
		r.mu.Lock()
		for len(r.queue) == 0 && !r.closing {
			r.cond.Wait()
		}
		if len(r.queue) == 0 || r.ctx.Err() != nil {
			r.mu.Unlock()
			return
		}
		did := r.queue[0]
		r.queue = r.queue[1:]
		r.mu.Unlock()
		if err := r.resolve(did); err != nil {
			r.failed.Add(1)
			r.cfg.Logf("resolve %s: %v", did, err)
			continue
		}
		r.resolved.Add(1)
	}
}

func (r *resolver) docURL(did string) (string, error) {
	switch {
	case strings.HasPrefix(did, "did:plc:"):
		return r.cfg.PLC + "/" + did, nil
	case strings.HasPrefix(did, "did:web:"):
		// did:web:host[:path…], the host percent-encoded (a port's colon as %3A).
		parts := strings.Split(strings.TrimPrefix(did, "did:web:"), ":")
		host, err := url.PathUnescape(parts[0])
		if err != nil || host == "" || strings.ContainsAny(host, "/?#@") {
			return "", fmt.Errorf("did:web %q: not a host", did)
		}
		if len(parts) == 1 {
			return "https://" + host + "/.well-known/did.json", nil
		}
		return "https://" + host + "/" + strings.Join(parts[1:], "/") + "/did.json", nil
	default:
		return "", fmt.Errorf("DID method of %q not resolvable (did:plc and did:web are)", did)
	}
}

func (r *resolver) resolve(did string) error {
	u, err := r.docURL(did)
	if err != nil {
		return err
	}
	var last error
	for attempt := range 3 {
		if attempt > 0 {
			select {
			case <-r.ctx.Done():
				return r.ctx.Err()
			case <-time.After(time.Duration(attempt) * time.Second):
			}
		}
		doc, retry, err := r.fetch(u)
		if err == nil {
			return r.w.AddDIDDoc(did, doc)
		}
		last = err
		if !retry {
			break
		}
	}
	return last
}

func (r *resolver) fetch(u string) (doc []byte, retry bool, err error) {
	req, err := http.NewRequestWithContext(r.ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, false, err
	}
	req.Header.Set("User-Agent", "relaysoak-capture")
	resp, err := r.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, r.ctx.Err() == nil, fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, true, fmt.Errorf("GET %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		retry := resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
		return nil, retry, fmt.Errorf("GET %s: HTTP %s", u, resp.Status)
	}
	return body, false, nil
}
