package verdict

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
	run, err := ReadCSV(strings.NewReader(operatorCSV()), "m.csv", "")
	require.NoError(t, err)
	assert.Equal(t, "rssanon", run.Choice.Signal)
	assert.Equal(t, KindRssAnon, run.Choice.Kind)
	assert.Contains(t, run.Choice.Why, "named like RssAnon")
	assert.Equal(t, "fleet_sent", run.Choice.Frames)
	assert.Equal(t, []string{"rssfile"}, run.Choice.Ignored)
	assert.Equal(t, "judging rssanon (RssAnon); frames from fleet_sent", run.Choice.String())
	assert.InDelta(t, 100, run.Context.FrameRate, 1e-9, "fleet_sent is cumulative: 1500 frames per 15 s")
	assert.ElementsMatch(t, []string{"vmrss", "rssanon", "prom_rss", "heap_inuse"}, keys(run.Signals),
		"memory columns only: never the frame counter, never an unknown column")

	rep, err := JudgeRun(run, Config{})
	require.NoError(t, err)
	assert.Equal(t, "rssanon", rep.CarriedBy)
	assert.Equal(t, "rssanon", rep.Signal)
	assert.Equal(t, Pass, rep.Verdict, rep.Reason)
	require.NotNil(t, rep.BytesPerFrame, "the frame rate reaches the verdict")
}

func keys(m map[string]Series) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// JudgeSignals alone knows only the rig's own names and would take prom_rss
// (the first non-heap name); JudgeRun follows the choice.
func TestJudgeRunFollowsTheChoice(t *testing.T) {
	run, err := ReadCSV(strings.NewReader(operatorCSV()), "m.csv", "")
	require.NoError(t, err)
	plain, err := JudgeSignals(run.Signals, run.Context, Config{})
	require.NoError(t, err)
	rep, err := JudgeRun(run, Config{})
	require.NoError(t, err)
	require.Len(t, rep.Signals, len(plain.Signals))
	for _, r := range rep.Signals {
		if r.Signal == "rssanon" {
			assert.Equal(t, r, rep.Result)
		}
	}

	// No choice: JudgeSignals as it is.
	run.Choice = Choice{}
	rep, err = JudgeRun(run, Config{})
	require.NoError(t, err)
	assert.Equal(t, plain.CarriedBy, rep.CarriedBy)
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
			_, err := ReadCSV(strings.NewReader(c.in), "n.csv", "")
			require.ErrorIs(t, err, ErrNoMemoryColumn)
			assert.False(t, errors.Is(err, ErrInput), "a usage error, not unreadable input")
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
	run, err := ReadCSV(strings.NewReader(in), "e.csv", "connections")
	require.NoError(t, err)
	assert.Equal(t, []string{"connections"}, keys(run.Signals))
	assert.Equal(t, Choice{Signal: "connections", Why: "asked for (--column)", Frames: "fleet_sent", Ignored: []string{"rss_anon"}}, run.Choice)
	assert.InDelta(t, 10, run.Context.FrameRate, 1e-9)

	run, err = ReadCSV(strings.NewReader(in), "e.csv", "fleet_sent")
	require.NoError(t, err)
	assert.Equal(t, []string{"fleet_sent"}, keys(run.Signals))
	assert.Empty(t, run.Choice.Frames, "a judged column is not also the frame rate")

	// Spellings fold when the match is unique.
	run, err = ReadCSV(strings.NewReader(in), "e.csv", "RssAnon")
	require.NoError(t, err)
	assert.Equal(t, []string{"rss_anon"}, keys(run.Signals))
	assert.Equal(t, KindRssAnon, run.Choice.Kind)

	_, err = ReadCSV(strings.NewReader(in), "e.csv", "vm_rss")
	require.ErrorIs(t, err, ErrInput)
	require.ErrorIs(t, err, ErrUnknownColumn)
	assert.Contains(t, err.Error(), `e.csv:1: no column "vm_rss"; columns are seconds, fleet_sent, connections, rss_anon`)
}

func TestReadCSVLoneColumnIsJudged(t *testing.T) {
	run, err := ReadCSV(strings.NewReader("t,bytes\n0,100\n10,120\n"), "l.csv", "")
	require.NoError(t, err)
	assert.Equal(t, Choice{Signal: "bytes", Why: "the only value column"}, run.Choice)
}

func TestReadCSVBadFrameCount(t *testing.T) {
	_, err := ReadCSV(strings.NewReader("seconds,rss,frames_total\n0,100,0\n10,100,lots\n"), "f.csv", "")
	require.ErrorIs(t, err, ErrInput)
	assert.Contains(t, err.Error(), `f.csv:3: column frames_total: "lots" is not a frame count`)
}

func TestMemoryKindSpellings(t *testing.T) {
	for name, want := range map[string]string{
		"rss_anon": KindRssAnon, "RssAnon": KindRssAnon, "rssanon": KindRssAnon, "anon_rss": KindRssAnon,
		"RSS-Anon": KindRssAnon, "rss anon bytes": KindRssAnon,
		"vm_rss": KindVmRSS, "VmRSS": KindVmRSS, "rss": KindVmRSS, "process_resident_memory_bytes": KindVmRSS, "prom_rss": KindVmRSS,
		"cgroup_working_set": KindWorkingSet, "container_memory_working_set_bytes": KindWorkingSet, "Working Set": KindWorkingSet,
		"heap_inuse": KindHeap, "go_memstats_heap_inuse_bytes": KindHeap, "HeapInuse": KindHeap,
		"go_memstats_heap_objects": "", "rssfile": "", "fleet_sent": "", "seconds": "", "bytes": "",
	} {
		assert.Equal(t, want, MemoryKind(name), name)
	}
	for name, want := range map[string]bool{
		"fleet_sent": true, "frames_sent": true, "frames": true, "frames_total": true, "Frames-Sent": true,
		"commits_sent": true, "relay_rss": false, "rss": false, "connections": false,
	} {
		assert.Equal(t, want, IsFrameCounter(name), name)
	}
}

func TestSamplesChoiceAndSelect(t *testing.T) {
	f, err := os.Open("testdata/gc-sawtooth.pass.samples.jsonl")
	require.NoError(t, err)
	defer f.Close()
	run, err := ReadSamples(f, "s.jsonl")
	require.NoError(t, err)
	assert.Equal(t, "rss_anon", run.Choice.Signal)
	assert.Equal(t, KindRssAnon, run.Choice.Kind)
	assert.Equal(t, "frames_sent", run.Choice.Frames)

	two := Run{Signals: map[string]Series{"vm_rss": {{0, 1}, {1, 1}}, "heap_inuse": {{0, 1}, {1, 1}}}}
	two.Choice = samplesChoice(two, false)
	assert.Equal(t, "vm_rss", two.Choice.Signal)

	sel, err := two.Select("HeapInuse", "s.jsonl")
	require.NoError(t, err)
	assert.Equal(t, []string{"heap_inuse"}, keys(sel.Signals))
	assert.Equal(t, "heap_inuse", sel.Choice.Signal)
	assert.Len(t, two.Signals, 2, "the run selected from is unchanged")

	_, err = two.Select("rss_anon", "s.jsonl")
	require.ErrorIs(t, err, ErrInput)
	require.ErrorIs(t, err, ErrUnknownColumn)
	assert.Contains(t, err.Error(), `s.jsonl: no signal "rss_anon"; signals are heap_inuse, vm_rss`)
}
