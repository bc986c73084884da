// Package crowd runs extra firehose consumers against the relay under test:
// they load its downstream side the way real consumers do (reconnecting and
// resuming, asking for an old cursor, falling too far behind, vanishing
// without a close) and count what they did, so the relay's memory can be read
// against consumer churn. They present themselves as many clients when
// asked (identities: a User-Agent each), and some may hang for good (stuck
// readers), as production's clients do.
//
// Consumers only frame and count. They must not decode events or verify
// anything (the measuring consumer in soak/firehose does that), and must not
// know which relay runs: all they get is its subscribeRepos URL. The crowd's
// own memory is bounded however many consumers churn for however long: a
// consumer keeps two seqs and its prefix buffer across its connections, and
// nothing of a connection (its socket buffers) once it has closed; the
// identities it has used are one bit each of the Identities regulars, and a
// count of the never-seen ones.
package crowd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/relaysoak/relaysoak/soak/firehose"
	"github.com/relaysoak/relaysoak/soak/rundir"
)

// Path is the firehose endpoint, added to a URL that has no path.
const Path = firehose.Path

// Behaviour is what a consumer does at a churn point: how it ends its
// connection and how it connects again.
type Behaviour int

const (
	// Resume closes cleanly and reconnects with the last seq seen as cursor.
	Resume Behaviour = iota + 1
	// OldCursor closes cleanly and reconnects with a cursor BacklogFrames
	// behind the last seq seen, so the relay replays from its backlog.
	OldCursor
	// Slow stops reading for SlowFor, long enough for the relay to cut
	// it off as too slow, then reads what is left to find out whether it
	// did, and resumes.
	Slow
	// Vanish drops the TCP connection without a close frame (a reset, as
	// from a crashed client or a dead NAT entry), then resumes.
	Vanish
	// Stuck closes cleanly, connects again (resuming) and never reads that
	// connection, keeping it open until the run ends (a client that hung,
	// a half-dead proxy): the consumer never comes back. A new
	// connection's socket buffers are small, so what the relay holds for
	// it shows soon, and as soon for every stuck client. A ping written
	// every few seconds finds out whether the relay let go of it.
	Stuck
)

func (b Behaviour) String() string {
	switch b {
	case Resume:
		return "resume"
	case OldCursor:
		return "old-cursor"
	case Slow:
		return "slow"
	case Vanish:
		return "vanish"
	case Stuck:
		return "stuck"
	}
	return fmt.Sprintf("Behaviour(%d)", int(b))
}

// Mix weighs the behaviours chosen at each churn point. Weights are
// relative (they need not add up to 1); the zero Mix is DefaultMix.
type Mix struct {
	Resume, OldCursor, Slow, Vanish, Stuck float64
}

// DefaultMix is mostly well-behaved reconnects, with a fifth each of old
// cursors, slow readers and vanishers; none gets stuck.
var DefaultMix = Mix{Resume: 0.4, OldCursor: 0.2, Slow: 0.2, Vanish: 0.2}

// Config of a Crowd. Zero values mean the defaults given on each field,
// except URL, which is required.
type Config struct {
	// URL of the relay's subscribeRepos (ws, wss, or http and https, taken
	// as ws and wss); Path is added when the URL has none. Consumers dial
	// it directly, never through a proxy: a vanish must reach the relay.
	URL string
	// TLS configures wss (nil: the system's roots).
	TLS *tls.Config
	// Consumers is the number of consumers (0: none, Run returns at once).
	Consumers int
	// Churn is each consumer's mean time between churn points (drawn from
	// an exponential distribution, so the crowd's reconnects are a Poisson
	// stream); 0: consumers never reconnect on purpose.
	Churn time.Duration
	// ChurnScale, when set, divides Churn as each churn point is drawn:
	// an attribution plan raises the consumers' reconnect rate in its
	// phase.
	ChurnScale func() float64
	// Identities is how many distinct client identities the consumers
	// use (default 1: every consumer the same). An identity is a
	// User-Agent (useragent.Client); identity 0 is the crowd's plain one.
	// Each connect takes one of them at random (consumer i's first takes
	// i mod Identities).
	Identities int
	// IdentityChurn is the chance, in [0, 1], that a connect comes as a
	// never-seen identity instead (a new client, as production's come):
	// each such identity is used for that one connection.
	IdentityChurn float64
	// IdentityChurnScale, when set, multiplies IdentityChurn (up to 1) as
	// each connect draws: an attribution plan raises the rate of new
	// identities in its phase without raising reconnects.
	IdentityChurnScale func() float64
	// Mix weighs the behaviours at each churn point (default DefaultMix).
	Mix Mix
	// BacklogFrames is how far behind the last seq seen an OldCursor
	// reconnect asks to start (default 5000; the cursor is at least 1).
	BacklogFrames int64
	// SlowFor is how long a Slow spell stops reading (default 60 s). A
	// relay cuts a consumer off once its queue for it overflows: indigo's
	// holds 16,384 events, some 23 s at 700 frames/s, behind megabytes of
	// socket buffers; at lower rates SlowFor must be longer for a cut to
	// come (SlowNotCut counts the spells that saw none). The consumer only
	// finds out at the spell's end: what the relay sent before the cut
	// waits in the socket buffers to be read, the error frame last.
	SlowFor time.Duration
	// StuckProbe is how often a stuck consumer writes a ping to find out
	// whether the relay let go of it (default 5 s).
	StuckProbe time.Duration
	// DrainFor bounds the reading after a Slow spell (default 5 s): long
	// enough to reach the cut-off behind megabytes of buffered frames.
	DrainFor time.Duration
	// Seed makes the churn times and behaviours repeat (consumer i uses
	// the stream (Seed, i)).
	Seed int64
	// ReconnectDelay is the wait after an unplanned drop or a failed dial
	// (default 1 s).
	ReconnectDelay time.Duration
	// PrefixBytes is how much of each frame a consumer keeps to find its
	// seq (default 32 KiB: a commit's seq follows its ops, at most 200 of
	// them); the rest of the frame is read and discarded.
	PrefixBytes int
	// ReadLimit bounds a frame (default 16 MiB); a bigger one ends the
	// connection as an error.
	ReadLimit int64
	// ReadPace batches a consumer's reads (default 20 ms; negative: none).
	// A relay writes each frame as it comes, so a consumer reading as
	// fast as it can makes one read call per frame, and the syscalls are
	// most of its cost. After a read that emptied the socket the consumer
	// waits ReadPace before the next, so each read takes what came
	// meanwhile. It never falls behind for it: while reads come back full
	// it does not wait.
	ReadPace time.Duration
}

// Counts are what the crowd did since New. Every field but Connected and
// LastError only grows.
type Counts struct {
	// Connects are successful websocket handshakes.
	Connects uint64
	// CursorResumes are connects with the last seq seen as cursor; after
	// any disconnect, planned or not, a consumer that has seen a seq
	// resumes from it, as real consumers do.
	CursorResumes uint64
	// OldCursors are connects with a cursor BacklogFrames behind.
	OldCursors uint64
	// CutOff counts connections the relay ended for the consumer: an error
	// frame (ConsumerTooSlow, or another such as FutureCursor), or the
	// connection closed while the consumer was being slow.
	CutOff uint64
	// SlowNotCut are Slow spells the relay let last SlowFor without
	// cutting the consumer off (its per-consumer buffering absorbed them).
	SlowNotCut uint64
	// Resets are connections the consumer vanished from (TCP reset).
	Resets uint64
	// NewIdentities are the distinct identities the crowd has presented
	// so far: the regulars used, and every never-seen one.
	NewIdentities uint64
	// Stuck are consumers that stopped reading for good (they stay
	// connected, and in Connected, until the run ends); StuckReleased
	// those of them the relay let go of (it closed the connection, as a
	// write to it found).
	Stuck, StuckReleased uint64
	// Frames are websocket messages read; Replayed those whose seq was at
	// or below the highest seq the consumer had seen before connecting
	// (what an old cursor got from the relay's backlog).
	Frames, Replayed uint64
	// Errors are failed dials and connections that ended unplanned
	// without an error frame.
	Errors uint64
	// Connected is the number of consumers connected now.
	Connected int64
	// LastError is the last of the Errors, for a log line.
	LastError string
}

// Columns are the counts under the names a soak's samples give them, all
// prefixed crowd_ so that none is taken for the rig's own frame counter,
// and crowd_disconnects: sessions ended (connects less those connected),
// when a relay frees or keeps what a subscriber held.
func (n Counts) Columns() map[string]float64 {
	return map[string]float64{
		rundir.CrowdConnects:      float64(n.Connects),
		rundir.CrowdDisconnects:   float64(max(int64(n.Connects)-n.Connected, 0)),
		rundir.CrowdCursorResumes: float64(n.CursorResumes),
		rundir.CrowdOldCursors:    float64(n.OldCursors),
		rundir.CrowdCutOff:        float64(n.CutOff),
		rundir.CrowdSlowNotCut:    float64(n.SlowNotCut),
		rundir.CrowdResets:        float64(n.Resets),
		rundir.CrowdNewIdentities: float64(n.NewIdentities),
		rundir.CrowdStuck:         float64(n.Stuck),
		rundir.CrowdStuckReleased: float64(n.StuckReleased),
		rundir.CrowdFrames:        float64(n.Frames),
		rundir.CrowdReplayed:      float64(n.Replayed),
		rundir.CrowdErrors:        float64(n.Errors),
		rundir.CrowdConnected:     float64(n.Connected),
	}
}

// Crowd is a set of consumers. Create with New, then Run.
type Crowd struct {
	cfg    Config
	url    url.URL
	cum    []float64 // cumulative normalised Mix weights, in Behaviour order
	dialer websocket.Dialer

	running atomic.Bool

	connects, cursorResumes, oldCursors atomic.Uint64
	cutOff, slowNotCut, resets          atomic.Uint64
	frames, replayed, errs              atomic.Uint64
	stuck, stuckReleased                atomic.Uint64
	connected                           atomic.Int64
	lastErr                             atomic.Pointer[string]

	ids identities
}

// New checks cfg and fills in its defaults.
func New(cfg Config) (*Crowd, error) {
	if cfg.URL == "" {
		return nil, errors.New("crowd: Config.URL is required")
	}
	u, err := firehose.ParseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("crowd: %w", err)
	}
	if cfg.Consumers < 0 {
		return nil, fmt.Errorf("crowd: consumers must not be negative, got %d", cfg.Consumers)
	}
	if cfg.Churn < 0 || cfg.SlowFor < 0 || cfg.DrainFor < 0 || cfg.ReconnectDelay < 0 {
		return nil, errors.New("crowd: churn, slow, drain and reconnect durations must not be negative")
	}
	m := cfg.Mix
	for name, w := range map[string]float64{"resume": m.Resume, "old cursor": m.OldCursor, "slow": m.Slow, "vanish": m.Vanish, "stuck": m.Stuck} {
		if w < 0 || w != w {
			return nil, fmt.Errorf("crowd: %s weight must be a non-negative number, got %g", name, w)
		}
	}
	if m == (Mix{}) {
		cfg.Mix = DefaultMix
	}
	if cfg.Identities < 0 || cfg.Identities > MaxIdentities {
		return nil, fmt.Errorf("crowd: identities must be between 1 and %d, got %d", MaxIdentities, cfg.Identities)
	}
	if cfg.Identities == 0 {
		cfg.Identities = 1
	}
	if !(cfg.IdentityChurn >= 0 && cfg.IdentityChurn <= 1) {
		return nil, fmt.Errorf("crowd: identity churn is a chance between 0 and 1, got %g", cfg.IdentityChurn)
	}
	if cfg.BacklogFrames < 0 {
		return nil, fmt.Errorf("crowd: backlog frames must not be negative, got %d", cfg.BacklogFrames)
	}
	if cfg.BacklogFrames == 0 {
		cfg.BacklogFrames = 5000
	}
	if cfg.SlowFor == 0 {
		cfg.SlowFor = time.Minute
	}
	if cfg.StuckProbe <= 0 {
		cfg.StuckProbe = 5 * time.Second
	}
	if cfg.DrainFor == 0 {
		cfg.DrainFor = 5 * time.Second
	}
	if cfg.ReconnectDelay == 0 {
		cfg.ReconnectDelay = time.Second
	}
	if cfg.PrefixBytes <= 0 {
		cfg.PrefixBytes = 32 << 10
	}
	if cfg.ReadLimit <= 0 {
		cfg.ReadLimit = 16 << 20
	}
	if cfg.ReadPace == 0 {
		cfg.ReadPace = 20 * time.Millisecond
	}
	c := &Crowd{cfg: cfg, url: *u, ids: newIdentities(cfg.Identities)}
	m = cfg.Mix
	total := m.Resume + m.OldCursor + m.Slow + m.Vanish + m.Stuck
	acc := 0.0
	weights := []float64{m.Resume, m.OldCursor, m.Slow, m.Vanish, m.Stuck}
	for _, w := range weights {
		acc += w / total
		c.cum = append(c.cum, acc)
	}
	// The last weighed behaviour takes whatever rounding left below 1, so a
	// behaviour weighed 0 is never drawn.
	for i := len(weights) - 1; i >= 0; i-- {
		if weights[i] > 0 {
			c.cum[i] = 1
			break
		}
	}
	c.dialer = websocket.Dialer{
		HandshakeTimeout: 10 * time.Second,
		TLSClientConfig:  cfg.TLS,
		// The read buffer holds what a paced read takes in one call; the
		// write buffers are small and shared: a consumer writes only
		// control frames.
		ReadBufferSize:  32 << 10,
		WriteBufferSize: 512,
		WriteBufferPool: &sync.Pool{},
	}
	if cfg.ReadPace > 0 {
		c.dialer.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &pacedConn{Conn: nc, pace: cfg.ReadPace}, nil
		}
	}
	return c, nil
}

// Counts returns a snapshot; safe while Run runs.
func (c *Crowd) Counts() Counts {
	n := Counts{
		Connects:      c.connects.Load(),
		CursorResumes: c.cursorResumes.Load(),
		OldCursors:    c.oldCursors.Load(),
		CutOff:        c.cutOff.Load(),
		SlowNotCut:    c.slowNotCut.Load(),
		Resets:        c.resets.Load(),
		NewIdentities: c.ids.seen(),
		Stuck:         c.stuck.Load(),
		StuckReleased: c.stuckReleased.Load(),
		Frames:        c.frames.Load(),
		Replayed:      c.replayed.Load(),
		Errors:        c.errs.Load(),
		Connected:     c.connected.Load(),
	}
	if e := c.lastErr.Load(); e != nil {
		n.LastError = *e
	}
	return n
}

// Run runs the consumers until ctx ends. When it returns every consumer's
// goroutine has ended and every socket is closed. It returns nil when ctx
// ended, an error only when Run is already running.
func (c *Crowd) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("crowd: Run is already running")
	}
	defer c.running.Store(false)
	var wg sync.WaitGroup
	for i := range c.cfg.Consumers {
		w := &consumer{
			c:   c,
			rng: rand.New(rand.NewPCG(uint64(c.cfg.Seed), uint64(i))),
			id:  i % c.cfg.Identities,
		}
		wg.Go(func() { w.run(ctx) })
	}
	wg.Wait()
	return nil
}

// pick draws a behaviour from the mix.
func (c *Crowd) pick(rng *rand.Rand) Behaviour {
	r := rng.Float64()
	for i, edge := range c.cum {
		if r < edge {
			return Behaviour(i + 1)
		}
	}
	return Resume // not reached: the last weighed edge is 1
}

// MaxIdentities bounds Config.Identities: the crowd keeps a bit per
// regular identity.
const MaxIdentities = 10_000_000

// identities tells which of the regular identities have been used, and
// hands out never-seen ones: its memory is a bit per regular, however
// many connects draw from it.
type identities struct {
	mu    sync.Mutex
	used  []uint64 // a bit per regular identity
	n     int      // regulars
	count uint64   // distinct identities presented
	fresh int64    // never-seen identities handed out
}

func newIdentities(n int) identities {
	return identities{used: make([]uint64, (n+63)/64), n: n}
}

// presented counts identity i as presented to the relay: a regular once,
// a never-seen one (numbered from n) each time, for it is used once.
func (s *identities) presented(i int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case i >= s.n:
		s.count++
	case s.used[i/64]&(1<<(i%64)) == 0:
		s.used[i/64] |= 1 << (i % 64)
		s.count++
	}
}

// next is a never-seen identity, numbered after the regulars.
func (s *identities) next() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fresh++
	return s.n + int(s.fresh) - 1
}

func (s *identities) seen() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}
