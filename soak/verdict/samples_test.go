package verdict

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaysoak/relaysoak/soak/rundir"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// samplesJSONL renders traces as the rig's samples.jsonl: signals[i] is
// recorded under names[i]; frames at rate fps.
func samplesJSONL(t testing.TB, names []string, traces []Trace, fps float64, every int) []byte {
	t.Helper()
	var buf bytes.Buffer
	start := time.Date(2026, 7, 4, 12, 0, 0, 0, time.UTC)
	for i, p := range traces[0].Series {
		if i%every != 0 {
			continue
		}
		el := p.T
		frames := math.Round(fps * el)
		s := rundir.Sample{
			T:          start.Add(time.Duration(el * float64(time.Second))),
			ElapsedS:   &el,
			Signals:    map[string]float64{},
			FramesSent: &frames,
		}
		for k, tr := range traces {
			s.Signals[names[k]] = math.Round(tr.Series[i].Bytes)
		}
		b, err := json.Marshal(s)
		require.NoError(t, err)
		buf.Write(b)
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}

func TestReadSamplesAndJudgeSignals(t *testing.T) {
	seed := librarySeeds(t, 1)[0]
	t.Logf("seed %d", seed)
	leak := Spec{Duration: 3 * time.Hour, BaseMiB: 800, LeakMiBPerHour: 100, NoiseMiB: 4}.Generate(seed)
	flat := Spec{Duration: 3 * time.Hour, BaseMiB: 600, SawtoothMiB: 100, SawtoothPeriod: 2 * time.Minute, NoiseMiB: 4}.Generate(seed + 1)
	data := samplesJSONL(t, []string{rundir.SignalRssAnon, rundir.SignalHeapInuse, rundir.SignalVmRSS}, []Trace{leak, flat, leak}, 700, 1)

	run, err := ReadSamples(bytes.NewReader(data), "samples.jsonl")
	require.NoError(t, err)
	require.Len(t, run.Signals, 3)
	assert.InDelta(t, 700, run.Context.FrameRate, 0.01)
	assert.Empty(t, run.Context.Exits)

	rep, err := JudgeSignals(run.Signals, run.Context, Config{})
	require.NoError(t, err)
	assert.Equal(t, Leak, rep.Verdict)
	assert.Equal(t, rundir.SignalRssAnon, rep.CarriedBy)
	require.NotNil(t, rep.BytesPerFrame)
	assert.InDelta(t, 100*mib/3600/700.0, *rep.BytesPerFrame, 5)
	require.Len(t, rep.Disagreements, 1)
	assert.Contains(t, rep.Disagreements[0], "fragmentation")
	assert.Contains(t, rep.Disagreements[0], rundir.SignalHeapInuse)

	out, err := json.Marshal(rep)
	require.NoError(t, err)
	assert.Contains(t, string(out), `"slope_mib_per_hour":`)
	assert.Contains(t, string(out), `"carried_by":"rss_anon"`)

	// Without RssAnon, VmRSS carries it; without either, the cgroup.
	delete(run.Signals, rundir.SignalRssAnon)
	rep, err = JudgeSignals(run.Signals, run.Context, Config{})
	require.NoError(t, err)
	assert.Equal(t, rundir.SignalVmRSS, rep.CarriedBy)
	assert.Equal(t, "cgroup_working_set", choosePrimary([]string{"cgroup_working_set", "heap_inuse"}))
	assert.Equal(t, "heap_inuse", choosePrimary([]string{"heap_inuse"}))
}

func TestReadSamplesExits(t *testing.T) {
	in := `{"elapsed_s":0,"signals":{"rss_anon":100},"exits":0,"memory_limit_bytes":1000}
{"elapsed_s":10,"signals":{"rss_anon":200}}

{"elapsed_s":20,"signals":{"rss_anon":100},"exits":1}
{"t":"2026-07-04T12:00:30Z","elapsed_s":30,"signals":{"rss_anon":150},"exits":1}
`
	run, err := ReadSamples(strings.NewReader(in), "s.jsonl")
	require.NoError(t, err)
	assert.Equal(t, []float64{20}, run.Context.Exits)
	assert.Equal(t, 1000.0, run.Context.MemoryLimit)
	res, err := Judge(run.Signals[rundir.SignalRssAnon], run.Context, Config{})
	require.NoError(t, err)
	assert.Equal(t, Crashed, res.Verdict)
}

func TestReadSamplesMalformed(t *testing.T) {
	for _, c := range []struct {
		name, in, want string
	}{
		{"empty", "", "s.jsonl: no samples"},
		{"blank lines", "\n\n  \n", "s.jsonl: no samples"},
		{"not json", `{"elapsed_s":0,"signals":{"rss_anon":1}}` + "\nhello\n", "s.jsonl:2: not a sample"},
		{"non-numeric", `{"elapsed_s":0,"signals":{"rss_anon":"lots"}}`, "s.jsonl:1: not a sample"},
		{"no time", `{"signals":{"rss_anon":1}}`, "s.jsonl:1: sample has neither elapsed_s nor t"},
		{"unsorted", `{"elapsed_s":10,"signals":{"rss_anon":1}}` + "\n" + `{"elapsed_s":5,"signals":{"rss_anon":1}}`, "s.jsonl:2: time 5.000 s is not after line 1's"},
		{"duplicate time", `{"elapsed_s":10,"signals":{"rss_anon":1}}` + "\n" + `{"elapsed_s":10,"signals":{"rss_anon":1}}`, "s.jsonl:2:"},
		{"negative", `{"elapsed_s":0,"signals":{"rss_anon":-1}}`, "s.jsonl:1: signal rss_anon"},
		{"single sample", `{"elapsed_s":0,"signals":{"rss_anon":1}}`, "signal rss_anon has 1 sample(s)"},
		{"no signals", `{"elapsed_s":0,"signals":{}}` + "\n" + `{"elapsed_s":1}`, "no memory signals"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ReadSamples(strings.NewReader(c.in), "s.jsonl")
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrInput)
			assert.Contains(t, err.Error(), c.want)
		})
	}
}

func TestJudgeMalformedSeries(t *testing.T) {
	for _, c := range []struct {
		name string
		s    Series
		want string
	}{
		{"empty", nil, "0 sample(s)"},
		{"single", Series{{0, 1}}, "1 sample(s)"},
		{"unsorted", Series{{0, 1}, {10, 1}, {5, 1}}, "sample 2: time 5 s is not after"},
		{"NaN", Series{{0, 1}, {10, nan()}}, "sample 1: value NaN"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Judge(c.s, Context{}, Config{})
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
		})
	}
	// Two samples are readable but say nothing yet.
	res, err := Judge(Series{{0, 1 << 30}, {10, 1 << 30}}, Context{}, Config{})
	require.NoError(t, err)
	assert.Equal(t, Inconclusive, res.Verdict)
	require.NotNil(t, res.NeedMoreMinutes)
	assert.Positive(t, *res.NeedMoreMinutes)
	_, err = json.Marshal(res)
	require.NoError(t, err)
	_, err = JudgeSignals(nil, Context{}, Config{})
	assert.ErrorIs(t, err, ErrNoSignals)
}

func nan() float64 { var z float64; return z / z }

// TestWriteExamples writes a few labelled traces to testdata/ as
// samples.jsonl, for `relaysoak analyze` and for eyes. It only runs with
// TREND_WRITE_TESTDATA=1 (the files are committed; seeds are fixed).
func TestWriteExamples(t *testing.T) {
	if os.Getenv("TREND_WRITE_TESTDATA") == "" {
		t.Skip("set TREND_WRITE_TESTDATA=1 to rewrite testdata/")
	}
	const seed = 20260704
	want := map[string]bool{"warmup-exp-60min": true, "gc-sawtooth": true, "leak-290-warmup-30min": true, "leak-50-after-plateau": true, "oom-sawtooth-exits": true}
	require.NoError(t, os.MkdirAll("testdata", 0o755))
	for _, tr := range Library(seed) {
		if !want[tr.Name] {
			continue
		}
		data := samplesJSONL(t, []string{rundir.SignalRssAnon}, []Trace{tr}, 700, 1)
		if len(tr.Ctx.Exits) > 0 || tr.Ctx.MemoryLimit > 0 {
			data = addContext(t, data, tr.Ctx)
		}
		data = dropWallClock(t, data)
		name := filepath.Join("testdata", fmt.Sprintf("%s.%s.samples.jsonl", tr.Name, strings.ToLower(string(tr.Want))))
		require.NoError(t, os.WriteFile(name, data, 0o644))
	}
}

// TestExamples judges the files in testdata/ and checks the verdict their
// name carries (NAME.VERDICT.samples.jsonl).
func TestExamples(t *testing.T) {
	files, err := filepath.Glob("testdata/*.samples.jsonl")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		parts := strings.Split(filepath.Base(f), ".")
		require.Len(t, parts, 4, f)
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		run, err := ReadSamples(bytes.NewReader(data), f)
		require.NoError(t, err)
		rep, err := JudgeSignals(run.Signals, run.Context, Config{})
		require.NoError(t, err)
		assert.Equal(t, Verdict(strings.ToUpper(parts[1])), rep.Verdict, "%s: %s", f, rep.Reason)
	}
}

// dropWallClock removes the optional "t" field, to keep testdata/ small.
func dropWallClock(t *testing.T, data []byte) []byte {
	var out bytes.Buffer
	for line := range bytes.Lines(data) {
		var m map[string]any
		require.NoError(t, json.Unmarshal(line, &m))
		delete(m, "t")
		b, err := json.Marshal(m)
		require.NoError(t, err)
		out.Write(b)
		out.WriteByte('\n')
	}
	return out.Bytes()
}

// addContext adds exits and the memory limit to rendered samples.
func addContext(t *testing.T, data []byte, ctx Context) []byte {
	var out bytes.Buffer
	exits := 0
	for line := range bytes.Lines(data) {
		var s rundir.Sample
		require.NoError(t, json.Unmarshal(line, &s))
		for exits < len(ctx.Exits) && ctx.Exits[exits] <= *s.ElapsedS {
			exits++
		}
		s.Exits = exits
		s.MemoryLimitBytes = ctx.MemoryLimit
		b, err := json.Marshal(s)
		require.NoError(t, err)
		out.Write(b)
		out.WriteByte('\n')
	}
	return out.Bytes()
}
