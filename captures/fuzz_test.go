package captures

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// FuzzReader feeds arbitrary bytes to the reader. Whatever the input, it
// must stop with io.EOF (then the capture re-encodes to the same frames)
// or with a *ReadError naming the file, the frame and a byte offset within
// the input, and never panic. `go test` runs it on the seed corpus in
// testdata/fuzz/FuzzReader; `go test -fuzz FuzzReader ./captures` explores.
func FuzzReader(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s.data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, docs, r, err := readAll(data, "fuzz.rscap")
		require.Error(t, err)
		if err == io.EOF {
			_, ok := r.Manifest()
			require.True(t, ok, "io.EOF only after the manifest")
			// What was read writes back and reads again the same.
			again, againDocs, _, err := readAll(writeCapture(t, WriterConfig{BlockSize: 512}, recs, docs, true), "again")
			require.ErrorIs(t, err, io.EOF)
			require.Len(t, again, len(recs))
			for i := range recs {
				require.Equal(t, recs[i].Frame, again[i].Frame)
				require.Equal(t, recs[i].Host, again[i].Host)
				require.True(t, recs[i].Time.Equal(again[i].Time))
			}
			require.Equal(t, docs, againDocs)
			return
		}
		var re *ReadError
		require.ErrorAs(t, err, &re)
		require.Equal(t, "fuzz.rscap", re.File)
		require.Equal(t, int64(len(recs)+1), re.Frame)
		require.GreaterOrEqual(t, re.Offset, int64(0))
		require.LessOrEqual(t, re.Offset, int64(len(data)))
		require.Contains(t, err.Error(), fmt.Sprintf("read capture fuzz.rscap at frame %d (byte %d)", re.Frame, re.Offset))
		if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error is neither ErrTruncated nor ErrCorrupt: %v", err)
		}
		for _, rec := range recs {
			require.LessOrEqual(t, len(rec.Frame), MaxFrameSize)
		}
	})
}

type fuzzSeed struct {
	name string
	data []byte
}

// fuzzSeeds are the shapes worth starting from: whole, killed, cut, flipped,
// wrong version, not a capture at all.
func fuzzSeeds(t testing.TB) []fuzzSeed {
	recs := testRecords(t, 3)
	docs := map[string]string{"did:plc:testa": `{"id":"did:plc:testa"}`}
	whole := writeCapture(t, WriterConfig{Source: "wss://seed"}, recs, docs, true)
	small := writeCapture(t, WriterConfig{BlockSize: 64}, recs, docs, true)
	killed := writeCapture(t, WriterConfig{}, recs, nil, false)
	flipped := bytes.Clone(whole)
	flipped[len(flipped)/2] ^= 1
	future := bytes.Clone(whole)
	future[8] = 2
	var real []byte
	for _, fr := range sharedFrames(t) {
		if len(fr) < 200 { // the #identity and #account frames: real, and small
			real = append(real, fr...)
		}
	}
	realCap := writeCapture(t, WriterConfig{}, []Record{{Host: "bsky.network", Frame: real[:100]}, {Host: "bsky.network", Frame: real[100:]}}, nil, true)
	return []fuzzSeed{
		{"whole", whole},
		{"many-blocks", small},
		{"killed", killed},
		{"cut-mid-block", whole[:len(whole)*2/3]},
		{"cut-in-footer", whole[:len(whole)-5]},
		{"flipped-bit", flipped},
		{"future-version", future},
		{"header-only", whole[:headerLen]},
		{"empty", nil},
		{"raw-dump", append([]byte{byte(len(real)), 0, 0, 0}, real...)},
		{"real-frames", realCap},
	}
}

// TestWriteFuzzSeeds regenerates testdata/fuzz/FuzzReader when
// RELAYSOAK_WRITE_FUZZ_SEEDS=1; otherwise it checks the corpus is there.
func TestWriteFuzzSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzReader")
	if os.Getenv("RELAYSOAK_WRITE_FUZZ_SEEDS") != "1" {
		entries, err := os.ReadDir(dir)
		require.NoError(t, err, "the seed corpus is missing: run with RELAYSOAK_WRITE_FUZZ_SEEDS=1")
		assert.GreaterOrEqual(t, len(entries), 10)
		return
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for _, s := range fuzzSeeds(t) {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s.data)
		require.NoError(t, os.WriteFile(filepath.Join(dir, s.name), []byte(body), 0o644))
	}
}
