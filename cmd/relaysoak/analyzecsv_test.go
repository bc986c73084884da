package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/relaysoak/relaysoak/soak/verdict"
)

// operatorCSV is a samples file as operators bring them: memory in the spellings of
// /proc and of a Prometheus export, a file-page column, and the fleet's
// frame counter rising 100 frames/s, which would be judged a huge leak if
// it were taken for memory.
func operatorCSV() string {
	var b strings.Builder
	b.WriteString("seconds,vmrss,rssanon,rssfile,prom_rss,heap_inuse,fleet_sent\n")
	for i := range 400 {
		wob := float64(i%7) * (1 << 18) // flat, with noise
		fmt.Fprintf(&b, "%d,%.0f,%.0f,%d,%.0f,%.0f,%d\n", 15*i,
			1.2*(1<<30)+wob, (1<<30)+wob, 200<<20, 1.2*(1<<30)+wob, 0.6*(1<<30)+wob, 1500*i)
	}
	return b.String()
}

func TestReadCSVJudgesTheMemoryColumnNotTheFrameCounter(t *testing.T) {
	run, ch, err := readCSV(strings.NewReader(operatorCSV()), "m.csv", "")
	require.NoError(t, err)
	assert.Equal(t, "rssanon", ch.signal)
	assert.Equal(t, kindRssAnon, ch.kind)
	assert.Contains(t, ch.why, "named like RssAnon")
	assert.Equal(t, "fleet_sent", ch.frames)
	assert.Equal(t, []string{"rssfile"}, ch.ignored)
	assert.Equal(t, "judging rssanon (RssAnon); frames from fleet_sent", ch.String())
	assert.InDelta(t, 100, run.Context.FrameRate, 1e-9, "fleet_sent is cumulative: 1500 frames per 15 s")
	assert.ElementsMatch(t, []string{"vmrss", "rssanon", "prom_rss", "heap_inuse"}, signalNames(run),
		"memory columns only: never the frame counter, never an unknown column")

	rep, err := judgeRun(run, ch, verdict.Config{})
	require.NoError(t, err)
	assert.Equal(t, "rssanon", rep.CarriedBy)
	assert.Equal(t, "rssanon", rep.Signal)
	assert.Equal(t, verdict.Pass, rep.Verdict, rep.Reason)
	require.NotNil(t, rep.BytesPerFrame, "the frame rate reaches the verdict")
}

// JudgeSignals alone knows only the rig's own names and would take prom_rss
// (the first non-heap name); judgeRun follows the choice.
func TestJudgeRunFollowsTheChoice(t *testing.T) {
	run, ch, err := readCSV(strings.NewReader(operatorCSV()), "m.csv", "")
	require.NoError(t, err)
	plain, err := verdict.JudgeSignals(run.Signals, run.Context, verdict.Config{})
	require.NoError(t, err)
	require.Equal(t, "prom_rss", plain.CarriedBy)
	rep, err := judgeRun(run, ch, verdict.Config{})
	require.NoError(t, err)
	require.Len(t, rep.Signals, len(plain.Signals))
	for _, r := range rep.Signals {
		if r.Signal == "rssanon" {
			assert.Equal(t, r, rep.Result)
		}
	}

	// No choice: JudgeSignals as it is.
	rep, err = judgeRun(run, choice{}, verdict.Config{})
	require.NoError(t, err)
	assert.Equal(t, plain.CarriedBy, rep.CarriedBy)

	// A choice the run does not hold is no column of it.
	_, err = judgeRun(run, choice{signal: "rss_file"}, verdict.Config{})
	require.ErrorIs(t, err, errUnknownColumn)
	assert.Contains(t, err.Error(), "signal rss_file was chosen but is not in the run")
}

func TestReadCSVWithoutAMemoryColumn(t *testing.T) {
	for _, c := range []struct{ name, in string }{
		{"counters only", "seconds,fleet_sent,connections\n0,0,5\n10,100,5\n20,200,5\n"},
		{"a lone frame counter", "seconds,frames_sent\n0,0\n10,100\n20,200\n"},
		{"unknown names", "time,a,b\n0,1,2\n10,1,2\n"},
		// Several value columns: only a memory name is judged unasked, even
		// when the frame counter leaves one candidate.
		{"unknown name beside frames", "seconds,bytes,fleet_sent\n0,1,0\n10,1,50\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := readCSV(strings.NewReader(c.in), "n.csv", "")
			require.ErrorIs(t, err, errNoMemoryColumn)
			assert.False(t, errors.Is(err, verdict.ErrInput), "a usage error, not unreadable input")
			header, _, _ := strings.Cut(c.in, "\n")
			assert.Contains(t, err.Error(), "n.csv")
			assert.Contains(t, err.Error(), strings.ReplaceAll(header, ",", ", "), "lists the columns")
			assert.Contains(t, err.Error(), "--column")
		})
	}
}

// Asked for, any column is judged: the user knows what it holds.
func TestReadCSVExplicitColumn(t *testing.T) {
	in := "seconds,fleet_sent,connections,rss_anon\n0,0,5,100\n10,100,6,100\n20,200,7,100\n"
	run, ch, err := readCSV(strings.NewReader(in), "e.csv", "connections")
	require.NoError(t, err)
	assert.Equal(t, []string{"connections"}, signalNames(run))
	assert.Equal(t, choice{signal: "connections", why: "asked for (--column)", frames: "fleet_sent", ignored: []string{"rss_anon"}}, ch)
	assert.InDelta(t, 10, run.Context.FrameRate, 1e-9)

	run, ch, err = readCSV(strings.NewReader(in), "e.csv", "fleet_sent")
	require.NoError(t, err)
	assert.Equal(t, []string{"fleet_sent"}, signalNames(run))
	assert.Empty(t, ch.frames, "a judged column is not also the frame rate")

	// Spellings fold when the match is unique.
	run, ch, err = readCSV(strings.NewReader(in), "e.csv", "RssAnon")
	require.NoError(t, err)
	assert.Equal(t, []string{"rss_anon"}, signalNames(run))
	assert.Equal(t, kindRssAnon, ch.kind)

	_, _, err = readCSV(strings.NewReader(in), "e.csv", "vm_rss")
	require.ErrorIs(t, err, verdict.ErrInput)
	require.ErrorIs(t, err, errUnknownColumn)
	assert.Contains(t, err.Error(), `e.csv:1: no column "vm_rss"; columns are seconds, fleet_sent, connections, rss_anon`)
}

func TestReadCSVLoneColumnIsJudged(t *testing.T) {
	_, ch, err := readCSV(strings.NewReader("t,bytes\n0,100\n10,120\n"), "l.csv", "")
	require.NoError(t, err)
	assert.Equal(t, choice{signal: "bytes", why: "the only value column"}, ch)
}

func TestReadCSVBadFrameCount(t *testing.T) {
	_, _, err := readCSV(strings.NewReader("seconds,rss,frames_total\n0,100,0\n10,100,lots\n"), "f.csv", "")
	require.ErrorIs(t, err, verdict.ErrInput)
	assert.Contains(t, err.Error(), `f.csv:3: column frames_total: "lots" is not a frame count`)
}

func TestMemoryKindSpellings(t *testing.T) {
	for name, want := range map[string]string{
		"rss_anon": kindRssAnon, "RssAnon": kindRssAnon, "rssanon": kindRssAnon, "anon_rss": kindRssAnon,
		"RSS-Anon": kindRssAnon, "rss anon bytes": kindRssAnon,
		"vm_rss": kindVmRSS, "VmRSS": kindVmRSS, "rss": kindVmRSS, "process_resident_memory_bytes": kindVmRSS, "prom_rss": kindVmRSS,
		"cgroup_working_set": kindWorkingSet, "container_memory_working_set_bytes": kindWorkingSet, "Working Set": kindWorkingSet,
		"heap_inuse": kindHeap, "go_memstats_heap_inuse_bytes": kindHeap, "HeapInuse": kindHeap,
		"go_memstats_heap_objects": "", "rssfile": "", "fleet_sent": "", "seconds": "", "bytes": "",
	} {
		assert.Equal(t, want, memoryKind(name), name)
	}
	for name, want := range map[string]bool{
		"fleet_sent": true, "frames_sent": true, "frames": true, "frames_total": true, "Frames-Sent": true,
		"commits_sent": true, "relay_rss": false, "rss": false, "connections": false,
	} {
		assert.Equal(t, want, isFrameCounter(name), name)
	}
}

func TestSamplesChoiceAndSelect(t *testing.T) {
	in := `{"elapsed_s":0,"signals":{"heap_inuse":50,"rss_anon":100},"frames_sent":0}
{"elapsed_s":10,"signals":{"heap_inuse":50,"rss_anon":100},"frames_sent":7000}
`
	run, err := verdict.ReadSamples(strings.NewReader(in), "s.jsonl")
	require.NoError(t, err)
	ch := samplesChoice(run)
	assert.Equal(t, "rss_anon", ch.signal)
	assert.Equal(t, kindRssAnon, ch.kind)
	assert.Equal(t, "frames_sent", ch.frames)

	two := verdict.Run{Signals: map[string]verdict.Series{
		"vm_rss":     {{T: 0, Bytes: 1}, {T: 1, Bytes: 1}},
		"heap_inuse": {{T: 0, Bytes: 1}, {T: 1, Bytes: 1}},
	}}
	assert.Equal(t, "vm_rss", samplesChoice(two).signal)
	assert.Empty(t, samplesChoice(two).frames, "no frame counter recorded")

	sel, ch, err := selectSignal(two, "HeapInuse", "s.jsonl")
	require.NoError(t, err)
	assert.Equal(t, []string{"heap_inuse"}, signalNames(sel))
	assert.Equal(t, "heap_inuse", ch.signal)
	assert.Equal(t, "asked for (--column)", ch.why)
	assert.Len(t, two.Signals, 2, "the run selected from is unchanged")

	_, _, err = selectSignal(two, "rss_anon", "s.jsonl")
	require.ErrorIs(t, err, verdict.ErrInput)
	require.ErrorIs(t, err, errUnknownColumn)
	assert.Contains(t, err.Error(), `s.jsonl: no signal "rss_anon"; signals are heap_inuse, vm_rss`)

	// No name known as memory: the signal JudgeSignals would take.
	odd := verdict.Run{Signals: map[string]verdict.Series{
		"b_heap": {{T: 0, Bytes: 1}, {T: 1, Bytes: 1}},
		"a_heap": {{T: 0, Bytes: 1}, {T: 1, Bytes: 1}},
		"zeta":   {{T: 0, Bytes: 1}, {T: 1, Bytes: 1}},
	}}
	ch = samplesChoice(odd)
	assert.Equal(t, choice{signal: "zeta", why: "no signal named like memory; the first by name"}, ch)
	rep, err := verdict.JudgeSignals(odd.Signals, odd.Context, verdict.Config{})
	require.NoError(t, err)
	assert.Equal(t, rep.CarriedBy, ch.signal)
}

func TestReadCSV(t *testing.T) {
	var b strings.Builder
	b.WriteString("timestamp,process_resident_memory_bytes,go_memstats_heap_inuse_bytes\n")
	for i := range 400 {
		fmt.Fprintf(&b, "%d,%d,%d\n", 1751630400+15*i, (1<<30)+i*(1<<20), 1<<29)
	}
	run, _, err := readCSV(strings.NewReader(b.String()), "p.csv", "")
	require.NoError(t, err)
	require.Len(t, run.Signals, 2)
	rss := run.Signals["process_resident_memory_bytes"]
	require.Len(t, rss, 400)
	assert.Equal(t, 0.0, rss[0].T, "times are rebased to the first row")
	assert.Equal(t, 15.0, rss[1].T)

	run, _, err = readCSV(strings.NewReader(b.String()), "p.csv", "go_memstats_heap_inuse_bytes")
	require.NoError(t, err)
	require.Len(t, run.Signals, 1)
	res, err := verdict.Judge(run.Signals["go_memstats_heap_inuse_bytes"], run.Context, verdict.Config{})
	require.NoError(t, err)
	assert.Equal(t, verdict.Pass, res.Verdict, res.Reason)

	rep, err := verdict.JudgeSignals(mustCSV(t, b.String()).Signals, verdict.Context{}, verdict.Config{})
	require.NoError(t, err)
	assert.Equal(t, "process_resident_memory_bytes", rep.CarriedBy)
	assert.Equal(t, verdict.Leak, rep.Verdict, rep.Reason)
	assert.InDelta(t, 240, rep.SlopeMiBPerHour, 1)

	// RFC 3339 times and a gap (empty cell).
	rfc := "time,bytes\n2026-07-04T12:00:00Z,100\n2026-07-04T12:00:10Z,\n2026-07-04T12:00:20Z,120\n"
	run, _, err = readCSV(strings.NewReader(rfc), "r.csv", "")
	require.NoError(t, err)
	assert.Equal(t, verdict.Series{{T: 0, Bytes: 100}, {T: 20, Bytes: 120}}, run.Signals["bytes"])
}

func mustCSV(t *testing.T, s string) verdict.Run {
	t.Helper()
	run, _, err := readCSV(strings.NewReader(s), "p.csv", "")
	require.NoError(t, err)
	return run
}

func TestReadCSVMalformed(t *testing.T) {
	for _, c := range []struct {
		name, in, column, want string
	}{
		{"empty", "", "", "e.csv: no header and no samples"},
		{"header only", "seconds,bytes\n", "", "e.csv: header but no samples"},
		{"no header", "0,100\n10,200\n", "", "e.csv:1: header \"0,100\" starts with a number"},
		{"one column", "seconds\n0\n", "", "e.csv:1: header \"seconds\": need a time column"},
		{"unknown column", "seconds,bytes\n0,1\n1,2\n", "rss", "e.csv:1: no column \"rss\"; columns are seconds, bytes"},
		{"non-numeric value", "seconds,bytes\n0,100\n10,lots\n", "", "e.csv:3: column bytes: \"lots\" is not a byte count"},
		{"non-numeric time", "seconds,bytes\n0,100\nsoon,100\n", "", "e.csv:3: time \"soon\""},
		{"unsorted", "seconds,bytes\n0,100\n20,100\n10,100\n", "", "e.csv:4: time 10 is not after line 3's"},
		{"short row", "seconds,bytes\n0,100\n10\n", "", "e.csv:3: 1 fields, the header has 2"},
		{"single sample", "seconds,bytes\n0,100\n", "", "signal bytes has 1 sample(s)"},
		{"negative", "seconds,bytes\n0,100\n10,-5\n", "", "e.csv:3: column bytes"},
		{"bad quoting", "seconds,bytes\n0,\"100\n", "", "e.csv:"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := readCSV(strings.NewReader(c.in), "e.csv", c.column)
			require.Error(t, err)
			assert.ErrorIs(t, err, verdict.ErrInput)
			assert.Contains(t, err.Error(), c.want)
		})
	}
}

// A CSV column named like a live heap is read as what the process keeps:
// its floors are judged beside the memory column, and a flat heap under a
// growing RSS is RETAINED. A samples.jsonl with live_heap is judged alike.
func TestAnalyzeJudgesTheLiveHeapsFloors(t *testing.T) {
	var b strings.Builder
	b.WriteString("t,rss_anon,live_heap_bytes\n")
	for s := 0; s <= 3600; s += 10 {
		live := 180.0 + 70*float64(s%75)/75 // a sawtooth around a flat 180 MiB
		rss := 600 + 120*float64(s)/3600 + float64((s*7919)%13)
		fmt.Fprintf(&b, "%d,%.0f,%.0f\n", s, rss*(1<<20), live*(1<<20))
	}
	run, ch, err := readCSV(strings.NewReader(b.String()), "x.csv", "")
	require.NoError(t, err)
	assert.Equal(t, "live_heap_bytes", ch.kept)
	assert.NotContains(t, ch.ignored, "live_heap_bytes")
	assert.Contains(t, ch.String(), "what it keeps from the floors of live_heap_bytes")
	require.NotEmpty(t, run.Kept)
	assert.NotContains(t, run.Signals, "live_heap_bytes", "not judged as a signal: its teeth are not growth")
	rep, err := judgeRun(run, ch, verdict.Config{})
	require.NoError(t, err)
	assert.Equal(t, verdict.Retained, rep.Verdict, rep.Reason)
	assert.Equal(t, exitRetained, verdictStatus(rep.Verdict))
}
