package fakepds

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/repo/mst"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/bluesky-social/indigo/events"
	cbg "github.com/whyrusleeping/cbor-gen"
)

// Fleet is the fake network: PDS hosts, a PLC directory and an upstream
// relay face, all served by one http.Handler routed by Host header.
type Fleet struct {
	cfg    Config
	log    *slog.Logger
	hosts  []*host
	byName map[string]*host

	// hostsMu guards which accounts live where: accounts, host.accounts and
	// account.host. Lock order: account.mu, then hostsMu, then host.mu.
	hostsMu     sync.RWMutex
	accounts    map[string]*account
	deactivated map[*account]struct{} // by status churn, to be reactivated
	nextAcct    int                   // index of the next synthetic account, for key derivation

	plc   plcDirectory
	faces map[string]face // PLC and upstream names, aliases included
	shape *Shape          // cfg.Shape with its defaults; nil: the built-in mix

	hist      *history
	readersMu sync.Mutex
	readers   []string // ledger slots by address (ledger.go)

	done      chan struct{}
	closeOnce sync.Once
	// nextExpiry is when the hosts' histories are next swept (unix ns).
	nextExpiry atomic.Int64

	// counters, read by Stats
	commits, identities, accountEvts, syncs atomic.Uint64
	framesWritten, slowCut                  atomic.Uint64
	subscribes, pastHistory                 atomic.Uint64
	importedN                               atomic.Int64 // identities hosted for a capture, ever
	connections                             atomic.Int64
	plcRequests, plcErrors                  atomic.Uint64
	plcResets, plcCloses, plcSlow           atomic.Uint64
}

// face is what a non-PDS name serves.
type face int

const (
	facePLC face = iota + 1
	faceUpstream
)

// Stats are the fleet's counters since it started.
type Stats struct {
	Commits, Identity, Account, Sync uint64 // frames emitted, by kind
	FramesWritten                    uint64 // frames written to subscribers
	PLCRequests, PLCErrors           uint64 // DID document requests served; PLC requests failed on purpose
	// PLC connections reset or closed on purpose, answers trickled (fault settings).
	PLCResets, PLCCloses, PLCSlow uint64
	Connections                   int    // subscribers connected now
	Subscribes                    uint64 // subscriptions accepted: a relay's reconnects after outages count here
	// PastHistory counts frames never offered to a subscriber: its cursor
	// was older than its host's history (Config.History), so the frames
	// between are gone. They count against delivery though the
	// relay never saw them.
	PastHistory      uint64
	SlowConsumersCut uint64
	Accounts         int
}

// Frames is every frame the fleet emitted, of every kind.
func (s Stats) Frames() uint64 { return s.Commits + s.Identity + s.Account + s.Sync }

// New builds a fleet from cfg: hosts, accounts, keys and DIDs derived from
// the seed, or restored from cfg.StateDir when it holds a saved fleet.
func New(cfg Config) (*Fleet, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	f := &Fleet{
		cfg:         cfg,
		log:         cfg.Logger.With("component", "fakepds"),
		byName:      make(map[string]*host, cfg.Hosts),
		accounts:    map[string]*account{},
		deactivated: map[*account]struct{}{},
		done:        make(chan struct{}),
		shape:       cfg.Shape,
		faces:       map[string]face{},
	}
	for _, n := range append([]string{cfg.PLCName}, cfg.PLCAliases...) {
		f.faces[canonicalHost(n)] = facePLC
	}
	for _, n := range append([]string{cfg.UpstreamName}, cfg.UpstreamAliases...) {
		if f.faces[canonicalHost(n)] == facePLC {
			return nil, fmt.Errorf("fakepds: %q cannot name both the PLC and the upstream", n)
		}
		f.faces[canonicalHost(n)] = faceUpstream
	}
	f.hist = &history{tailFrames: cfg.TailFrames, tailAge: cfg.TailAge}
	if cfg.History > 0 {
		if f.hist.spool, err = newSpool(cfg.HistoryDir, cfg.History); err != nil {
			return nil, err
		}
	}
	restored, err := f.loadState()
	if err != nil {
		return nil, err
	}
	if restored {
		return f, nil
	}
	// A fleet without saved state still never reuses a seq: seqs start at
	// the wall clock in microseconds, which outruns any host's event count.
	startSeq := time.Now().UnixMicro()
	for i := 0; i < cfg.Hosts; i++ {
		h := newHost(i, HostName(i, cfg.Domain), f.hist, startSeq)
		f.hosts = append(f.hosts, h)
		f.byName[h.name] = h
	}
	for i := 0; i < cfg.Hosts; i++ {
		for j := 0; j < cfg.AccountsPerHost; j++ {
			if _, err := f.createAccount(i); err != nil {
				return nil, err
			}
		}
	}
	return f, nil
}

// createAccount makes the next synthetic account on host hi: keys from the
// seed, a signed PLC genesis operation, a repository of StartRecords
// records. Its first event will be a #sync.
func (f *Fleet) createAccount(hi int) (*account, error) {
	f.hostsMu.Lock()
	k := f.nextAcct
	f.nextAcct++
	f.hostsMu.Unlock()

	h := f.hosts[hi]
	a := &account{
		host:     hi,
		rotation: deriveKey(f.cfg.Seed, fmt.Sprintf("rotation/%d", k)),
		signing:  deriveKey(f.cfg.Seed, fmt.Sprintf("signing/%d/0", k)),
		handle:   fmt.Sprintf("u%d.%s", k, h.name),
		tree:     mst.NewEmptyTree(),
		clock:    syntax.NewTIDClock(0),
		needSync: true,
	}
	a.active.Store(true)
	pub, err := a.signing.PublicKey()
	if err != nil {
		return nil, err
	}
	op, signed, err := newPLCOp(a.rotation, pub, a.handle, f.cfg.PDSScheme, h.name, nil)
	if err != nil {
		return nil, fmt.Errorf("genesis of account %d: %w", k, err)
	}
	a.did = didFromSignedBytes(signed)
	if err := f.fill(a, k); err != nil {
		return nil, err
	}
	if err := f.plc.append(a, op, signed); err != nil {
		return nil, err
	}
	f.hostsMu.Lock()
	f.accounts[a.did] = a
	h.accounts = append(h.accounts, a)
	f.hostsMu.Unlock()
	return a, nil
}

// fill writes StartRecords records into a new account's repository, drawn
// as its commits would be (the shape's collections), without signing or
// publishing: the #sync the account owes announces the result.
func (f *Fleet) fill(a *account, k int) error {
	rng := rand.New(rand.NewPCG(uint64(f.cfg.Seed), uint64(k)))
	for len(a.records) < f.cfg.StartRecords {
		for _, op := range f.nextOps(a, rng) {
			if _, _, err := a.apply(op); err != nil {
				return fmt.Errorf("fill the repository of %s: %w", a.did, err)
			}
		}
	}
	canonicalRoot(&a.tree)
	return nil
}

// CommitsByHost is how many #commit frames each host has sequenced, by
// the host that wrote them.
func (f *Fleet) CommitsByHost() map[string]uint64 {
	f.hostsMu.RLock()
	defer f.hostsMu.RUnlock()
	out := make(map[string]uint64, len(f.hosts))
	for _, h := range f.hosts {
		out[h.name] = h.commits.Load()
	}
	return out
}

// HostNames lists every PDS host's name, in order.
func (f *Fleet) HostNames() []string {
	out := make([]string, len(f.hosts))
	for i, h := range f.hosts {
		out[i] = h.name
	}
	return out
}

// PLCName is the PLC directory's host name; UpstreamName the upstream relay's.
func (f *Fleet) PLCName() string      { return f.cfg.PLCName }
func (f *Fleet) UpstreamName() string { return f.cfg.UpstreamName }

// PDSScheme is what DID documents name as the hosts' scheme: "https" when
// the hosts must be dialled with TLS (wss://, port 443).
func (f *Fleet) PDSScheme() string { return f.cfg.PDSScheme }

// Names are every name the fleet answers to other than its PDS hosts: the
// PLC and upstream names and their aliases. A relay's hosts file must send
// all of them to the fleet.
func (f *Fleet) Names() []string {
	out := append([]string{f.cfg.PLCName, f.cfg.UpstreamName}, f.cfg.PLCAliases...)
	return append(out, f.cfg.UpstreamAliases...)
}

// HostOfDID is the current host of an account, or "" when the fleet does
// not host it.
func (f *Fleet) HostOfDID(did string) string {
	f.hostsMu.RLock()
	defer f.hostsMu.RUnlock()
	a, ok := f.accounts[did]
	if !ok {
		return ""
	}
	return f.hosts[a.host].name
}

// Stats reads the fleet's counters.
func (f *Fleet) Stats() Stats {
	f.hostsMu.RLock()
	n := len(f.accounts)
	f.hostsMu.RUnlock()
	return Stats{
		Commits:          f.commits.Load(),
		Identity:         f.identities.Load(),
		Account:          f.accountEvts.Load(),
		Sync:             f.syncs.Load(),
		FramesWritten:    f.framesWritten.Load(),
		PLCRequests:      f.plcRequests.Load(),
		PLCErrors:        f.plcErrors.Load(),
		PLCResets:        f.plcResets.Load(),
		PLCCloses:        f.plcCloses.Load(),
		PLCSlow:          f.plcSlow.Load(),
		Connections:      int(f.connections.Load()),
		Subscribes:       f.subscribes.Load(),
		PastHistory:      f.pastHistory.Load(),
		SlowConsumersCut: f.slowCut.Load(),
		Accounts:         n,
	}
}

// Close disconnects every subscriber and, with a state dir, saves the fleet.
func (f *Fleet) Close() error {
	var err error
	f.closeOnce.Do(func() {
		close(f.done)
		err = f.saveState()
		if f.hist.spool != nil {
			err = errors.Join(err, f.hist.spool.close())
		}
	})
	return err
}

// header bytes of each frame kind, encoded once.
var frameHeaders = func() map[string][]byte {
	m := map[string][]byte{}
	for _, t := range []string{"#commit", "#identity", "#account", "#sync"} {
		var buf bytes.Buffer
		if err := (&events.EventHeader{Op: events.EvtKindMessage, MsgType: t}).MarshalCBOR(&buf); err != nil {
			panic(err)
		}
		m[t] = buf.Bytes()
	}
	return m
}()

var encodeBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// encodeFrame returns the frame in a slice of exactly its size: frames sit
// in the history for a while, and a grown buffer's slack would sit with them.
func encodeFrame(kind string, body cbg.CBORMarshaler) ([]byte, error) {
	buf := encodeBufs.Get().(*bytes.Buffer)
	defer encodeBufs.Put(buf)
	buf.Reset()
	buf.Write(frameHeaders[kind])
	if err := body.MarshalCBOR(buf); err != nil {
		return nil, fmt.Errorf("encode %s frame: %w", kind, err)
	}
	return bytes.Clone(buf.Bytes()), nil
}

// wireTime is the event time, to the millisecond: the rig reads it back on
// the relay's firehose to measure end-to-end lag.
func wireTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// publishEvent sequences an event of an account on the account's current
// host. Callers hold a.mu, so an account's events keep their order.
func (f *Fleet) publishEvent(a *account, kind string, setSeqTime func(seq int64, t string), body cbg.CBORMarshaler) error {
	f.hostsMu.RLock()
	h := f.hosts[a.host]
	f.hostsMu.RUnlock()
	_, err := h.publish(kind == "#commit", func(seq int64, now time.Time) ([]byte, error) {
		setSeqTime(seq, wireTime(now))
		return encodeFrame(kind, body)
	})
	if err != nil {
		return fmt.Errorf("publish %s of %s on %s: %w", kind, a.did, h.name, err)
	}
	f.countKind(h, kind)
	f.expireHistories(time.Now().UnixNano())
	return nil
}

// expireHistories drops, every quarter of TailAge, the frames older than
// TailAge from every host's tail, each host's newest too, and the index
// entries of spooled frames past the history. A host drops old frames as
// it publishes, but most hosts are quiet (Zipf): without the sweep their
// last frames would stay until their next, and the tails would grow as
// more hosts write their first frame. The publisher that finds the sweep
// due does it; the others go on.
func (f *Fleet) expireHistories(now int64) {
	next := f.nextExpiry.Load()
	if now < next || !f.nextExpiry.CompareAndSwap(next, now+int64(f.cfg.TailAge/4)) {
		return
	}
	for _, h := range f.hosts {
		h.mu.Lock()
		h.expireTail(now)
		h.expireDisk()
		h.mu.Unlock()
	}
}

func (f *Fleet) emitSync(ctx context.Context, a *account) error {
	evt, err := a.syncEvent()
	if err != nil {
		return err
	}
	a.needSync = false
	return f.publishEvent(a, "#sync", func(seq int64, t string) { evt.Seq, evt.Time = seq, t }, evt)
}

func (f *Fleet) emitIdentity(a *account) error {
	handle := a.handle
	evt := &comatproto.SyncSubscribeRepos_Identity{Did: a.did, Handle: &handle}
	return f.publishEvent(a, "#identity", func(seq int64, t string) { evt.Seq, evt.Time = seq, t }, evt)
}

func (f *Fleet) emitAccount(a *account) error {
	evt := &comatproto.SyncSubscribeRepos_Account{Did: a.did, Active: a.active.Load()}
	if a.status != "" {
		st := a.status
		evt.Status = &st
	}
	return f.publishEvent(a, "#account", func(seq int64, t string) { evt.Seq, evt.Time = seq, t }, evt)
}

// writeCommit makes and publishes one commit for a, preceded by the #sync a
// fresh fleet owes the account, and says how many frames it emitted (none
// when a was deactivated or deleted since it was picked).
func (f *Fleet) writeCommit(ctx context.Context, a *account, rng *rand.Rand, opt commitOptions) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.active.Load() {
		return 0, nil
	}
	n := 0
	if a.needSync {
		if err := f.emitSync(ctx, a); err != nil {
			return 0, err
		}
		n++
	}
	sc := getScratch()
	defer putScratch(sc) // the frame is a copy: the event's blocks are free once it is published
	evt, err := a.commit(f.nextOps(a, rng), opt, sc)
	if err != nil {
		return n, err
	}
	if err := f.publishEvent(a, "#commit", func(seq int64, t string) { evt.Seq, evt.Time = seq, t }, evt); err != nil {
		return n, err
	}
	return n + 1, nil
}

// PlantBadPrevData publishes one commit whose prevData is wrong, to prove a
// relay's check is live. It returns the account it used.
func (f *Fleet) PlantBadPrevData(ctx context.Context) (string, error) {
	a := f.pickAccount(rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7)))
	if a == nil {
		return "", fmt.Errorf("fakepds: no active account to plant a bad commit on")
	}
	a.mu.Lock()
	if a.needSync {
		// The relay must hold this account's state already for the check to run.
		if err := f.emitSync(ctx, a); err != nil {
			a.mu.Unlock()
			return "", err
		}
	}
	a.mu.Unlock()
	_, err := f.writeCommit(ctx, a, rand.New(rand.NewPCG(1, 2)), commitOptions{wrongPrevData: true})
	return a.did, err
}

// pickAccount picks an active account on a uniformly chosen host.
func (f *Fleet) pickAccount(rng *rand.Rand) *account {
	f.hostsMu.RLock()
	defer f.hostsMu.RUnlock()
	for try := 0; try < 8; try++ {
		h := f.hosts[rng.IntN(len(f.hosts))]
		if len(h.accounts) == 0 {
			continue
		}
		a := h.accounts[rng.IntN(len(h.accounts))]
		if a.active.Load() && !a.imported {
			return a
		}
	}
	// Rare (a small fleet in heavy churn): look at every account once.
	for _, a := range f.accounts {
		if a.active.Load() && !a.imported {
			return a
		}
	}
	return nil
}

// hostByName finds a host from a Host header value (port and case ignored).
func (f *Fleet) hostByName(name string) *host {
	return f.byName[canonicalHost(name)]
}

func canonicalHost(name string) string {
	if i := strings.LastIndexByte(name, ':'); i >= 0 && !strings.Contains(name[i:], "]") {
		name = name[:i]
	}
	return strings.ToLower(strings.TrimSuffix(name, "."))
}
