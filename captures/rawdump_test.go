package captures

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func decompressFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	if !bytes.HasPrefix(data, zstdMagic) {
		return data
	}
	z, err := zstd.NewReader(bytes.NewReader(data))
	require.NoError(t, err)
	defer z.Close()
	out, err := io.ReadAll(z)
	require.NoError(t, err)
	return out
}

// Import the shared dump (real frames from the network), export it, and
// get the same frame bytes back (compared decompressed).
func TestImportExportRoundTripSharedCapture(t *testing.T) {
	shared := sharedCapture(t)
	dir := t.TempDir()
	capPath := filepath.Join(dir, "shared.rscap")
	m, err := Import(context.Background(), ImportConfig{
		Frames:  filepath.Join(shared, "frames.bin.zst"),
		DIDDocs: filepath.Join(shared, "did_docs.json.zst"),
		Out:     capPath,
		Source:  "wss://bsky.network/xrpc/com.atproto.sync.subscribeRepos",
	})
	require.NoError(t, err)
	assert.Equal(t, int64(150), m.Frames)
	assert.Equal(t, map[string]int64{KindCommit: 148, KindIdentity: 1, KindAccount: 1}, m.Kinds)
	assert.Equal(t, int64(31527015322), m.SeqMin)
	assert.Equal(t, int64(31527015471), m.SeqMax)
	assert.Equal(t, map[string]int64{"bsky.network": 150}, m.Hosts)
	docs := sharedDIDDocs(t)
	assert.Equal(t, int64(len(docs)), m.DIDDocs)
	assert.False(t, m.Start.IsZero())
	assert.False(t, m.End.Before(m.Start))

	stored, err := ReadManifest(capPath)
	require.NoError(t, err)
	assert.Equal(t, m.Frames, stored.Frames)

	for _, ext := range []string{".bin.zst", ".bin"} {
		out := filepath.Join(dir, "frames"+ext)
		docsOut := filepath.Join(dir, "did_docs.json"+map[bool]string{true: ".zst", false: ""}[ext == ".bin.zst"])
		res, err := Export(context.Background(), ExportConfig{Capture: capPath, Out: out, DIDDocsOut: docsOut})
		require.NoError(t, err)
		assert.Equal(t, int64(150), res.Frames)
		assert.Equal(t, int64(len(docs)), res.DIDDocs)

		want := decompressFile(t, filepath.Join(shared, "frames.bin.zst"))
		got := decompressFile(t, out)
		require.Equal(t, len(want), len(got))
		assert.True(t, bytes.Equal(want, got), "exported frames differ from the shared dump (%s)", ext)

		var gotDocs map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(decompressFile(t, docsOut), &gotDocs))
		require.Len(t, gotDocs, len(docs))
		for did, doc := range docs {
			assert.JSONEq(t, string(doc), string(gotDocs[did]), did)
		}
	}
}

func TestImportRejectsBrokenDumps(t *testing.T) {
	dir := t.TempDir()
	frames := sharedFrames(t)
	var dump bytes.Buffer
	for _, f := range frames[:3] {
		binary.Write(&dump, binary.LittleEndian, uint32(len(f)))
		dump.Write(f)
	}
	cut := filepath.Join(dir, "cut.bin")
	require.NoError(t, os.WriteFile(cut, dump.Bytes()[:dump.Len()-10], 0o644))
	_, err := Import(context.Background(), ImportConfig{Frames: cut, Out: filepath.Join(dir, "o.rscap")})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "read frame dump "+cut+" at frame 3 (byte ")
	assert.Contains(t, err.Error(), "cut off inside the frame")

	huge := filepath.Join(dir, "huge.bin")
	require.NoError(t, os.WriteFile(huge, []byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3}, 0o644))
	_, err = Import(context.Background(), ImportConfig{Frames: huge, Out: filepath.Join(dir, "o.rscap")})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "at frame 1 (byte 0")

	// A capture is not a dump.
	capPath := filepath.Join(dir, "c.rscap")
	require.NoError(t, os.WriteFile(capPath, writeCapture(t, WriterConfig{}, testRecords(t, 2), nil, true), 0o644))
	_, err = Import(context.Background(), ImportConfig{Frames: capPath, Out: filepath.Join(dir, "o2.rscap")})
	assert.ErrorContains(t, err, "already a relaysoak capture")

	badDocs := filepath.Join(dir, "docs.json")
	require.NoError(t, os.WriteFile(badDocs, []byte(`["not", "an object"]`), 0o644))
	good := filepath.Join(dir, "good.bin")
	require.NoError(t, os.WriteFile(good, dump.Bytes(), 0o644))
	_, err = Import(context.Background(), ImportConfig{Frames: good, DIDDocs: badDocs, Out: filepath.Join(dir, "o3.rscap")})
	assert.ErrorContains(t, err, "want a JSON object")
}

func TestExportTruncatedCapture(t *testing.T) {
	dir := t.TempDir()
	capPath := filepath.Join(dir, "killed.rscap")
	require.NoError(t, os.WriteFile(capPath, writeCapture(t, WriterConfig{}, testRecords(t, 5), nil, false), 0o644))
	_, err := Export(context.Background(), ExportConfig{Capture: capPath, Out: filepath.Join(dir, "o.bin")})
	require.ErrorIs(t, err, ErrTruncated)
	res, err := Export(context.Background(), ExportConfig{Capture: capPath, Out: filepath.Join(dir, "o.bin"), AllowTruncated: true})
	require.NoError(t, err)
	assert.Equal(t, int64(5), res.Frames)
	assert.ErrorIs(t, res.Truncated, ErrTruncated)
}
