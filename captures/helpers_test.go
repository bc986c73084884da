package captures

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/events"
	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/require"

	"github.com/relaysoak/relaysoak/internal/sharedfiles"
)

// sharedCapture is the directory of the real firehose capture in ../shared.
func sharedCapture(t testing.TB) string { return sharedfiles.CaptureDir(t) }

// sharedFrames decodes the shared dump into its frames.
func sharedFrames(t testing.TB) [][]byte {
	t.Helper()
	f, err := os.Open(filepath.Join(sharedCapture(t), "frames.bin.zst"))
	require.NoError(t, err)
	defer f.Close()
	z, err := zstd.NewReader(f)
	require.NoError(t, err)
	defer z.Close()
	data, err := io.ReadAll(z)
	require.NoError(t, err)
	var frames [][]byte
	for off := 0; off < len(data); {
		require.LessOrEqual(t, off+4, len(data))
		n := int(binary.LittleEndian.Uint32(data[off:]))
		frames = append(frames, data[off+4:off+4+n])
		off += 4 + n
	}
	return frames
}

// sharedDIDDocs decodes the shared DID documents.
func sharedDIDDocs(t testing.TB) map[string]json.RawMessage {
	t.Helper()
	f, err := os.Open(filepath.Join(sharedCapture(t), "did_docs.json.zst"))
	require.NoError(t, err)
	defer f.Close()
	z, err := zstd.NewReader(f)
	require.NoError(t, err)
	defer z.Close()
	docs := map[string]json.RawMessage{}
	require.NoError(t, json.NewDecoder(z).Decode(&docs))
	return docs
}

// identityFrame builds a small, valid #identity frame.
func identityFrame(t testing.TB, seq int64, did string) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, (&events.EventHeader{Op: events.EvtKindMessage, MsgType: "#identity"}).MarshalCBOR(&b))
	require.NoError(t, (&comatproto.SyncSubscribeRepos_Identity{Did: did, Seq: seq, Time: "2026-07-04T14:38:07.877Z"}).MarshalCBOR(&b))
	return b.Bytes()
}

// testRecords makes n small records spread over two hosts.
func testRecords(t testing.TB, n int) []Record {
	t.Helper()
	base := time.Date(2026, 7, 4, 14, 38, 7, 123456789, time.UTC)
	recs := make([]Record, n)
	for i := range recs {
		host := "a.example"
		if i%3 == 2 {
			host = "b.example"
		}
		recs[i] = Record{
			Time:  base.Add(time.Duration(i) * 1234567 * time.Nanosecond),
			Host:  host,
			Frame: identityFrame(t, int64(1000+i), "did:plc:test"+string(rune('a'+i%26))),
		}
	}
	return recs
}

// writeCapture writes records and docs to a capture in memory.
func writeCapture(t testing.TB, cfg WriterConfig, recs []Record, docs map[string]string, close bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, "test", cfg)
	require.NoError(t, err)
	for _, r := range recs {
		require.NoError(t, w.Append(r))
	}
	for did, doc := range docs {
		require.NoError(t, w.AddDIDDoc(did, []byte(doc)))
	}
	if close {
		require.NoError(t, w.Close())
	} else {
		require.NoError(t, w.Flush())
	}
	return buf.Bytes()
}

// readAll reads every frame and document until the reader stops.
func readAll(data []byte, name string) (recs []Record, docs map[string]string, r *Reader, err error) {
	docs = map[string]string{}
	r, err = NewReader(bytes.NewReader(data), name, ReaderConfig{OnDIDDoc: func(did string, doc []byte) error {
		docs[did] = string(doc)
		return nil
	}})
	if err != nil {
		return nil, docs, nil, err
	}
	for {
		rec, err := r.Next()
		if err != nil {
			return recs, docs, r, err
		}
		recs = append(recs, rec)
	}
}
