package fakepds

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/repo"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/bluesky-social/indigo/events"
	"github.com/gorilla/websocket"
	"github.com/ipfs/go-cid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/relaysoak/relaysoak/internal/testkit"
)

// testNet serves a fleet on loopback; every fleet name resolves to it, the
// way a hosts file does for a relay in a container.
type testNet struct {
	fleet  *Fleet
	client *http.Client
	dialer *websocket.Dialer
}

func startNet(t testing.TB, cfg Config) *testNet {
	t.Helper()
	f, err := New(cfg)
	require.NoError(t, err)
	vh := testkit.ServeVirtualHosts(t, f)
	t.Cleanup(func() { f.Close() }) // runs first: the fleet ends before its server
	return &testNet{
		fleet:  f,
		client: vh.Client,
		dialer: vh.Dialer,
	}
}

func (n *testNet) get(t testing.TB, rawURL string) (int, []byte, http.Header) {
	t.Helper()
	resp, err := n.client.Get(rawURL)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b, resp.Header
}

// directory resolves DIDs over the fleet's PLC HTTP face, as a relay does.
func (n *testNet) directory() identity.Directory {
	return &identity.BaseDirectory{PLCURL: "http://" + n.fleet.PLCName(), HTTPClient: *n.client, SkipHandleVerification: true}
}

// sub is one websocket subscriber; frames arrive on ch.
type sub struct {
	host string
	conn *websocket.Conn
	ch   chan []byte
}

func (n *testNet) subscribe(t testing.TB, host, query string) *sub {
	t.Helper()
	u := "ws://" + host + "/xrpc/com.atproto.sync.subscribeRepos" + query
	conn, resp, err := n.dialer.Dial(u, nil)
	require.NoError(t, err, "dial %s", u)
	assert.NotContains(t, resp.Header.Get("Server"), "atproto-relay")
	s := &sub{host: host, conn: conn, ch: make(chan []byte, 100000)}
	go func() {
		defer close(s.ch)
		for {
			_, b, err := conn.ReadMessage()
			if err != nil {
				return
			}
			s.ch <- b
		}
	}()
	t.Cleanup(func() { conn.Close() })
	return s
}

// event is a decoded frame.
type event struct {
	op     int64
	kind   string
	seq    int64
	commit *comatproto.SyncSubscribeRepos_Commit
	sync   *comatproto.SyncSubscribeRepos_Sync
	ident  *comatproto.SyncSubscribeRepos_Identity
	acct   *comatproto.SyncSubscribeRepos_Account
	info   *comatproto.SyncSubscribeRepos_Info
	errf   *events.ErrorFrame
}

func decode(t testing.TB, b []byte) event {
	t.Helper()
	r := bytes.NewReader(b)
	var hdr events.EventHeader
	require.NoError(t, hdr.UnmarshalCBOR(r))
	ev := event{op: hdr.Op, kind: hdr.MsgType}
	var err error
	switch {
	case hdr.Op == events.EvtKindErrorFrame:
		ev.errf = &events.ErrorFrame{}
		err = ev.errf.UnmarshalCBOR(r)
	case hdr.MsgType == "#commit":
		ev.commit = &comatproto.SyncSubscribeRepos_Commit{}
		err = ev.commit.UnmarshalCBOR(r)
		ev.seq = ev.commit.Seq
	case hdr.MsgType == "#sync":
		ev.sync = &comatproto.SyncSubscribeRepos_Sync{}
		err = ev.sync.UnmarshalCBOR(r)
		ev.seq = ev.sync.Seq
	case hdr.MsgType == "#identity":
		ev.ident = &comatproto.SyncSubscribeRepos_Identity{}
		err = ev.ident.UnmarshalCBOR(r)
		ev.seq = ev.ident.Seq
	case hdr.MsgType == "#account":
		ev.acct = &comatproto.SyncSubscribeRepos_Account{}
		err = ev.acct.UnmarshalCBOR(r)
		ev.seq = ev.acct.Seq
	case hdr.MsgType == "#info":
		ev.info = &comatproto.SyncSubscribeRepos_Info{}
		err = ev.info.UnmarshalCBOR(r)
	default:
		t.Fatalf("unexpected frame header %+v", hdr)
	}
	require.NoError(t, err, "decode %s body", hdr.MsgType)
	require.Zero(t, r.Len(), "trailing bytes after %s body", hdr.MsgType)
	return ev
}

func next(t testing.TB, s *sub) event {
	t.Helper()
	select {
	case b, ok := <-s.ch:
		require.True(t, ok, "subscription to %s closed", s.host)
		return decode(t, b)
	case <-time.After(5 * time.Second):
		t.Fatalf("no frame from %s within 5s", s.host)
		return event{}
	}
}

// verifyCommit runs indigo's own relay checks on a commit: structure, MST
// inversion against prevData, and the signature against the key the PLC
// serves now.
func verifyCommit(t testing.TB, dir identity.Directory, c *comatproto.SyncSubscribeRepos_Commit) {
	t.Helper()
	ctx := context.Background()
	_, err := repo.VerifyCommitMessage(ctx, c)
	require.NoError(t, err, "commit %s rev %s fails VerifyCommitMessage", c.Repo, c.Rev)
	require.NoError(t, repo.VerifyCommitSignature(ctx, dir, c), "signature of %s rev %s", c.Repo, c.Rev)
}

func TestEveryCommitVerifiesThroughChurn(t *testing.T) {
	// High churn so a short test sees key rotations, moves, new and deleted
	// accounts and status changes.
	n := startNet(t, Config{Hosts: 3, AccountsPerHost: 3, Seed: 7, MaxRecords: 6,
		MoveDelay: time.Millisecond})
	m := mix{EventIdentity: 30, EventKeyRotation: 30, EventNewAccount: 30, EventMove: 40, EventStatus: 20, EventSync: 20}
	subs := map[string]*sub{}
	for _, h := range n.fleet.HostNames() {
		subs[h] = n.subscribe(t, h, "")
	}
	dir := n.directory()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	lastSeq := map[string]int64{}
	lastRev := map[string]string{}
	counts := map[string]int{}
	commitsFrom := map[string]int{} // by the host whose stream carried them
	seen := 0
	for i := 0; i < 400; i++ {
		require.NoError(t, writeMix(ctx, n.fleet, rng, m))
		// Verify what that write produced before the next one, so a key
		// rotation cannot overtake a commit signed with the old key.
		st := n.fleet.Stats()
		total := int(st.Frames())
		for seen < total {
			got := false
			for h, s := range subs {
				select {
				case b := <-s.ch:
					ev := decode(t, b)
					seen++
					got = true
					counts[ev.kind]++
					require.Greater(t, ev.seq, lastSeq[h], "seq on %s must increase", h)
					lastSeq[h] = ev.seq
					switch ev.kind {
					case "#commit":
						commitsFrom[h]++
						verifyCommit(t, dir, ev.commit)
						ident, err := dir.LookupDID(ctx, syntax.DID(ev.commit.Repo))
						require.NoError(t, err)
						assert.Equal(t, "http://"+h, ident.PDSEndpoint(), "commit of %s arrived from %s but its document names %s", ev.commit.Repo, h, ident.PDSEndpoint())
						assert.Greater(t, ev.commit.Rev, lastRev[ev.commit.Repo], "rev must increase")
						lastRev[ev.commit.Repo] = ev.commit.Rev
						_, err = syntax.ParseDatetime(ev.commit.Time)
						assert.NoError(t, err)
					case "#sync":
						_, err := repo.VerifySyncMessage(ctx, dir, ev.sync)
						require.NoError(t, err, "sync of %s", ev.sync.Did)
						lastRev[ev.sync.Did] = ev.sync.Rev
					}
				default:
				}
			}
			if !got {
				time.Sleep(time.Millisecond)
			}
		}
	}
	t.Logf("frames by kind: %v", counts)
	assert.Greater(t, counts["#commit"], 150)
	var byHost uint64
	for h, c := range n.fleet.CommitsByHost() {
		assert.Equal(t, commitsFrom[h], int(c), "%s's commits, by the host that sequenced them", h)
		byHost += c
	}
	assert.Equal(t, n.fleet.Stats().Commits, byHost, "every commit is some host's")
	assert.Greater(t, counts["#identity"], 5)
	assert.Greater(t, counts["#account"], 2)
	assert.Greater(t, counts["#sync"], 2)
}

// Synthetic accounts start with StartRecords records (MaxRecords by
// default), so the fleet's memory does not climb as churn renews them;
// TestEveryCommitVerifiesThroughChurn checks that a relay accepts the #sync
// and commits that follow such a start.
func TestAccountsStartWithTheirRecords(t *testing.T) {
	for _, tc := range []struct {
		start, want int
	}{{0, 10}, {4, 4}, {-1, 0}, {99, 10}} {
		f, err := New(Config{Hosts: 2, AccountsPerHost: 2, MaxRecords: 10, StartRecords: tc.start})
		require.NoError(t, err)
		require.Len(t, f.accounts, 4)
		for _, a := range f.accounts {
			count := 0
			require.NoError(t, a.tree.Walk(func(k []byte, _ cid.Cid) error { count++; return nil }))
			assert.Len(t, a.recordPaths(), tc.want, "StartRecords %d", tc.start)
			assert.Equal(t, tc.want+btoi(a.profile != nil), count, "StartRecords %d: the tree holds the records", tc.start)
		}
	}
}

// Moves pile accounts onto some hosts; new accounts on the hosts they left
// must still be matched by a deletion somewhere, or the fleet grows with
// every move (it did: 480 accounts an hour at production shape).
func TestPopulationStaysAtItsSizeThroughMovesAndNewAccounts(t *testing.T) {
	f, err := New(Config{Hosts: 5, AccountsPerHost: 2, MaxRecords: 4, MoveDelay: time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 4))
	m := mix{EventMove: 500, EventNewAccount: 500}
	first := map[string]bool{}
	for did := range f.accounts {
		first[did] = true
	}
	for range 400 {
		require.NoError(t, writeMix(ctx, f, rng, m))
	}
	born := 0
	f.hostsMu.RLock()
	for did := range f.accounts {
		if !first[did] {
			born++
		}
	}
	f.hostsMu.RUnlock()
	assert.Greater(t, born, 5, "new accounts replaced old ones")
	assert.Equal(t, 10, f.Stats().Accounts, "the population stays at hosts × accounts per host")
}

// The directory's export log lets go of deleted DIDs' entries in small
// batches, so they never hold a large share of it; the export skips them
// in between and keeps the live ones in order.
func TestPLCDirectoryCompactsDeletedDIDsEarly(t *testing.T) {
	p := plcDirectory{byDID: map[string]*plcRecord{}}
	const n = 8192
	for i := range n {
		did := fmt.Sprintf("did:plc:%024d", i)
		e := &plcEntry{Seq: int64(i + 1), DID: did}
		p.byDID[did] = &plcRecord{entries: []*plcEntry{e}}
		p.log = append(p.log, e)
	}
	worst := 0
	for i := 0; i < n; i += 2 { // every other DID, so dead entries spread through the log
		p.remove(fmt.Sprintf("did:plc:%024d", i))
		worst = max(worst, p.dead)
		require.LessOrEqual(t, p.dead, max(compactMinDead, len(p.log)/16)+1, "after removing DID %d", i)
	}
	assert.Greater(t, worst, compactMinDead/2, "the batches are not one scan per deletion")
	assert.Less(t, len(p.log), n/2+len(p.log)/16+compactMinDead+1, "deleted entries were compacted away")
	got := p.export(0, time.Time{}, n)
	require.Len(t, got, n/2)
	for i, e := range got {
		assert.Equal(t, int64(2*i+2), e.Seq, "export order")
	}
}

func TestPLCAuditLogVerifies(t *testing.T) {
	n := startNet(t, Config{Hosts: 2, AccountsPerHost: 2, MoveDelay: time.Millisecond})
	m := mix{EventKeyRotation: 500, EventMove: 300}
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 60; i++ {
		require.NoError(t, writeMix(ctx, n.fleet, rng, m))
	}
	code, body, _ := n.get(t, "http://plc.test/export?count=1000")
	require.Equal(t, http.StatusOK, code)
	dids := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(body)), "\n") {
		var e struct{ DID string }
		require.NoError(t, json.Unmarshal([]byte(line), &e))
		dids[e.DID] = true
	}
	// Every hosted account is exported (deleted ones stay a while, as on plc.directory).
	require.GreaterOrEqual(t, len(dids), n.fleet.Stats().Accounts)
	rotated := 0
	for did := range dids {
		code, body, _ := n.get(t, "http://plc.test/"+did+"/log/audit")
		require.Equal(t, http.StatusOK, code)
		var entries []struct {
			DID       string          `json:"did"`
			CID       string          `json:"cid"`
			Operation json.RawMessage `json:"operation"`
		}
		require.NoError(t, json.Unmarshal(body, &entries))
		require.NotEmpty(t, entries)
		genesisDID, err := PLCDIDFromGenesis(entries[0].Operation)
		require.NoError(t, err)
		assert.Equal(t, did, genesisDID, "genesis operation must hash to its DID")
		prev := ""
		for i, e := range entries {
			var op struct {
				RotationKeys []string `json:"rotationKeys"`
				Prev         *string  `json:"prev"`
			}
			require.NoError(t, json.Unmarshal(e.Operation, &op))
			require.NoError(t, VerifyPLCOp(e.Operation, op.RotationKeys[0]), "op %d of %s", i, did)
			if i == 0 {
				assert.Nil(t, op.Prev)
			} else {
				require.NotNil(t, op.Prev)
				assert.Equal(t, prev, *op.Prev, "op %d of %s must point at the previous op", i, did)
			}
			prev = e.CID
		}
		if len(entries) > 1 {
			rotated++
		}
	}
	assert.Greater(t, rotated, 0, "some DIDs must have more than their genesis op")

	// paging by seq and by time
	code, body, _ = n.get(t, "http://plc.test/export?count=2")
	require.Equal(t, http.StatusOK, code)
	lines := strings.Split(strings.TrimSpace(string(body)), "\n")
	require.Len(t, lines, 2)
	var second struct {
		Seq       int64     `json:"seq"`
		CreatedAt time.Time `json:"createdAt"`
	}
	require.NoError(t, json.Unmarshal([]byte(lines[1]), &second))
	code, body, _ = n.get(t, fmt.Sprintf("http://plc.test/export?count=1&after=%d", second.Seq))
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, string(body), fmt.Sprintf(`"seq":%d`, second.Seq+1))
	code, _, _ = n.get(t, "http://plc.test/export?after="+url.QueryEscape(second.CreatedAt.Format(time.RFC3339Nano)))
	assert.Equal(t, http.StatusOK, code)
}

func TestBadInputGetsClearErrors(t *testing.T) {
	n := startNet(t, Config{Hosts: 2})
	did := n.fleet.hosts[0].accounts[0].did
	cases := []struct {
		url    string
		status int
		want   string
	}{
		{"http://pds0001.test/xrpc/com.atproto.sync.subscribeRepos?cursor=abc", 400, "cursor must be a non-negative integer"},
		{"http://pds0001.test/xrpc/com.atproto.sync.subscribeRepos?cursor=-5", 400, "cursor must be a non-negative integer"},
		{"http://nosuch.test/xrpc/_health", 404, "no host named"},
		{"http://plc.test/did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", 404, "DID not registered"},
		{"http://plc.test/not-a-did", 400, "not a did:plc"},
		{"http://plc.test/export?count=many", 400, "count must be a positive integer"},
		{"http://plc.test/export?count=0", 400, "count must be a positive integer"},
		{"http://plc.test/export?after=yesterday", 400, "after must be an RFC 3339 timestamp"},
		{"http://pds0001.test/xrpc/com.atproto.sync.getRepoStatus", 400, "did is required"},
		{"http://pds0001.test/xrpc/com.atproto.sync.getRepoStatus?did=bogus", 400, "not a valid DID"},
		{"http://pds0002.test/xrpc/com.atproto.sync.getRepoStatus?did=" + did, 404, "RepoNotFound"},
		{"http://pds0001.test/xrpc/com.atproto.sync.listRepos?limit=x", 400, "limit must be"},
		{"http://relay.test/xrpc/com.atproto.sync.listHosts?cursor=x", 400, "cursor must be"},
	}
	for _, c := range cases {
		code, body, hdr := n.get(t, c.url)
		assert.Equal(t, c.status, code, c.url)
		assert.Contains(t, string(body), c.want, c.url)
		assert.Equal(t, "application/json", hdr.Get("Content-Type"), c.url)
		var e map[string]string
		assert.NoError(t, json.Unmarshal(body, &e), c.url)
		assert.NotEmpty(t, e["message"], c.url)
	}
}

// A quiet host's frames leave its tail once older than TailAge, its
// newest too, so tails do not fill as more hosts write; without a spool, a
// cursor from before them is then past the history, and says how far.
func TestQuietHostsLetGoOfOldFrames(t *testing.T) {
	f, err := New(Config{Hosts: 2, AccountsPerHost: 1, TailAge: 50 * time.Millisecond, History: -1})
	require.NoError(t, err)
	defer f.Close()
	quiet, busy := f.hosts[0], f.hosts[1]
	frame := func(int64, time.Time) ([]byte, error) { return []byte("frame"), nil }
	var seqs []int64
	for i := 0; i < 3; i++ {
		seq, err := quiet.publish(true, frame)
		require.NoError(t, err)
		seqs = append(seqs, seq)
	}
	time.Sleep(80 * time.Millisecond)
	_, err = busy.publish(true, frame)
	require.NoError(t, err)
	require.Equal(t, 3, quiet.tailLen, "publishing elsewhere does not touch the quiet host")

	f.expireHistories(time.Now().UnixNano())
	assert.Equal(t, 0, quiet.tailLen, "every frame of the quiet host is past TailAge")
	assert.Equal(t, 1, busy.tailLen, "the busy host's fresh frame stays")

	_, st, err := quiet.subscribe(seqs[0], true, 8, 0)
	require.NoError(t, err)
	assert.Empty(t, st.backlog)
	assert.True(t, st.outdated)
	assert.EqualValues(t, 2, st.skipped, "the second and third frames are gone")
	_, st, err = quiet.subscribe(seqs[2], true, 8, 0)
	require.NoError(t, err)
	assert.False(t, st.outdated, "a cursor at the head misses nothing")
}
