package crowd

import (
	"bytes"
	"fmt"
	"testing"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/events"
	lexutil "github.com/bluesky-social/indigo/lex/util"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	cbg "github.com/whyrusleeping/cbor-gen"
)

func encode(t testing.TB, hdr events.EventHeader, body cbg.CBORMarshaler) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, hdr.MarshalCBOR(&buf))
	require.NoError(t, body.MarshalCBOR(&buf))
	return buf.Bytes()
}

// bigCommit is a commit as large as relays pass on: 200 ops ahead of its
// seq, a megabyte of blocks after it.
func bigCommit(t testing.TB, seq int64) []byte {
	t.Helper()
	c, err := cid.Prefix{Version: 1, Codec: cid.DagCBOR, MhType: multihash.SHA2_256, MhLength: -1}.Sum([]byte("x"))
	require.NoError(t, err)
	link := lexutil.LexLink(c)
	var ops []*comatproto.SyncSubscribeRepos_RepoOp
	for i := range 200 {
		ops = append(ops, &comatproto.SyncSubscribeRepos_RepoOp{Action: "create", Path: fmt.Sprintf("app.bsky.feed.post/3kabcdefghij%03d", i), Cid: &link})
	}
	since := "3kabcdefghijk"
	return encode(t, events.EventHeader{Op: events.EvtKindMessage, MsgType: "#commit"}, &comatproto.SyncSubscribeRepos_Commit{
		Seq: seq, Repo: "did:plc:abcdefghijklmnopqrstuvwx", Rev: "3kabcdefghijl", Since: &since,
		Time: "2026-11-28T00:00:00.000Z", Commit: link, Ops: ops, Blocks: make([]byte, 1<<20), Blobs: []lexutil.LexLink{},
	})
}

func TestScanFrameFindsSeqWithinThePrefix(t *testing.T) {
	frame := bigCommit(t, 1<<40+7)
	op, seq, ok := scanFrame(frame[:32<<10])
	require.True(t, ok, "the seq of a 200-op commit lies within the default prefix")
	assert.EqualValues(t, 1, op)
	assert.EqualValues(t, 1<<40+7, seq)

	op, seq, ok = scanFrame(frame)
	require.True(t, ok)
	assert.EqualValues(t, 1, op)
	assert.EqualValues(t, 1<<40+7, seq)

	ident := encode(t, events.EventHeader{Op: events.EvtKindMessage, MsgType: "#identity"},
		&comatproto.SyncSubscribeRepos_Identity{Did: "did:plc:x", Seq: 42, Time: "2026-11-28T00:00:00.000Z"})
	_, seq, ok = scanFrame(ident)
	require.True(t, ok)
	assert.EqualValues(t, 42, seq)
}

func TestScanFrameErrorAndInfoFramesHaveNoSeq(t *testing.T) {
	errf := encode(t, events.EventHeader{Op: events.EvtKindErrorFrame}, &events.ErrorFrame{Error: "ConsumerTooSlow", Message: "behind"})
	op, _, ok := scanFrame(errf)
	assert.False(t, ok)
	assert.EqualValues(t, -1, op, "an error frame's op is -1")

	msg := "old"
	info := encode(t, events.EventHeader{Op: events.EvtKindMessage, MsgType: "#info"}, &comatproto.SyncSubscribeRepos_Info{Name: "OutdatedCursor", Message: &msg})
	op, _, ok = scanFrame(info)
	assert.False(t, ok)
	assert.EqualValues(t, 1, op)
}

// Every truncation and every single-byte corruption of a frame is answered
// without a panic or a read past the end.
func TestScanFrameSurvivesTruncationAndCorruption(t *testing.T) {
	frame := bigCommit(t, 99)[:40<<10]
	for n := range 2048 {
		scanFrame(frame[:n])
	}
	small := encode(t, events.EventHeader{Op: events.EvtKindMessage, MsgType: "#identity"},
		&comatproto.SyncSubscribeRepos_Identity{Did: "did:plc:x", Seq: 42, Time: "2026-11-28T00:00:00.000Z"})
	for i := range small {
		for _, v := range []byte{0x00, 0x1f, 0x5b, 0x7f, 0x9b, 0xbb, 0xdb, 0xff} {
			b := bytes.Clone(small)
			b[i] = v
			scanFrame(b)
		}
	}
	_, _, ok := scanFrame(nil)
	assert.False(t, ok)
}

func BenchmarkScanFrame(b *testing.B) {
	frame := bigCommit(b, 1<<40)[:32<<10]
	b.ReportAllocs()
	for b.Loop() {
		scanFrame(frame)
	}
}
