package captures

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRoundTripSmallBlocks(t *testing.T) {
	recs := testRecords(t, 500)
	docs := map[string]string{"did:plc:testa": `{"id":"did:plc:testa"}`, "did:plc:testb": `{"id":"did:plc:testb"}`}
	// A tiny block size forces hundreds of blocks, so host definitions and
	// per-block time bases are exercised across block boundaries.
	data := writeCapture(t, WriterConfig{Source: "wss://example/x", BlockSize: 256}, recs, docs, true)

	got, gotDocs, r, err := readAll(data, "mem")
	require.ErrorIs(t, err, io.EOF)
	require.Len(t, got, len(recs))
	for i := range recs {
		assert.True(t, recs[i].Time.Equal(got[i].Time), "frame %d time %v != %v", i, got[i].Time, recs[i].Time)
		assert.Equal(t, recs[i].Host, got[i].Host)
		assert.Equal(t, recs[i].Frame, got[i].Frame)
	}
	assert.Equal(t, docs, gotDocs)
	m, ok := r.Manifest()
	require.True(t, ok)
	assert.Equal(t, int64(500), m.Frames)
	assert.Equal(t, int64(500), m.Kinds[KindIdentity])
	assert.Equal(t, int64(1000), m.SeqMin)
	assert.Equal(t, int64(1499), m.SeqMax)
	assert.Equal(t, "wss://example/x", m.Source)
	assert.Equal(t, int64(2), m.DIDDocs)
	assert.Equal(t, map[string]int64{"a.example": 334, "b.example": 166}, m.Hosts)
	assert.True(t, recs[0].Time.Equal(m.Start))
	assert.True(t, recs[499].Time.Equal(m.End))
	in, ok := r.Info()
	require.True(t, ok)
	assert.Equal(t, "wss://example/x", in.Source)
}

func TestFramesAreNotAliasedAcrossRecords(t *testing.T) {
	data := writeCapture(t, WriterConfig{}, testRecords(t, 3), nil, true)
	got, _, _, err := readAll(data, "mem")
	require.ErrorIs(t, err, io.EOF)
	want := append([]byte(nil), got[1].Frame...)
	_ = append(got[0].Frame, 0xff, 0xff, 0xff) // must not spill into frame 2
	assert.Equal(t, want, got[1].Frame)
}

func TestSkipsDIDDocBlocksWithoutCallback(t *testing.T) {
	data := writeCapture(t, WriterConfig{}, testRecords(t, 10), map[string]string{"did:plc:x": `{}`}, true)
	r, err := NewReader(bytes.NewReader(data), "mem", ReaderConfig{})
	require.NoError(t, err)
	n := 0
	for {
		_, err := r.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		n++
	}
	assert.Equal(t, 10, n)

	path := filepath.Join(t.TempDir(), "c.rscap")
	require.NoError(t, os.WriteFile(path, data, 0o644))
	var viaHelper []string
	require.NoError(t, ReadDIDDocs(path, func(did string, doc []byte) error {
		viaHelper = append(viaHelper, did+" "+string(doc))
		return nil
	}))
	assert.Equal(t, []string{"did:plc:x {}"}, viaHelper)

	// And the other way round: documents only.
	var docs []string
	r, err = NewReader(bytes.NewReader(data), "mem", ReaderConfig{SkipFrames: true, OnDIDDoc: func(did string, _ []byte) error {
		docs = append(docs, did)
		return nil
	}})
	require.NoError(t, err)
	_, err = r.Next()
	assert.ErrorIs(t, err, io.EOF)
	assert.Equal(t, []string{"did:plc:x"}, docs)
}

func TestReadManifestFastPathAndRebuild(t *testing.T) {
	dir := t.TempDir()
	closed := filepath.Join(dir, "closed.rscap")
	require.NoError(t, os.WriteFile(closed, writeCapture(t, WriterConfig{Source: "s"}, testRecords(t, 20), nil, true), 0o644))
	m, err := ReadManifest(closed)
	require.NoError(t, err)
	assert.Equal(t, int64(20), m.Frames)
	assert.Equal(t, "s", m.Source)

	// A writer that was killed: flushed, never closed.
	killed := filepath.Join(dir, "killed.rscap")
	require.NoError(t, os.WriteFile(killed, writeCapture(t, WriterConfig{Source: "s"}, testRecords(t, 20), map[string]string{"did:plc:a": "{}"}, false), 0o644))
	m, err = ReadManifest(killed)
	require.ErrorIs(t, err, ErrTruncated)
	assert.Equal(t, int64(20), m.Frames, "every flushed frame is still there")
	assert.Equal(t, int64(20), m.Kinds[KindIdentity])
	assert.Equal(t, int64(1), m.DIDDocs)
	assert.Equal(t, "s", m.Source, "the info block keeps the source of a capture that never closed")
	assert.Contains(t, err.Error(), killed)
}

// A capture cut at any byte must give back a prefix of its frames and then
// a *ReadError naming the file, frame and byte: never a panic, never a
// silent short read.
func TestTruncatedAtEveryByte(t *testing.T) {
	recs := testRecords(t, 40)
	data := writeCapture(t, WriterConfig{BlockSize: 300}, recs, map[string]string{"did:plc:a": `{"a":1}`}, true)
	for cut := 0; cut < len(data); cut++ {
		got, _, _, err := readAll(data[:cut], "cut.rscap")
		require.Error(t, err, "cut at %d", cut)
		require.NotErrorIs(t, err, io.EOF, "cut at %d read as complete", cut)
		var re *ReadError
		require.ErrorAs(t, err, &re, "cut at %d", cut)
		assert.ErrorIs(t, err, ErrTruncated, "cut at %d: %v", cut, err)
		assert.Equal(t, "cut.rscap", re.File)
		assert.Equal(t, int64(len(got)+1), re.Frame, "cut at %d", cut)
		assert.LessOrEqual(t, re.Offset, int64(cut))
		assert.Contains(t, err.Error(), fmt.Sprintf("read capture cut.rscap at frame %d (byte %d)", re.Frame, re.Offset))
		for i := range got {
			require.Equal(t, recs[i].Frame, got[i].Frame)
		}
	}
}

func TestCorruptByteIsCaught(t *testing.T) {
	recs := testRecords(t, 40)
	data := writeCapture(t, WriterConfig{BlockSize: 300}, recs, nil, true)
	for i := headerLen; i < len(data); i += 7 {
		bad := bytes.Clone(data)
		bad[i] ^= 0x40
		got, _, _, err := readAll(bad, "bad.rscap")
		require.Error(t, err)
		if err == io.EOF {
			// Only the footer's offset is unguarded by a checksum, and it is checked.
			t.Fatalf("flipped byte %d went unnoticed", i)
		}
		var re *ReadError
		require.ErrorAs(t, err, &re, "byte %d", i)
		assert.True(t, errors.Is(err, ErrCorrupt) || errors.Is(err, ErrTruncated), "byte %d: %v", i, err)
		for j := range got {
			require.Equal(t, recs[j].Frame, got[j].Frame, "byte %d: frame %d changed silently", i, j)
		}
	}
}

func TestNotACaptureOrNewerVersion(t *testing.T) {
	_, err := NewReader(bytes.NewReader([]byte{0xe1, 0x1a, 0, 0, 0xa2, 0x61, 0x74, 0x67, 1, 2, 3, 4, 5, 6, 7, 8}), "dump.bin", ReaderConfig{})
	require.ErrorIs(t, err, ErrCorrupt)
	assert.Contains(t, err.Error(), "capture import")

	data := writeCapture(t, WriterConfig{}, testRecords(t, 1), nil, true)
	data[8] = 9
	_, err = NewReader(bytes.NewReader(data), "future.rscap", ReaderConfig{})
	require.ErrorIs(t, err, ErrCorrupt)
	assert.Contains(t, err.Error(), "version 9")

	_, err = NewReader(bytes.NewReader(nil), "empty", ReaderConfig{})
	assert.ErrorIs(t, err, ErrTruncated)
}

func TestWriterFlushesByTime(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, "mem", WriterConfig{FlushInterval: 10 * time.Millisecond})
	require.NoError(t, err)
	recs := testRecords(t, 2)
	require.NoError(t, w.Append(recs[0]))
	time.Sleep(20 * time.Millisecond)
	require.NoError(t, w.Append(recs[1])) // past the interval: both go out now
	got, _, _, err := readAll(bytes.Clone(buf.Bytes()), "mem")
	assert.ErrorIs(t, err, ErrTruncated)
	assert.Len(t, got, 2)
	require.NoError(t, w.Close())
	assert.Error(t, w.Append(recs[0]), "append after close")
}

func TestWriterRejectsWhatItCannotStore(t *testing.T) {
	w, err := NewWriter(io.Discard, "mem", WriterConfig{})
	require.NoError(t, err)
	assert.Error(t, w.Append(Record{Frame: make([]byte, MaxFrameSize+1)}))
	assert.Error(t, w.AddDIDDoc("did:plc:x", []byte("{not json")))
	assert.Error(t, w.AddDIDDoc("", []byte("{}")))
	require.NoError(t, w.Append(Record{Frame: []byte("not cbor at all")}), "undecodable frames are data too")
	assert.Equal(t, int64(1), w.Manifest().Kinds[KindUnknown])
	require.NoError(t, w.Close())
}

func TestFileWriterAndOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.rscap")
	w, err := Create(path, WriterConfig{})
	require.NoError(t, err)
	for _, f := range sharedFrames(t) {
		require.NoError(t, w.Append(Record{Time: time.Now(), Host: "bsky.network", Frame: f}))
	}
	require.NoError(t, w.Close())
	require.NoError(t, w.Close(), "second Close is a no-op")

	r, err := Open(path, ReaderConfig{})
	require.NoError(t, err)
	defer r.Close()
	n := 0
	for {
		_, err := r.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		n++
	}
	assert.Equal(t, 150, n)
	m, ok := r.Manifest()
	require.True(t, ok)
	assert.Equal(t, map[string]int64{KindCommit: 148, KindIdentity: 1, KindAccount: 1}, m.Kinds)
	assert.Equal(t, int64(31527015322), m.SeqMin)
	assert.Equal(t, int64(31527015471), m.SeqMax)
	assert.Equal(t, int64(819376-150*4), m.Bytes)
}
