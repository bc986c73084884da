package firehose

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/repo"
	"github.com/bluesky-social/indigo/atproto/repo/mst"
	"github.com/bluesky-social/indigo/atproto/syntax"
	lexutil "github.com/bluesky-social/indigo/lex/util"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	car "github.com/ipld/go-car"
	carutil "github.com/ipld/go-car/util"
	mh "github.com/multiformats/go-multihash"
	"github.com/stretchr/testify/require"
)

// testAccount writes real, signed commits for one account: the firehose
// consumer is tested against genuine data, not a mock of it. (The fleet in
// package fakepds does the same at scale; this is the smallest version that
// the consumer's verification accepts.)
type testAccount struct {
	did   string
	key   *atcrypto.PrivateKeyK256
	tree  mst.Tree
	clock *syntax.TIDClock
	rev   string
	root  *cid.Cid
	n     int
}

func newTestAccount(t *testing.T, did string) *testAccount {
	key, err := atcrypto.GeneratePrivateKeyK256()
	require.NoError(t, err)
	clk := syntax.NewTIDClock(0)
	return &testAccount{did: did, key: key, tree: mst.NewEmptyTree(), clock: clk}
}

func (a *testAccount) identity(t *testing.T) identity.Identity {
	pub, err := a.key.PublicKey()
	require.NoError(t, err)
	return identity.Identity{
		DID:  syntax.DID(a.did),
		Keys: map[string]identity.VerificationMethod{"atproto": {Type: "Multikey", PublicKeyMultibase: pub.Multibase()}},
	}
}

// recordingStore keeps every block put, in order, for the CAR slice.
type recordingStore struct {
	m     map[cid.Cid]blocks.Block
	order []cid.Cid
}

func (s *recordingStore) Put(_ context.Context, b blocks.Block) error {
	if _, ok := s.m[b.Cid()]; !ok {
		s.order = append(s.order, b.Cid())
	}
	s.m[b.Cid()] = b
	return nil
}
func (s *recordingStore) PutMany(ctx context.Context, bs []blocks.Block) error {
	for _, b := range bs {
		_ = s.Put(ctx, b)
	}
	return nil
}
func (s *recordingStore) Get(_ context.Context, c cid.Cid) (blocks.Block, error) {
	if b, ok := s.m[c]; ok {
		return b, nil
	}
	return nil, &ipld.ErrNotFound{Cid: c}
}
func (s *recordingStore) Has(_ context.Context, c cid.Cid) (bool, error) {
	_, ok := s.m[c]
	return ok, nil
}
func (s *recordingStore) GetSize(_ context.Context, c cid.Cid) (int, error) {
	if b, ok := s.m[c]; ok {
		return len(b.RawData()), nil
	}
	return 0, &ipld.ErrNotFound{Cid: c}
}
func (s *recordingStore) DeleteBlock(_ context.Context, c cid.Cid) error { delete(s.m, c); return nil }
func (s *recordingStore) AllKeysChan(context.Context) (<-chan cid.Cid, error) {
	ch := make(chan cid.Cid)
	close(ch)
	return ch, nil
}
func (s *recordingStore) HashOnRead(bool) {}

var cborPrefix = cid.NewPrefixV1(cid.DagCBOR, mh.SHA2_256)

// commit creates one record and returns the commit event. signWith, when
// not nil, signs with another key (a commit that must fail verification).
func (a *testAccount) commit(t *testing.T, seq int64, emitted time.Time, signWith *atcrypto.PrivateKeyK256) *comatproto.SyncSubscribeRepos_Commit {
	ctx := context.Background()
	bs := &recordingStore{m: map[cid.Cid]blocks.Block{}}
	a.n++
	// A DAG-CBOR map {"text": "post N"} (short text: one-byte string header).
	text := fmt.Sprintf("post %d", a.n)
	rec := append([]byte{0xa1, 0x64, 't', 'e', 'x', 't', byte(0x60 + len(text))}, text...)
	recCID, err := cborPrefix.Sum(rec)
	require.NoError(t, err)
	recBlock, err := blocks.NewBlockWithCid(rec, recCID)
	require.NoError(t, err)
	require.NoError(t, bs.Put(ctx, recBlock))

	path := fmt.Sprintf("app.bsky.feed.post/%s", a.clock.Next().String())
	_, err = repo.ApplyOp(&a.tree, path, &recCID)
	require.NoError(t, err)
	root, err := a.tree.WriteDiffBlocks(ctx, bs)
	require.NoError(t, err)

	rev := a.clock.Next().String()
	c := repo.Commit{DID: a.did, Version: repo.ATPROTO_REPO_VERSION, Data: *root, Rev: rev}
	key := a.key
	if signWith != nil {
		key = signWith
	}
	require.NoError(t, c.Sign(key))
	var cb bytes.Buffer
	require.NoError(t, c.MarshalCBOR(&cb))
	commitCID, err := cborPrefix.Sum(cb.Bytes())
	require.NoError(t, err)

	var carBuf bytes.Buffer
	require.NoError(t, car.WriteHeader(&car.CarHeader{Roots: []cid.Cid{commitCID}, Version: 1}, &carBuf))
	require.NoError(t, carutil.LdWrite(&carBuf, commitCID.Bytes(), cb.Bytes()))
	for _, k := range bs.order {
		require.NoError(t, carutil.LdWrite(&carBuf, k.Bytes(), bs.m[k].RawData()))
	}

	evt := &comatproto.SyncSubscribeRepos_Commit{
		Seq: seq, Repo: a.did, Rev: rev, Commit: lexutil.LexLink(commitCID),
		Blocks: lexutil.LexBytes(carBuf.Bytes()), Blobs: []lexutil.LexLink{},
		Ops:  []*comatproto.SyncSubscribeRepos_RepoOp{{Action: "create", Path: path, Cid: (*lexutil.LexLink)(&recCID)}},
		Time: emitted.UTC().Format("2006-01-02T15:04:05.000Z"),
	}
	if a.root != nil {
		pd := lexutil.LexLink(*a.root)
		evt.PrevData = &pd
		since := a.rev
		evt.Since = &since
	}
	a.root, a.rev = root, rev
	return evt
}
