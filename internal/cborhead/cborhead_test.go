package cborhead

import (
	"bytes"
	"io"
	"testing"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/events"
	lexutil "github.com/bluesky-social/indigo/lex/util"
	"github.com/ipfs/go-cid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// encode writes a header and body as a relay sends them, with indigo's
// own encoders.
func encode(t testing.TB, hdr events.EventHeader, body interface{ MarshalCBOR(io.Writer) error }) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, hdr.MarshalCBOR(&b))
	require.NoError(t, body.MarshalCBOR(&b))
	return b.Bytes()
}

var testCID = func() cid.Cid {
	c, err := cid.Decode("bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm")
	if err != nil {
		panic(err)
	}
	return c
}()

// commitFrame is a #commit with blocks of n bytes and the given seq.
func commitFrame(t testing.TB, seq int64, n int, prevData bool) []byte {
	c := &comatproto.SyncSubscribeRepos_Commit{
		Repo: "did:plc:abcdefghijklmnopqrstuvwx", Rev: "3lbq7yq4zsc2a", Seq: seq,
		Time: "2026-11-28T03:00:00.123Z", Blocks: lexutil.LexBytes(bytes.Repeat([]byte{0xa5}, n)),
		Ops:   []*comatproto.SyncSubscribeRepos_RepoOp{{Action: "create", Path: "app.bsky.feed.post/3lbq7yq4zsc2a"}},
		Blobs: []lexutil.LexLink{}, Commit: lexutil.LexLink(testCID),
	}
	if prevData {
		l := lexutil.LexLink(testCID)
		c.PrevData = &l
	}
	return encode(t, events.EventHeader{Op: events.EvtKindMessage, MsgType: "#commit"}, c)
}

func sampleFrames(t testing.TB) map[string][]byte {
	msg := "the message"
	return map[string][]byte{
		"commit":        commitFrame(t, 5_000_000_123, 1500, true),
		"commit, first": commitFrame(t, 7, 300, false),
		"identity":      encode(t, events.EventHeader{Op: events.EvtKindMessage, MsgType: "#identity"}, &comatproto.SyncSubscribeRepos_Identity{Did: "did:plc:zzzzzzzzzzzzzzzzzzzzzzzz", Seq: 1 << 40, Time: "2026-11-28T03:00:01Z"}),
		"account":       encode(t, events.EventHeader{Op: events.EvtKindMessage, MsgType: "#account"}, &comatproto.SyncSubscribeRepos_Account{Did: "did:plc:yyyyyyyyyyyyyyyyyyyyyyyy", Seq: 24, Time: "2026-11-28T03:00:02Z", Active: true}),
		"info":          encode(t, events.EventHeader{Op: events.EvtKindMessage, MsgType: "#info"}, &comatproto.SyncSubscribeRepos_Info{Name: "OutdatedCursor", Message: &msg}),
		"error":         encode(t, events.EventHeader{Op: events.EvtKindErrorFrame}, &events.ErrorFrame{Error: "ConsumerTooSlow", Message: msg}),
	}
}

// checkAgainstIndigo decodes frame with indigo and checks that Peek finds
// the same kind, seq, account, time and prevData.
func checkAgainstIndigo(t *testing.T, frame []byte) {
	var evt events.XRPCStreamEvent
	if err := evt.Deserialize(bytes.NewReader(frame)); err != nil {
		return // not a frame indigo reads: Peek must only not panic
	}
	if evt.Error == nil && evt.RepoCommit == nil && evt.RepoSync == nil && evt.RepoIdentity == nil && evt.RepoAccount == nil && evt.RepoInfo == nil {
		return // a kind indigo skips without reading its body
	}
	fr, err := Peek(frame)
	require.NoError(t, err, "indigo reads the frame, so must Peek")
	switch {
	case evt.Error != nil:
		assert.Equal(t, int64(-1), fr.Op)
	case evt.RepoCommit != nil:
		c := evt.RepoCommit
		assert.Equal(t, "#commit", fr.Kind)
		if c.Seq >= 0 { // a negative seq is no seq to a consumer
			assert.Equal(t, c.Seq, fr.Seq)
		}
		assert.Equal(t, c.Repo, fr.DID)
		assert.Equal(t, c.Time, fr.Time)
		assert.Equal(t, c.PrevData != nil, fr.PrevData)
		if fr.HasSeq {
			// The seq's byte range holds exactly the seq.
			maj, v, next, err := Head(frame, fr.SeqOff)
			require.NoError(t, err)
			assert.Equal(t, Uint, maj)
			assert.Equal(t, uint64(c.Seq), v)
			assert.Equal(t, fr.SeqOff+fr.SeqLen, next)
		}
	case evt.RepoIdentity != nil:
		assert.Equal(t, "#identity", fr.Kind)
		assert.Equal(t, max(evt.RepoIdentity.Seq, 0), fr.Seq)
		assert.Equal(t, evt.RepoIdentity.Did, fr.DID)
		assert.Equal(t, evt.RepoIdentity.Time, fr.Time)
	case evt.RepoAccount != nil:
		assert.Equal(t, "#account", fr.Kind)
		assert.Equal(t, max(evt.RepoAccount.Seq, 0), fr.Seq)
		assert.Equal(t, evt.RepoAccount.Did, fr.DID)
	case evt.RepoInfo != nil:
		assert.Equal(t, "#info", fr.Kind)
		assert.False(t, fr.HasSeq)
	}
}

func TestPeekAgreesWithIndigo(t *testing.T) {
	for name, frame := range sampleFrames(t) {
		t.Run(name, func(t *testing.T) { checkAgainstIndigo(t, frame) })
	}
	fr, err := Peek(sampleFrames(t)["commit"])
	require.NoError(t, err)
	assert.True(t, fr.HasSeq)
	fr, err = Peek(sampleFrames(t)["error"])
	require.NoError(t, err)
	assert.Equal(t, int64(-1), fr.Op)
	fr, err = Peek(sampleFrames(t)["commit, first"])
	require.NoError(t, err)
	assert.False(t, fr.PrevData)
}

// A consumer that reads only a frame's first bytes still gets the header
// and the seq, which come before the blocks.
func TestPeekOfAPrefix(t *testing.T) {
	frame := commitFrame(t, 123456789012, 64<<10, true)
	fr, err := Peek(frame[:4<<10])
	assert.ErrorIs(t, err, ErrShort)
	assert.Equal(t, int64(1), fr.Op)
	assert.Equal(t, "#commit", fr.Kind)
	assert.True(t, fr.HasSeq)
	assert.Equal(t, int64(123456789012), fr.Seq)

	for n := range len(frame[:200]) {
		_, err := Peek(frame[:n])
		assert.Error(t, err, "a %d-byte prefix", n)
	}
}

func TestHeadRefusesIndefiniteLengths(t *testing.T) {
	_, _, _, err := Head([]byte{0x5f}, 0) // bytes, indefinite length
	assert.ErrorContains(t, err, "indefinite")
	_, err = Skip(bytes.Repeat([]byte{0x81}, MaxDepth+2), 0) // arrays nested past the bound
	assert.ErrorContains(t, err, "nested deeper")
}

func TestAppendHeadIsMinimal(t *testing.T) {
	for _, v := range []uint64{0, 23, 24, 255, 256, 65535, 65536, 1<<32 - 1, 1 << 32, 1<<63 + 5} {
		b := AppendHead(nil, Bytes, v)
		maj, got, next, err := Head(b, 0)
		require.NoError(t, err)
		assert.Equal(t, Bytes, maj)
		assert.Equal(t, v, got)
		assert.Equal(t, len(b), next)
		want := 1
		switch {
		case v < 24:
		case v <= 0xff:
			want = 2
		case v <= 0xffff:
			want = 3
		case v <= 0xffffffff:
			want = 5
		default:
			want = 9
		}
		assert.Len(t, b, want, "head of %d", v)
	}
}

// FuzzPeekAgainstIndigo: whatever the bytes, Peek does not panic, and
// every frame indigo's decoder reads, Peek reads the same.
func FuzzPeekAgainstIndigo(f *testing.F) {
	for _, frame := range sampleFrames(f) {
		f.Add(frame)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		checkAgainstIndigo(t, frame)
	})
}

// BenchmarkPeekVersusDecode: what the consumers save per frame by walking
// heads instead of decoding a 1.5 KB commit with indigo.
func BenchmarkPeekVersusDecode(b *testing.B) {
	frame := commitFrame(b, 5_000_000_123, 1500, true)
	b.Run("peek", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Peek(frame); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("indigo-decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var evt events.XRPCStreamEvent
			if err := evt.Deserialize(bytes.NewReader(frame)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
