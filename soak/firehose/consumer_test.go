package firehose

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/events"
	"github.com/gorilla/websocket"
	"github.com/relaysoak/relaysoak/internal/useragent"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeRelay is a tiny firehose server: it plays the frames it is given on
// the first connection, closes it, and on the next connection (which must
// carry the cursor) plays the rest. It stands in for a relay because the
// consumer's bookkeeping is tested here; the real relay is in package relay.
type fakeRelay struct {
	t       *testing.T
	mu      sync.Mutex
	rounds  [][]*events.XRPCStreamEvent
	cursors []string
	agents  []string
	gate    chan struct{} // when set, closed before the second round is played
}

func (f *fakeRelay) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != Path {
		http.NotFound(w, r)
		return
	}
	up := websocket.Upgrader{}
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	f.mu.Lock()
	if len(f.cursors) == 1 && f.gate != nil {
		f.mu.Unlock()
		<-f.gate
		f.mu.Lock()
	}
	f.cursors = append(f.cursors, r.URL.Query().Get("cursor"))
	f.agents = append(f.agents, r.UserAgent())
	var round []*events.XRPCStreamEvent
	if len(f.rounds) > 0 {
		round, f.rounds = f.rounds[0], f.rounds[1:]
	}
	f.mu.Unlock()
	if round == nil {
		// Nothing more to say: hold the connection until the client leaves.
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				return
			}
		}
	}
	for _, e := range round {
		var b bytes.Buffer
		require.NoError(f.t, e.Serialize(&b))
		if err := conn.WriteMessage(websocket.BinaryMessage, b.Bytes()); err != nil {
			return
		}
	}
	conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
}

func TestConsumerCountsVerifiesAndMeasuresLag(t *testing.T) {
	alice := newTestAccount(t, "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa")
	bob := newTestAccount(t, "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb")
	dir := identity.NewMockDirectory()
	dir.Insert(alice.identity(t))
	dir.Insert(bob.identity(t))
	stranger, err := atcrypto.GeneratePrivateKeyK256()
	require.NoError(t, err)

	// The clock the consumer stamps arrival with: every frame "arrives"
	// exactly 250ms after the time its commit says it was emitted.
	emitted := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	now := func() time.Time { return emitted.Add(250 * time.Millisecond) }

	hostOf := map[string]string{alice.did: "pds0001.test", bob.did: "pds0002.test"}
	var round1, round2 []*events.XRPCStreamEvent
	seq := int64(0)
	next := func() int64 { seq++; return seq }
	for i := 0; i < 5; i++ {
		round1 = append(round1, &events.XRPCStreamEvent{RepoCommit: alice.commit(t, next(), emitted, nil)})
	}
	handle := "bob.test"
	round1 = append(round1,
		&events.XRPCStreamEvent{RepoIdentity: &comatproto.SyncSubscribeRepos_Identity{Did: bob.did, Handle: &handle, Seq: next(), Time: "2026-01-02T03:04:05.000Z"}},
		&events.XRPCStreamEvent{RepoAccount: &comatproto.SyncSubscribeRepos_Account{Did: bob.did, Active: true, Seq: next(), Time: "2026-01-02T03:04:05.000Z"}},
		&events.XRPCStreamEvent{RepoInfo: &comatproto.SyncSubscribeRepos_Info{Name: "OutdatedCursor"}},
	)
	next() // a seq the relay never sent us: one gap
	for i := 0; i < 3; i++ {
		round2 = append(round2, &events.XRPCStreamEvent{RepoCommit: bob.commit(t, next(), emitted, nil)})
	}
	// Signed by a key the directory does not know: must fail verification.
	round2 = append(round2, &events.XRPCStreamEvent{RepoCommit: bob.commit(t, next(), emitted, stranger)})
	round2 = append(round2, &events.XRPCStreamEvent{Error: &events.ErrorFrame{Error: "FutureCursor", Message: "cursor in the future"}})

	fr := &fakeRelay{t: t, rounds: [][]*events.XRPCStreamEvent{round1, round2}}
	srv := httptest.NewServer(fr)
	defer srv.Close()

	c, err := New(Config{
		URL:            strings.Replace(srv.URL, "http://", "ws://", 1),
		Origin:         func(did string) string { return hostOf[did] },
		Directory:      dir,
		ReconnectDelay: 10 * time.Millisecond,
		Now:            now,
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	require.Eventually(t, func() bool { return c.Stats().ErrorFrames == 1 }, 10*time.Second, 10*time.Millisecond)
	cancel()
	require.NoError(t, <-done)

	s := c.Stats()
	assert.Equal(t, uint64(9), s.Commits)
	assert.Equal(t, uint64(1), s.Identity)
	assert.Equal(t, uint64(1), s.Account)
	assert.Equal(t, uint64(1), s.Info)
	assert.Equal(t, uint64(1), s.ErrorFrames)
	assert.Contains(t, s.LastErrorFrame, "FutureCursor")
	assert.Zero(t, s.DecodeErrors)
	assert.Equal(t, uint64(7), s.CommitsWithPrevData, "all but each account's first commit carry prevData")
	assert.Equal(t, HostCounts{Commits: 5}, s.ByHost["pds0001.test"])
	assert.Equal(t, HostCounts{Commits: 4, Other: 2}, s.ByHost["pds0002.test"])

	assert.Equal(t, uint64(8), s.Verified)
	assert.Equal(t, uint64(1), s.VerifyFailed)
	require.Len(t, s.Failures, 1)
	assert.Contains(t, s.Failures[0], "signature")

	assert.Equal(t, uint64(9), s.Lag.Count)
	assert.InDelta(t, 250*time.Millisecond, s.Lag.P50, float64(6*time.Millisecond), "2%% resolution")
	assert.Equal(t, 250*time.Millisecond, s.Lag.Max)

	assert.Equal(t, int64(1), s.FirstSeq)
	assert.Equal(t, seq, s.LastSeq)
	assert.Equal(t, uint64(1), s.SeqGaps)
	assert.GreaterOrEqual(t, s.Connects, 2)
	require.GreaterOrEqual(t, len(fr.cursors), 2)
	assert.Equal(t, "", fr.cursors[0])
	assert.Equal(t, "7", fr.cursors[1], "the consumer resumes from the last seq it saw")
	for _, ua := range fr.agents {
		assert.Equal(t, useragent.For(useragent.Measure), ua, "the measuring consumer names itself, the same on every dial")
	}

	assert.InDelta(t, 0.9, s.Delivery(10), 1e-9)
	assert.Zero(t, s.Delivery(0))
}

func TestSampledVerification(t *testing.T) {
	a := newTestAccount(t, "did:plc:cccccccccccccccccccccccc")
	var round []*events.XRPCStreamEvent
	for i := 1; i <= 10; i++ {
		round = append(round, &events.XRPCStreamEvent{RepoCommit: a.commit(t, int64(i), time.Now(), nil)})
	}
	srv := httptest.NewServer(&fakeRelay{t: t, rounds: [][]*events.XRPCStreamEvent{round}})
	defer srv.Close()
	c, err := New(Config{URL: srv.URL, VerifyEvery: 3, ReconnectDelay: time.Hour})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	require.Eventually(t, func() bool { return c.Stats().Commits == 10 }, 10*time.Second, 10*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	s := c.Stats()
	assert.Equal(t, uint64(3), s.Verified+s.VerifySkipped, "every third commit is selected")
	assert.Zero(t, s.VerifyFailed)
	assert.Equal(t, HostCounts{Commits: 10}, s.ByHost[UnknownHost])
}

func TestHostTableIsBounded(t *testing.T) {
	c, err := New(Config{URL: "ws://x", MaxHosts: 2, Origin: func(d string) string { return d }})
	require.NoError(t, err)
	for _, d := range []string{"a", "b", "c", "d", "a"} {
		c.countHost(d, true)
	}
	s := c.Stats()
	assert.Len(t, s.ByHost, 3)
	assert.Equal(t, uint64(2), s.ByHost["a"].Commits)
	assert.Equal(t, uint64(2), s.ByHost[OtherHost].Commits)
}

// A commit signed just before a key rotation reaches the consumer after the
// directory already has the new key: like the relay, the consumer keeps the
// identity it had until the #identity event passes on the stream.
func TestKeyRotationFollowsTheStream(t *testing.T) {
	a := newTestAccount(t, "did:plc:dddddddddddddddddddddddd")
	dir := identity.NewMockDirectory()
	dir.Insert(a.identity(t))
	now := time.Now()
	round1 := []*events.XRPCStreamEvent{{RepoCommit: a.commit(t, 1, now, nil)}}
	old := a.key
	inFlight := a.commit(t, 2, now, old) // signed before the rotation
	newKey, err := atcrypto.GeneratePrivateKeyK256()
	require.NoError(t, err)
	a.key = newKey
	round2 := []*events.XRPCStreamEvent{
		{RepoCommit: inFlight},
		{RepoIdentity: &comatproto.SyncSubscribeRepos_Identity{Did: a.did, Seq: 3, Time: "2026-01-02T03:04:05.000Z"}},
		{RepoCommit: a.commit(t, 4, now, nil)},
	}
	gate := make(chan struct{})
	srv := httptest.NewServer(&fakeRelay{t: t, rounds: [][]*events.XRPCStreamEvent{round1, round2}, gate: gate})
	defer srv.Close()
	c, err := New(Config{URL: srv.URL, Directory: dir, ReconnectDelay: 10 * time.Millisecond})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	require.Eventually(t, func() bool { return c.Stats().Verified == 1 }, 10*time.Second, 10*time.Millisecond)
	dir.Insert(a.identity(t)) // the PLC now names the new key
	close(gate)
	require.Eventually(t, func() bool { s := c.Stats(); return s.Verified+s.VerifyFailed == 3 }, 10*time.Second, 10*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	s := c.Stats()
	assert.Equal(t, uint64(3), s.Verified, "%v", s.Failures)
}

// Churn deletes accounts all through a soak: the identity cache lets go of
// an account at its #account event, so it holds the live population only.
func TestAccountEventsLeaveTheIdentityCache(t *testing.T) {
	a := newTestAccount(t, "did:plc:eeeeeeeeeeeeeeeeeeeeeeee")
	dir := identity.NewMockDirectory()
	dir.Insert(a.identity(t))
	deleted := "deleted"
	round := []*events.XRPCStreamEvent{
		{RepoCommit: a.commit(t, 1, time.Now(), nil)},
		{RepoAccount: &comatproto.SyncSubscribeRepos_Account{Did: a.did, Seq: 2, Active: false, Status: &deleted, Time: "2026-01-02T03:04:05.000Z"}},
	}
	srv := httptest.NewServer(&fakeRelay{t: t, rounds: [][]*events.XRPCStreamEvent{round}})
	defer srv.Close()
	c, err := New(Config{URL: srv.URL, Directory: dir, ReconnectDelay: time.Hour})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	require.Eventually(t, func() bool { return c.Stats().Account == 1 }, 10*time.Second, 10*time.Millisecond)
	cancel()
	require.NoError(t, <-done) // the verification queue has drained
	s := c.Stats()
	require.Equal(t, uint64(1), s.Verified, "%v", s.Failures)
	assert.Zero(t, c.idc.Len(), "the deleted account's identity is still cached")
}
