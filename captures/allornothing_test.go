package captures

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// dumpOf encodes frames as a [u32 LE length][frame] dump.
func dumpOf(frames [][]byte) []byte {
	var b bytes.Buffer
	for _, f := range frames {
		binary.Write(&b, binary.LittleEndian, uint32(len(f)))
		b.Write(f)
	}
	return b.Bytes()
}

// dirNames lists dir, so a test can see that no temporary file is left.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func zstdOf(t *testing.T, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	z, err := zstd.NewWriter(&b)
	require.NoError(t, err)
	_, err = z.Write(data)
	require.NoError(t, err)
	require.NoError(t, z.Close())
	return b.Bytes()
}

// A failed import leaves no output at all (in particular none that Inspect
// would call cleanly closed), and leaves an existing file as it was.
func TestImportFailureLeavesNoCapture(t *testing.T) {
	frames := sharedFrames(t)
	good := dumpOf(frames[:5])

	// Garbage where the third frame's header is: the length prefixes still
	// line up, so only the frame itself shows the damage.
	garbled := dumpOf(frames[:5])
	third := 4 + len(frames[0]) + 4 + len(frames[1]) + 4
	for i := range 16 {
		garbled[third+i] = 0xff
	}

	for _, c := range []struct {
		name string
		dump []byte
		want string
	}{
		{"empty", nil, "empty dump: no frames"},
		{"empty zstd stream", zstdOf(t, nil), "empty dump: no frames"},
		{"cut off", good[:len(good)-10], "cut off inside the frame"},
		{"cut off zstd", zstdOf(t, good)[:200], "frames.bin"},
		{"huge length", append(append([]byte{}, good...), 0xff, 0xff, 0xff, 0xff, 1), "above the"},
		{"garbled frame", garbled, "frame 3 (byte " + strconv.Itoa(third-4) + " of the uncompressed stream): not a firehose frame"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			in := filepath.Join(dir, "frames.bin")
			require.NoError(t, os.WriteFile(in, c.dump, 0o644))

			out := filepath.Join(dir, "new.rscap")
			_, err := Import(context.Background(), ImportConfig{Frames: in, Out: out})
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
			assert.Contains(t, err.Error(), in, "the error names the input")
			assert.NoFileExists(t, out)

			keep := filepath.Join(dir, "keep.rscap")
			before := writeCapture(t, WriterConfig{}, testRecords(t, 3), nil, true)
			require.NoError(t, os.WriteFile(keep, before, 0o644))
			_, err = Import(context.Background(), ImportConfig{Frames: in, Out: keep})
			require.Error(t, err)
			after, err := os.ReadFile(keep)
			require.NoError(t, err)
			assert.True(t, bytes.Equal(before, after), "the existing capture is unchanged")
			assert.ElementsMatch(t, []string{"frames.bin", "keep.rscap"}, dirNames(t, dir), "no temporary file left")
		})
	}
}

func TestImportEmptyDumpIsErrEmptyDump(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "empty.bin")
	require.NoError(t, os.WriteFile(in, nil, 0o644))
	_, err := Import(context.Background(), ImportConfig{Frames: in, Out: filepath.Join(dir, "o.rscap")})
	require.ErrorIs(t, err, ErrEmptyDump)
}

// The output's directory is checked by writing, not guessed: a path under a
// regular file cannot be created (tests run as root, so permissions cannot
// stand in for this).
func TestImportOutputUnderAFile(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "frames.bin")
	require.NoError(t, os.WriteFile(in, dumpOf(sharedFrames(t)[:2]), 0o644))
	out := filepath.Join(in, "o.rscap")
	_, err := Import(context.Background(), ImportConfig{Frames: in, Out: out})
	require.Error(t, err)
	assert.Contains(t, err.Error(), out)
}

func TestImportReplacesOnSuccess(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "frames.bin")
	require.NoError(t, os.WriteFile(in, dumpOf(sharedFrames(t)[:4]), 0o644))
	out := filepath.Join(dir, "o.rscap")
	require.NoError(t, os.WriteFile(out, []byte("an older capture"), 0o644))
	m, err := Import(context.Background(), ImportConfig{Frames: in, Out: out})
	require.NoError(t, err)
	assert.Equal(t, int64(4), m.Frames)
	rep, err := Inspect(out, InspectConfig{})
	require.NoError(t, err)
	assert.True(t, rep.Closed)
	assert.Equal(t, int64(4), rep.Frames)
	assert.ElementsMatch(t, []string{"frames.bin", "o.rscap"}, dirNames(t, dir))
	st, err := os.Stat(out)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), st.Mode().Perm())
}

// A failed export leaves the files already at its outputs as they were: the
// missing capture of `capture export MISSING --out keep.bin` included.
func TestExportFailureKeepsExistingOutputs(t *testing.T) {
	dir := t.TempDir()
	killed := filepath.Join(dir, "killed.rscap")
	require.NoError(t, os.WriteFile(killed, writeCapture(t, WriterConfig{}, testRecords(t, 5), nil, false), 0o644))
	for _, c := range []struct {
		name, capture string
		want          error
	}{
		{"missing capture", filepath.Join(dir, "MISSING.rscap"), os.ErrNotExist},
		{"cut-off capture", killed, ErrTruncated},
	} {
		for _, ext := range []string{".bin", ".bin.zst"} {
			t.Run(c.name+ext, func(t *testing.T) {
				keep := filepath.Join(dir, "keep"+ext)
				keepDocs := filepath.Join(dir, "keep-docs.json")
				require.NoError(t, os.WriteFile(keep, []byte("frames from last week"), 0o644))
				require.NoError(t, os.WriteFile(keepDocs, []byte(`{"did:plc:x": {}}`), 0o644))
				_, err := Export(context.Background(), ExportConfig{Capture: c.capture, Out: keep, DIDDocsOut: keepDocs})
				require.ErrorIs(t, err, c.want)
				got, err := os.ReadFile(keep)
				require.NoError(t, err)
				assert.Equal(t, "frames from last week", string(got))
				got, err = os.ReadFile(keepDocs)
				require.NoError(t, err)
				assert.Equal(t, `{"did:plc:x": {}}`, string(got))
				assert.ElementsMatch(t, []string{"killed.rscap", "keep" + ext, "keep-docs.json"}, dirNames(t, dir), "no temporary file left")
				require.NoError(t, os.Remove(keep))
				require.NoError(t, os.Remove(keepDocs))
			})
		}
	}

	// Nor does a failed export create an output that was not there.
	_, err := Export(context.Background(), ExportConfig{Capture: filepath.Join(dir, "MISSING.rscap"), Out: filepath.Join(dir, "new.bin")})
	require.Error(t, err)
	assert.NoFileExists(t, filepath.Join(dir, "new.bin"))
}
