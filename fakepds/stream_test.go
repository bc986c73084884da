package fakepds

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/repo"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writeN writes n commits (no churn) on host 0's accounts.
func writeN(t testing.TB, f *Fleet, host, n int) {
	t.Helper()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(9, 9))
	for i := 0; i < n; i++ {
		a := f.hosts[host].accounts[i%len(f.hosts[host].accounts)]
		_, err := f.writeCommit(ctx, a, rng, commitOptions{})
		require.NoError(t, err)
	}
}

func TestCursorReplayFutureAndOutdated(t *testing.T) {
	n := startNet(t, Config{Hosts: 1, AccountsPerHost: 2, TailFrames: 8, History: -1})
	h := n.fleet.hosts[0]
	writeN(t, n.fleet, 0, 5) // 2 syncs + 5 commits = 7 frames
	head := h.headSeq()

	// A cursor inside the history replays what follows it, then goes live.
	s := n.subscribe(t, h.name, fmt.Sprintf("?cursor=%d", head-3))
	for want := head - 2; want <= head; want++ {
		assert.Equal(t, want, next(t, s).seq)
	}
	writeN(t, n.fleet, 0, 1)
	assert.Equal(t, head+1, next(t, s).seq, "live frames follow the replay")

	// A cursor ahead of the head gets the FutureCursor error frame.
	s = n.subscribe(t, h.name, fmt.Sprintf("?cursor=%d", head+100))
	ev := next(t, s)
	require.NotNil(t, ev.errf)
	assert.Equal(t, "FutureCursor", ev.errf.Error)

	// A cursor older than the history gets #info OutdatedCursor, then the
	// oldest frames held, then live.
	writeN(t, n.fleet, 0, 20)
	head = h.headSeq()
	assert.Zero(t, n.fleet.Stats().PastHistory, "cursors within the history skip nothing")
	s = n.subscribe(t, h.name, fmt.Sprintf("?cursor=%d", head-12))
	ev = next(t, s)
	require.NotNil(t, ev.info, "first frame must be #info")
	assert.Equal(t, "OutdatedCursor", ev.info.Name)
	first := next(t, s).seq
	assert.Equal(t, head-7, first, "history holds the last 8 frames")
	assert.EqualValues(t, 4, n.fleet.Stats().PastHistory, "frames after the cursor and before the history: never offered")
	for want := first + 1; want <= head; want++ {
		assert.Equal(t, want, next(t, s).seq)
	}

	// A cursor from before this fleet's first frame counts only the frames
	// it did send: 28 so far, the last 8 still held.
	s = n.subscribe(t, h.name, "?cursor=1")
	require.NotNil(t, next(t, s).info)
	assert.EqualValues(t, 4+20, n.fleet.Stats().PastHistory)
}

func TestSlowConsumerIsCutAndMemoryStaysBounded(t *testing.T) {
	n := startNet(t, Config{Hosts: 1, AccountsPerHost: 4, SendQueue: 16, TailFrames: 32, MaxRecords: 10})
	h := n.fleet.hosts[0]
	// A consumer that connects and never reads.
	conn, _, err := n.dialer.Dial("ws://"+h.name+"/xrpc/com.atproto.sync.subscribeRepos", nil)
	require.NoError(t, err)
	defer conn.Close()
	require.Eventually(t, func() bool { return h.subscriberCount() == 1 }, 2*time.Second, 10*time.Millisecond)

	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	writeN(t, n.fleet, 0, 200)
	before := heap()
	writeN(t, n.fleet, 0, 3000)
	after := heap()
	assert.Equal(t, 0, h.subscriberCount(), "the stuck consumer must be dropped")
	// 3,000 frames of ~1 KB went by; a fleet that buffered them would have
	// grown by megabytes.
	assert.Less(t, int64(after)-int64(before), int64(1<<20), "heap grew from %d to %d bytes", before, after)

	// Once it reads, it finds the ConsumerTooSlow error frame before the close.
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	var last []byte
	for {
		_, b, err := conn.ReadMessage()
		if err != nil {
			break
		}
		last = b
	}
	require.NotNil(t, last)
	ev := decode(t, last)
	require.NotNil(t, ev.errf, "last frame must be an error frame")
	assert.Equal(t, "ConsumerTooSlow", ev.errf.Error)
	assert.Equal(t, uint64(1), n.fleet.Stats().SlowConsumersCut)
}

func TestRestartWithStateDirContinues(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Hosts: 2, AccountsPerHost: 2, StateDir: dir}
	m := mix{EventKeyRotation: 100, EventNewAccount: 50}
	n1 := startNet(t, cfg)
	rng := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 100; i++ {
		require.NoError(t, writeMix(context.Background(), n1.fleet, rng, m))
	}
	heads := map[string]int64{}
	for _, h := range n1.fleet.hosts {
		heads[h.name] = h.headSeq()
	}
	type snap struct{ rev, data, key string }
	before := map[string]snap{}
	for did, a := range n1.fleet.accounts {
		before[did] = snap{a.rev, a.dataCID.String(), a.signing.Multibase()}
	}
	require.NoError(t, n1.fleet.Close())

	n2 := startNet(t, cfg)
	require.Len(t, n2.fleet.accounts, len(before))
	for did, b := range before {
		a := n2.fleet.accounts[did]
		require.NotNil(t, a, did)
		assert.Equal(t, b, snap{a.rev, a.dataCID.String(), a.signing.Multibase()}, did)
		assert.False(t, a.needSync, "a clean restart continues without #sync")
	}
	h := n2.fleet.hosts[0]
	s := n2.subscribe(t, h.name, fmt.Sprintf("?cursor=%d", heads[h.name]))
	writeN(t, n2.fleet, 0, 2)
	ev := next(t, s)
	assert.Equal(t, heads[h.name]+1, ev.seq, "seq continues where it stopped")
	require.Equal(t, "#commit", ev.kind)
	verifyCommit(t, n2.directory(), ev.commit) // prevData is the saved repository's root
	assert.Greater(t, ev.commit.Rev, before[ev.commit.Repo].rev)
}

// A state file whose PLC operation cannot be read is refused by name, not
// restored into a directory that cannot resolve the account.
func TestRestartRefusesACorruptPLCOperation(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Hosts: 1, AccountsPerHost: 1, StateDir: dir}
	f, err := New(cfg)
	require.NoError(t, err)
	did := f.hosts[0].accounts[0].did
	require.NoError(t, f.Close())
	path := filepath.Join(dir, stateFile)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	b = regexp.MustCompile(`"operation":\{"type"`).ReplaceAll(b, []byte(`"operation":{"type":7,"x"`))
	require.Equal(t, 1, bytes.Count(b, []byte(`"type":7`)), "the state file has one PLC operation")
	require.NoError(t, os.WriteFile(path, b, 0o644))
	_, err = New(cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), path)
	assert.Contains(t, err.Error(), did)
}

func TestRestartWithoutStateNeverReusesSeqAndSyncsFirst(t *testing.T) {
	cfg := Config{Hosts: 1, AccountsPerHost: 2}
	n1 := startNet(t, cfg)
	writeN(t, n1.fleet, 0, 10)
	head := n1.fleet.hosts[0].headSeq()
	require.NoError(t, n1.fleet.Close())

	n2 := startNet(t, cfg)
	s := n2.subscribe(t, "pds0001.test", "")
	writeN(t, n2.fleet, 0, 2)
	ev := next(t, s)
	assert.Greater(t, ev.seq, head, "a restarted fleet must not reuse a seq")
	require.Equal(t, "#sync", ev.kind, "each account begins with #sync")
	_, err := repo.VerifySyncMessage(context.Background(), n2.directory(), ev.sync)
	require.NoError(t, err)
	ev = next(t, s)
	require.Equal(t, "#commit", ev.kind)
	verifyCommit(t, n2.directory(), ev.commit)
}

func TestPDSXRPC(t *testing.T) {
	n := startNet(t, Config{Hosts: 3, AccountsPerHost: 5})
	writeN(t, n.fleet, 0, 60)
	code, body, hdr := n.get(t, "http://pds0001.test/xrpc/com.atproto.server.describeServer")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, string(body), `"did":"did:web:pds0001.test"`)
	assert.NotContains(t, hdr.Get("Server"), "atproto-relay")
	code, _, _ = n.get(t, "http://pds0001.test/xrpc/_health")
	assert.Equal(t, http.StatusOK, code)

	// listRepos pages through every account, each once.
	var all []string
	cursor := ""
	for page := 0; page < 10; page++ {
		code, body, _ := n.get(t, "http://pds0001.test/xrpc/com.atproto.sync.listRepos?limit=2&cursor="+cursor)
		require.Equal(t, http.StatusOK, code)
		var out struct {
			Cursor string
			Repos  []struct{ DID, Head, Rev string }
		}
		require.NoError(t, json.Unmarshal(body, &out))
		for _, r := range out.Repos {
			all = append(all, r.DID)
			assert.NotEmpty(t, r.Head)
		}
		if out.Cursor == "" {
			break
		}
		cursor = out.Cursor
	}
	assert.Len(t, all, 5)

	a := n.fleet.hosts[0].accounts[0]
	code, body, _ = n.get(t, "http://pds0001.test/xrpc/com.atproto.sync.getLatestCommit?did="+a.did)
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, string(body), a.commitCID.String())
	code, body, _ = n.get(t, "http://pds0001.test/xrpc/com.atproto.sync.getRepoStatus?did="+a.did)
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, string(body), `"active":true`)

	// getRepo is a CAR of the whole repository: it loads, and its records
	// are the ones the account holds.
	code, body, hdr = n.get(t, "http://pds0001.test/xrpc/com.atproto.sync.getRepo?did="+a.did)
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, "application/vnd.ipld.car", hdr.Get("Content-Type"))
	commit, r, err := repo.LoadRepoFromCAR(context.Background(), bytes.NewReader(body))
	require.NoError(t, err)
	assert.Equal(t, a.rev, commit.Rev)
	pub, err := a.signing.PublicKey()
	require.NoError(t, err)
	require.NoError(t, commit.VerifySignature(pub))
	count := 0
	require.NoError(t, r.MST.Walk(func(k []byte, v cid.Cid) error { count++; return nil }))
	paths := a.recordPaths()
	assert.Equal(t, len(paths)+btoi(a.profile != nil), count)
	for _, p := range paths {
		nsid, rkey, err := syntax.ParseRepoPath(p)
		require.NoError(t, err)
		_, _, err = r.GetRecordBytes(context.Background(), nsid, rkey)
		assert.NoError(t, err, p)
	}

	// The upstream face lists every host, paged.
	var hosts []string
	cursor = ""
	for {
		code, body, _ := n.get(t, "http://relay.test/xrpc/com.atproto.sync.listHosts?limit=2&cursor="+cursor)
		require.Equal(t, http.StatusOK, code)
		var out struct {
			Cursor string
			Hosts  []struct {
				Hostname     string
				Seq          int64
				AccountCount int64
				Status       string
			}
		}
		require.NoError(t, json.Unmarshal(body, &out))
		for _, h := range out.Hosts {
			hosts = append(hosts, h.Hostname)
			assert.Equal(t, "active", h.Status)
			assert.EqualValues(t, 5, h.AccountCount)
			assert.Positive(t, h.Seq)
		}
		if out.Cursor == "" {
			break
		}
		cursor = out.Cursor
	}
	assert.Equal(t, n.fleet.HostNames(), hosts)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestPLCFaultSettings(t *testing.T) {
	n := startNet(t, Config{Hosts: 1, PLC: PLCBehaviour{ErrorRate: 0.5, Latency: 20 * time.Millisecond}})
	did := n.fleet.hosts[0].accounts[0].did
	fails := 0
	start := time.Now()
	for i := 0; i < 40; i++ {
		code, _, _ := n.get(t, "http://plc.test/"+did)
		if code == http.StatusInternalServerError {
			fails++
		} else {
			require.Equal(t, http.StatusOK, code)
		}
	}
	assert.GreaterOrEqual(t, time.Since(start), 40*20*time.Millisecond)
	assert.InDelta(t, 20, fails, 12)
	st := n.fleet.Stats()
	assert.EqualValues(t, 40, st.PLCRequests)
	assert.EqualValues(t, fails, st.PLCErrors)
}

func TestManyHostsStartQuickly(t *testing.T) {
	f, err := New(Config{Hosts: 20000, AccountsPerHost: 1})
	require.NoError(t, err)
	defer f.Close()
	assert.Len(t, f.HostNames(), 20000)
	assert.Equal(t, "pds20000.test", f.HostNames()[19999])
}

// A move is a migration: the old host deactivates the account, and a few
// seconds later the new host announces it and carries its commits.
func TestMoveLeavesThenArrives(t *testing.T) {
	n := startNet(t, Config{Hosts: 2, AccountsPerHost: 1, MoveDelay: 200 * time.Millisecond})
	writeN(t, n.fleet, 0, 1)
	writeN(t, n.fleet, 1, 1)
	subs := []*sub{n.subscribe(t, "pds0001.test", ""), n.subscribe(t, "pds0002.test", "")}
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 1))
	_, err := n.fleet.Perform(ctx, EventMove, 0, rng) // whichever account it picks, to the other host
	require.NoError(t, err)
	// Which account left, and from where: the first #account frame says.
	var did string
	var from int
	var b []byte
	select {
	case b = <-subs[0].ch:
		from = 0
	case b = <-subs[1].ch:
		from = 1
	case <-time.After(time.Second):
	}
	if b != nil {
		ev := decode(t, b)
		require.Equal(t, "#account", ev.kind)
		assert.False(t, ev.acct.Active)
		did = ev.acct.Did
	}
	require.NotEmpty(t, did, "the old host deactivates the account first")
	to := 1 - from
	ev := next(t, subs[to])
	require.Equal(t, "#identity", ev.kind)
	assert.Equal(t, did, ev.ident.Did)
	ev = next(t, subs[to])
	require.Equal(t, "#account", ev.kind)
	assert.True(t, ev.acct.Active)
	ident, err := n.directory().LookupDID(ctx, syntax.DID(did))
	require.NoError(t, err)
	assert.Equal(t, "http://"+n.fleet.HostNames()[to], ident.PDSEndpoint())
	writeN(t, n.fleet, to, 2) // both accounts on the new host now
	for i := 0; i < 2; i++ {
		ev = next(t, subs[to])
		require.Equal(t, "#commit", ev.kind)
		verifyCommit(t, n.directory(), ev.commit)
	}
}
