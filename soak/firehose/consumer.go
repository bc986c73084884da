package firehose

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/repo"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/bluesky-social/indigo/events"
	"github.com/gorilla/websocket"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/relaysoak/relaysoak/internal/cborhead"
	"github.com/relaysoak/relaysoak/internal/loghist"
	"github.com/relaysoak/relaysoak/internal/useragent"
)

// maxKeptBuffer is the largest read buffer kept between frames.
const maxKeptBuffer = 1 << 20

// Path is the firehose endpoint on a relay.
const Path = "/xrpc/com.atproto.sync.subscribeRepos"

// OtherHost collects origins past Config.MaxHosts, UnknownHost DIDs the
// Origin function does not know.
const (
	OtherHost   = "(other)"
	UnknownHost = "(unknown)"
)

// Config of a Consumer. Zero values are sensible defaults except URL.
type Config struct {
	// URL of the relay's firehose, e.g. ws://127.0.0.1:32768 (Path is added
	// when the URL has none). Required.
	URL string
	// Origin names the host an account's events come from (the fleet's
	// HostOfDID); nil counts everything under UnknownHost.
	Origin func(did string) string
	// Directory resolves DIDs for signature checks (the fleet's in-process
	// directory). Nil: commits are checked with repo.VerifyCommitMessage only.
	Directory identity.Directory
	// VerifyEvery: 0 or 1 verifies every commit (tests); n>1 every nth commit
	// (long runs: verification costs CPU the fleet and relay need); <0 none.
	VerifyEvery int
	// Captured says whether a DID's commits are a replayed capture's real
	// frames: those are all verified, whatever VerifyEvery, and counted
	// apart (Stats.Captured*). Nil: none are.
	Captured func(did string) bool
	// VerifyWorkers (default 1) and VerifyQueue (default 1024) bound the
	// verification stage. With VerifyEvery <= 1 the reader waits for room
	// (nothing goes unverified); when sampling, a full queue skips the commit
	// and counts it in VerifySkipped.
	VerifyWorkers, VerifyQueue int
	// MaxHosts bounds the per-origin table (default 100,000).
	MaxHosts int
	// MaxFailures bounds the verification failures kept verbatim (default 20).
	MaxFailures int
	// MaxIdentities bounds the identity cache used for signature checks
	// (default 100,000). Like a relay, the consumer keeps an account's
	// identity until an #identity event for it passes on the stream: a
	// commit signed just before a key rotation is checked with the key it
	// was signed with, not with the key the directory has moved on to.
	MaxIdentities int
	// Lag configures the lag histogram (default 100 µs to 1 h at 2%).
	Lag loghist.Config
	// ReconnectDelay between attempts after the connection drops (default 1s).
	// The consumer resumes from the last seq it saw.
	ReconnectDelay time.Duration
	// ReadLimit per frame (default 16 MB; a relay frame is at most ~2 MB of blocks).
	ReadLimit int64
	// Now is the clock that stamps arrival (default time.Now).
	Now func() time.Time
}

// HostCounts are the events of one origin host.
type HostCounts struct {
	Commits, Other uint64
}

// Stats is a snapshot of everything a Consumer measured.
type Stats struct {
	Frames                                 uint64
	Commits, Identity, Account, Sync, Info uint64
	ErrorFrames, Unknown, DecodeErrors     uint64
	LastErrorFrame                         string
	// CommitsWithPrevData are commits that carry prevData: the account had
	// prior state, so the relay's prevData and MST-inversion checks could run.
	CommitsWithPrevData uint64
	// BadTime counts commits whose `time` does not parse (no lag for them).
	BadTime uint64
	ByHost  map[string]HostCounts

	Verified, VerifyFailed, VerifySkipped uint64
	Failures                              []string // the first MaxFailures, verbatim
	// CapturedCommits are delivered commits of a replayed capture;
	// CapturedVerified and CapturedFailed their verification (every one).
	CapturedCommits, CapturedVerified, CapturedFailed uint64

	// Lag is fleet emission to relay emission. Negative lags (the relay
	// emitted before the fleet's clock said the commit existed: clock skew
	// or a wrong `time`) are counted apart, in Lag.Negative.
	Lag loghist.Summary

	FirstSeq, LastSeq int64
	SeqGaps           uint64 // events missing between consecutive seqs (dropped by the relay for us, or lost in a reconnect)
	Connects          int
	LastError         string // last connection or read error
}

// Delivery is commits out ÷ commits in (0 when nothing went in).
func (s Stats) Delivery(commitsIn uint64) float64 {
	if commitsIn == 0 {
		return 0
	}
	return float64(s.Commits) / float64(commitsIn)
}

// Consumer reads a relay's firehose. Create with New, then Run.
type Consumer struct {
	cfg Config
	url *url.URL
	lag *loghist.Histogram
	// lagSince is lag since the last TakeLag.
	lagSince *loghist.Histogram
	work     chan workItem
	idc      *lru.Cache[string, *identity.Identity]
	wg       sync.WaitGroup

	mu    sync.Mutex
	st    Stats
	every uint64
}

// ParseURL reads a relay's subscribeRepos URL: ws or wss (http and https
// are taken to mean them), with Path added when it has none.
func ParseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("parsing URL %q: %w", raw, err)
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	case "ws", "wss":
	default:
		return nil, fmt.Errorf("URL %q: scheme must be ws or wss", raw)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = Path
	}
	return u, nil
}

func New(cfg Config) (*Consumer, error) {
	if cfg.URL == "" {
		return nil, errors.New("firehose: Config.URL is required")
	}
	u, err := ParseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("firehose: %w", err)
	}
	if cfg.VerifyWorkers <= 0 {
		cfg.VerifyWorkers = 1
	}
	if cfg.VerifyQueue <= 0 {
		cfg.VerifyQueue = 1024
	}
	if cfg.MaxHosts <= 0 {
		cfg.MaxHosts = 100_000
	}
	if cfg.MaxFailures <= 0 {
		cfg.MaxFailures = 20
	}
	if cfg.MaxIdentities <= 0 {
		cfg.MaxIdentities = 100_000
	}
	if cfg.ReconnectDelay <= 0 {
		cfg.ReconnectDelay = time.Second
	}
	if cfg.ReadLimit <= 0 {
		cfg.ReadLimit = 16 << 20
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	idc, err := lru.New[string, *identity.Identity](cfg.MaxIdentities)
	if err != nil {
		return nil, fmt.Errorf("firehose: identity cache: %w", err)
	}
	c := &Consumer{cfg: cfg, url: u, lag: loghist.New(cfg.Lag), lagSince: loghist.New(cfg.Lag), idc: idc,
		work: make(chan workItem, cfg.VerifyQueue)}
	c.st.ByHost = map[string]HostCounts{}
	c.st.FirstSeq = -1
	return c, nil
}

// Stats returns a snapshot; safe while Run runs.
func (c *Consumer) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.st
	s.ByHost = make(map[string]HostCounts, len(c.st.ByHost))
	for k, v := range c.st.ByHost {
		s.ByHost[k] = v
	}
	s.Failures = append([]string(nil), c.st.Failures...)
	s.Lag = c.lag.Summary()
	return s
}

// TakeLag is the lag of the commits delivered since the last TakeLag (or
// the start): the run's Stats.Lag is cumulative, which hides a change late
// in a long run.
func (c *Consumer) TakeLag() loghist.Summary { return c.lagSince.Take() }

// Run reads the firehose until ctx ends, reconnecting (from the last seq)
// when the connection drops — a relay that restarts is measured across the
// restart. It returns after the verification queue has drained, so Stats
// then hold a verdict for every commit selected for verification.
func (c *Consumer) Run(ctx context.Context) error {
	// Verification outlives ctx by the time it takes to drain the queue.
	vctx := context.WithoutCancel(ctx)
	for i := 0; i < c.cfg.VerifyWorkers; i++ {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			for it := range c.work {
				if it.purge != "" {
					c.idc.Remove(it.purge)
					continue
				}
				c.verify(vctx, it.commit, it.captured)
			}
		}()
	}
	defer func() {
		close(c.work)
		c.wg.Wait()
	}()
	for {
		err := c.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		c.mu.Lock()
		if err != nil {
			c.st.LastError = err.Error()
		}
		c.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(c.cfg.ReconnectDelay):
		}
	}
}

func (c *Consumer) session(ctx context.Context) error {
	u := *c.url
	c.mu.Lock()
	if c.st.LastSeq > 0 {
		q := u.Query()
		q.Set("cursor", strconv.FormatInt(c.st.LastSeq, 10))
		u.RawQuery = q.Encode()
	}
	c.mu.Unlock()
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, Proxy: http.ProxyFromEnvironment}
	conn, resp, err := d.DialContext(ctx, u.String(), useragent.Header(useragent.Measure))
	if err != nil {
		if resp != nil {
			return fmt.Errorf("dialling firehose %s: %w (status %s)", u.String(), err, resp.Status)
		}
		return fmt.Errorf("dialling firehose %s: %w", u.String(), err)
	}
	defer conn.Close()
	conn.SetReadLimit(c.cfg.ReadLimit)
	c.mu.Lock()
	c.st.Connects++
	c.mu.Unlock()

	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	// One buffer for every frame: handle keeps nothing of it (a decoded
	// commit owns copies), and reading into it spares the collector a
	// frame's worth of garbage per frame.
	var buf bytes.Buffer
	for {
		mt, r, err := conn.NextReader()
		if err != nil {
			return fmt.Errorf("reading firehose %s: %w", u.String(), err)
		}
		if buf.Cap() > maxKeptBuffer {
			buf = bytes.Buffer{} // one huge frame does not pin its size for the rest of the run
		}
		buf.Reset()
		if _, err := buf.ReadFrom(r); err != nil {
			return fmt.Errorf("reading firehose %s: %w", u.String(), err)
		}
		arrival := c.cfg.Now()
		if mt != websocket.BinaryMessage {
			continue
		}
		c.handle(ctx, buf.Bytes(), arrival)
	}
}

// handle counts one frame. Frames are walked, not decoded (package
// cborhead): kind, seq, account and time are all delivery and lag need,
// and a full decode of every frame cost the rig more than the relay's
// stream is worth measuring. The commits chosen for verification, and
// error frames, are decoded in full.
func (c *Consumer) handle(ctx context.Context, data []byte, arrival time.Time) {
	fr, err := cborhead.Peek(data)
	c.mu.Lock()
	c.st.Frames++
	if err != nil {
		c.st.DecodeErrors++
		c.mu.Unlock()
		return
	}
	did, purge := fr.DID, ""
	isCommit, captured := false, false
	switch {
	case fr.Op == -1:
		c.st.ErrorFrames++
		c.st.LastErrorFrame = errorFrameText(data)
	case fr.Op != 1:
		c.st.Unknown++
	case fr.Kind == "#commit":
		isCommit = true
		c.st.Commits++
		if fr.PrevData {
			c.st.CommitsWithPrevData++
		}
		if c.cfg.Captured != nil && c.cfg.Captured(did) {
			// A captured frame keeps the time it had on the live network:
			// there is no lag to read from it.
			captured = true
			c.st.CapturedCommits++
		} else if t, err := time.Parse(time.RFC3339Nano, fr.Time); err == nil {
			c.lag.Observe(arrival.Sub(t))
			c.lagSince.Observe(arrival.Sub(t))
		} else {
			c.st.BadTime++
		}
	case fr.Kind == "#sync":
		c.st.Sync++
	case fr.Kind == "#identity":
		c.st.Identity++
		purge = did
	case fr.Kind == "#account":
		c.st.Account++
		// A deleted account's identity would otherwise stay cached until
		// the bound evicts it; a deactivated one is resolved again if it
		// comes back, which is rare and cheap.
		purge = did
	case fr.Kind == "#info":
		c.st.Info++
		did = ""
	default:
		c.st.Unknown++
		did = ""
	}
	if fr.HasSeq && fr.Op == 1 {
		seq := fr.Seq
		if c.st.FirstSeq < 0 {
			c.st.FirstSeq = seq
		}
		if c.st.LastSeq > 0 && seq > c.st.LastSeq+1 {
			c.st.SeqGaps += uint64(seq - c.st.LastSeq - 1)
		}
		if seq > c.st.LastSeq {
			c.st.LastSeq = seq
		}
	}
	if did != "" {
		c.countHost(did, isCommit)
	}
	sample := false
	if isCommit && c.cfg.VerifyEvery >= 0 && !captured {
		c.every++
		n := uint64(max(c.cfg.VerifyEvery, 1))
		sample = c.every%n == 0
	}
	c.mu.Unlock()

	if purge != "" && c.cfg.VerifyEvery >= 0 {
		// In stream order with the commits (one worker keeps the order), and
		// never dropped: identity and account events are rare.
		select {
		case c.work <- workItem{purge: purge}:
		case <-ctx.Done():
		}
	}
	if !captured && !sample {
		return
	}
	var evt events.XRPCStreamEvent
	if err := evt.Deserialize(bytes.NewReader(data)); err != nil || evt.RepoCommit == nil {
		c.mu.Lock()
		c.st.DecodeErrors++
		c.mu.Unlock()
		return
	}
	if captured {
		// Real frames are few and the point of the replay: never skipped.
		select {
		case c.work <- workItem{commit: evt.RepoCommit, captured: true}:
		case <-ctx.Done():
			c.mu.Lock()
			c.st.VerifySkipped++
			c.mu.Unlock()
		}
		return
	}
	if c.cfg.VerifyEvery <= 1 {
		select {
		case c.work <- workItem{commit: evt.RepoCommit}:
		case <-ctx.Done():
			c.mu.Lock()
			c.st.VerifySkipped++
			c.mu.Unlock()
		}
		return
	}
	select {
	case c.work <- workItem{commit: evt.RepoCommit}:
	default:
		c.mu.Lock()
		c.st.VerifySkipped++
		c.mu.Unlock()
	}
}

// errorFrameText is an error frame's name and message.
func errorFrameText(data []byte) string {
	var evt events.XRPCStreamEvent
	if err := evt.Deserialize(bytes.NewReader(data)); err != nil || evt.Error == nil {
		return "(an error frame that does not decode)"
	}
	return evt.Error.Error + ": " + evt.Error.Message
}

// countHost is called with c.mu held.
func (c *Consumer) countHost(did string, commit bool) {
	host := UnknownHost
	if c.cfg.Origin != nil {
		if h := c.cfg.Origin(did); h != "" {
			host = h
		}
	}
	hc, ok := c.st.ByHost[host]
	if !ok && len(c.st.ByHost) >= c.cfg.MaxHosts {
		host = OtherHost
		hc = c.st.ByHost[host]
	}
	if commit {
		hc.Commits++
	} else {
		hc.Other++
	}
	c.st.ByHost[host] = hc
}

// workItem is a commit to verify or a DID whose cached identity to drop.
type workItem struct {
	commit   *comatproto.SyncSubscribeRepos_Commit
	captured bool
	purge    string
}

func (c *Consumer) verify(ctx context.Context, evt *comatproto.SyncSubscribeRepos_Commit, captured bool) {
	var dir identity.Directory
	if c.cfg.Directory != nil {
		dir = cachedDirectory{c}
	}
	err := verifyCommit(ctx, dir, evt)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil {
		c.st.Verified++
		if captured {
			c.st.CapturedVerified++
		}
		return
	}
	c.st.VerifyFailed++
	if captured {
		c.st.CapturedFailed++
	}
	if len(c.st.Failures) < c.cfg.MaxFailures {
		c.st.Failures = append(c.st.Failures, fmt.Sprintf("seq %d %s rev %s: %v", evt.Seq, evt.Repo, evt.Rev, err))
	}
}

// cachedDirectory answers from the consumer's identity cache, filling it
// from the configured directory on a miss. Only verification workers use it.
type cachedDirectory struct{ c *Consumer }

func (d cachedDirectory) LookupDID(ctx context.Context, did syntax.DID) (*identity.Identity, error) {
	if id, ok := d.c.idc.Get(did.String()); ok {
		return id, nil
	}
	id, err := d.c.cfg.Directory.LookupDID(ctx, did)
	if err != nil {
		return nil, err
	}
	d.c.idc.Add(did.String(), id)
	return id, nil
}

func (d cachedDirectory) LookupHandle(ctx context.Context, h syntax.Handle) (*identity.Identity, error) {
	return d.c.cfg.Directory.LookupHandle(ctx, h)
}

func (d cachedDirectory) Lookup(ctx context.Context, a syntax.AtIdentifier) (*identity.Identity, error) {
	if did, err := a.AsDID(); err == nil {
		return d.LookupDID(ctx, did)
	}
	return d.c.cfg.Directory.Lookup(ctx, a)
}

func (d cachedDirectory) Purge(ctx context.Context, a syntax.AtIdentifier) error {
	d.c.idc.Remove(a.String())
	return nil
}

// verifyCommit is the relay's own check (structure, CAR, MST inversion of
// the ops) plus, with a directory, the signature against the account's
// current #atproto key.
func verifyCommit(ctx context.Context, dir identity.Directory, evt *comatproto.SyncSubscribeRepos_Commit) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := repo.VerifyCommitMessage(ctx, evt); err != nil {
		return fmt.Errorf("commit message: %w", err)
	}
	if dir != nil {
		if err := repo.VerifyCommitSignature(ctx, dir, evt); err != nil {
			return fmt.Errorf("signature: %w", err)
		}
	}
	return nil
}
