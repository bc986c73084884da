package fakepds

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/repo"
	"github.com/bluesky-social/indigo/atproto/repo/mst"
	"github.com/bluesky-social/indigo/atproto/syntax"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	blockstore "github.com/ipfs/go-ipfs-blockstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Young repositories are where the MST's top changes height: a key at a
// raised height is created and deleted while the tree is small. Every
// commit must still invert to its prevData under indigo's own check (a
// non-canonical root once failed about one commit in 50,000 at the relay).
func TestYoungRepositoriesInvertExactly(t *testing.T) {
	f, err := New(Config{Hosts: 1, AccountsPerHost: 1})
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(11, 12))
	ctx := context.Background()
	failed, total := 0, 0
	for k := 0; k < 4000; k++ {
		a, err := f.createAccount(0)
		require.NoError(t, err)
		for i := 0; i < 12; i++ {
			if i == 0 || rng.IntN(5) == 0 {
				_, err := a.syncEvent()
				require.NoError(t, err)
			}
			evt, err := a.commit(a.nextOps(1, rng, 4), commitOptions{}, new(commitScratch))
			require.NoError(t, err)
			evt.Time = wireTime(time.Now())
			total++
			if _, err := repo.VerifyCommitMessage(ctx, evt); err != nil {
				failed++
				t.Logf("%s: %v", a.did, err)
			}
		}
	}
	assert.Zero(t, failed, "of %d commits", total)
}

// The fleet encodes a commit's MST nodes itself (commitScratch.writeNodes)
// to reuse its buffers; the blocks and root must be the library's, byte
// for byte, or a relay's inversion check fails. Two trees get the same
// writes; one is written by indigo's WriteDiffBlocks, the other by the
// fleet, one scratch reused throughout as in a run.
func TestNodeBlocksMatchTheLibrary(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 4))
	lib, ours := mst.NewEmptyTree(), mst.NewEmptyTree()
	sc := new(commitScratch)
	var keys []string
	nodes := 0
	for step := 0; step < 3000; step++ {
		var key string
		var val *cid.Cid
		if len(keys) > 0 && rng.IntN(3) == 0 {
			i := rng.IntN(len(keys))
			key = keys[i]
			keys = append(keys[:i], keys[i+1:]...)
		} else {
			key = fmt.Sprintf("app.bsky.feed.like/%013d", rng.Int64N(1e12))
			keys = append(keys, key)
			c, err := cidOfCBOR([]byte(key))
			require.NoError(t, err)
			val = &c
		}
		for _, tr := range []*mst.Tree{&lib, &ours} {
			_, err := repo.ApplyOp(tr, key, val)
			require.NoError(t, err, "step %d: %s", step, key)
			canonicalRoot(tr)
		}
		bs := newCountingStore()
		want, err := lib.WriteDiffBlocks(ctx, bs)
		require.NoError(t, err)
		sc.reset()
		got, err := sc.writeNodes(ours.Root, false)
		require.NoError(t, err)
		require.Equal(t, want.String(), got.String(), "root after step %d", step)
		require.Len(t, sc.nodes, bs.puts, "diff blocks after step %d", step)
		for _, b := range sc.nodes {
			lb, err := bs.Get(ctx, b.cid)
			require.NoError(t, err, "step %d: block %s is not in the library's diff", step, b.cid)
			require.Equal(t, lb.RawData(), b.data)
			want, err := cidOfCBOR(b.data)
			require.NoError(t, err)
			require.Equal(t, want, b.cid, "a node's CID is its bytes' hash")
		}
		nodes += len(sc.nodes)
	}
	assert.Greater(t, nodes, 3000, "commits changed nodes")

	// All nodes, as a whole repository's CAR carries them.
	all := mst.NewEmptyTree()
	for _, k := range keys {
		c, _ := cidOfCBOR([]byte(k))
		_, err := repo.ApplyOp(&all, k, &c)
		require.NoError(t, err)
	}
	bs := newCountingStore()
	want, err := all.WriteDiffBlocks(ctx, bs)
	require.NoError(t, err)
	sc.reset()
	got, err := sc.writeNodes(all.Root, true)
	require.NoError(t, err)
	assert.Equal(t, want.String(), got.String())
	assert.Len(t, sc.nodes, bs.puts)
}

// countingStore is an in-memory blockstore that counts the blocks the
// library writes.
type countingStore struct {
	blockstore.Blockstore
	puts int
}

func newCountingStore() *countingStore {
	return &countingStore{Blockstore: blockstore.NewBlockstore(dssync.MutexWrap(datastore.NewMapDatastore()))}
}

func (c *countingStore) Put(ctx context.Context, b blocks.Block) error {
	c.puts++
	return c.Blockstore.Put(ctx, b)
}

// A record is kept as its collection and TID: the path comes back exactly,
// and a path whose key is not a TID is refused by name.
func TestRecordRefsRoundTrip(t *testing.T) {
	clock := syntax.NewTIDClock(0)
	for _, coll := range []string{"app.bsky.feed.like", "app.bsky.graph.follow", "com.example.x"} {
		p := coll + "/" + clock.Next().String()
		r, err := parseRecordPath(p)
		require.NoError(t, err)
		assert.Equal(t, p, r.path())
	}
	a, err := parseRecordPath("app.bsky.feed.like/3lbbbbbbbbbb2")
	require.NoError(t, err)
	b, err := parseRecordPath("app.bsky.feed.like/3lbbbbbbbbbb2")
	require.NoError(t, err)
	assert.Same(t, a.coll, b.coll, "one collection, one interned name")
	for _, bad := range []string{"app.bsky.feed.like/self", "nocollection", "/3lbbbbbbbbbb2", "app.bsky.feed.like/zzzzzzzzzzzzz"} {
		_, err := parseRecordPath(bad)
		assert.ErrorContains(t, err, bad)
	}
}

// A full repository deletes its oldest record, the one with the smallest
// TID whatever its collection, as it creates the next, on both op mixes.
func TestFullRepositoriesDeleteTheirOldestRecord(t *testing.T) {
	f, err := New(Config{Hosts: 1, AccountsPerHost: 2, MaxRecords: 6, Shape: &Shape{}})
	require.NoError(t, err)
	var accts []*account
	for _, a := range f.accounts {
		accts = append(accts, a)
	}
	tidOf := func(p string) string { return p[strings.LastIndexByte(p, '/')+1:] }
	for name, next := range map[string]func(*account, *rand.Rand) []writeOp{
		"shaped": f.nextOps,
		"plain":  func(a *account, rng *rand.Rand) []writeOp { return a.nextOps(f.cfg.Seed, rng, 6) },
	} {
		a := accts[0]
		accts = accts[1:]
		rng := rand.New(rand.NewPCG(1, 2))
		bounded := 0
		for i := 0; i < 400; i++ {
			before := a.recordPaths()
			ops := next(a, rng)
			if len(ops) == 2 && ops[1].action == "delete" {
				require.Equal(t, "create", ops[0].action)
				oldest := before[0]
				for _, p := range before {
					if tidOf(p) < tidOf(oldest) {
						oldest = p
					}
				}
				assert.Equal(t, oldest, ops[1].path, "%s: step %d deletes the oldest record", name, i)
				bounded++
			}
			for _, op := range ops {
				_, _, err := a.apply(op)
				require.NoError(t, err)
			}
			paths := a.recordPaths()
			require.LessOrEqual(t, len(paths), 6, "%s: step %d", name, i)
			count := 0
			require.NoError(t, a.tree.Walk(func([]byte, cid.Cid) error { count++; return nil }))
			require.Equal(t, len(paths)+btoi(a.profile != nil), count, "%s: step %d: the list is the tree's records", name, i)
		}
		assert.Greater(t, bounded, 300, "%s: most commits of a full repository also delete", name)
	}
}
