package rundir

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// What the appender writes, the reader reads back, line by line, whatever
// the number of writers; a bad line is named by its number.
func TestAppendAndReadLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), Samples)
	a, err := OpenAppender(path)
	require.NoError(t, err)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			el := float64(i)
			assert.NoError(t, a.Write(Line{Sample: Sample{ElapsedS: &el, Signals: map[string]float64{SignalRssAnon: el}},
				Context: map[string]float64{CommitsDelivered: 2 * el}}))
		}()
	}
	wg.Wait()
	require.NoError(t, a.Close())

	seen := map[float64]bool{}
	require.NoError(t, ReadLinesFile(path, func(n int, l Line) error {
		require.NotNil(t, l.ElapsedS)
		assert.Equal(t, *l.ElapsedS, l.Signals[SignalRssAnon])
		assert.Equal(t, 2**l.ElapsedS, l.Context[CommitsDelivered])
		seen[*l.ElapsedS] = true
		return nil
	}))
	assert.Len(t, seen, 50, "every line whole, none interleaved")

	bad := "{\"elapsed_s\":1,\"signals\":{}}\n\n{\"elapsed_s\":2,\"signals\":{\n"
	err = ReadLines(strings.NewReader(bad), "x.jsonl", func(int, Line) error { return nil })
	assert.ErrorContains(t, err, "x.jsonl:3: not a sample", "the blank line is skipped but counted")

	_, err = os.Stat(path)
	require.NoError(t, err)
}

func TestRunInfoRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), Run)
	in := RunInfo{Format: RunFormat, ID: "r1", Config: map[string]any{"hosts": 10.0}, Recipe: map[string]string{"hosts": "10"},
		Capture: &CaptureInfo{Path: "cap.car", SHA256: map[string]string{"cap.car": "ab"}}}
	require.NoError(t, WriteRunInfo(path, in))
	out, err := ReadRunInfo(path)
	require.NoError(t, err)
	assert.Equal(t, in.ID, out.ID)
	assert.Equal(t, in.Config, out.Config)
	assert.Equal(t, in.Recipe, out.Recipe)
	assert.Equal(t, in.Capture, out.Capture)

	require.NoError(t, os.WriteFile(path, []byte("{not json"), 0o644))
	_, err = ReadRunInfo(path)
	assert.ErrorContains(t, err, path, "a broken run.json is named")
}
