package verdict

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/relaysoak/relaysoak/soak/rundir"
)

// A verdict on a series that is not memory (a frame counter rises like the
// worst leak) is a wrong answer, not a default. So when no column is asked
// for, the judged columns are only those named like memory, by the names the
// usual tools give them, and the verdict rests on the best of them.

// Kinds of memory signal, best first: the order in which a signal is chosen
// to carry the verdict.
const (
	KindRssAnon    = "RssAnon"     // anonymous resident memory: no reclaimable file pages
	KindVmRSS      = "VmRSS"       // all resident memory, file pages included
	KindWorkingSet = "working set" // cgroup usage less inactive file pages
	KindHeap       = "heap"        // the allocator's own gauge
)

// memoryNames are the known spellings of each kind, normalised (see
// normName), in order of preference within the kind.
var memoryNames = []struct {
	kind  string
	names []string
}{
	{KindRssAnon, []string{"rssanon", "anonrss", "rssanonymous", "anonymousrss", "processrssanon", "memoryrssanon", "anon", "anonymous"}},
	{KindVmRSS, []string{"vmrss", rundir.SignalRSS, "processresidentmemory", "promrss", "processrss", "residentmemory", "memoryrss", "containermemoryrss", "resident", "res"}},
	{KindWorkingSet, []string{"cgroupworkingset", "workingset", "containermemoryworkingset", "memoryworkingset"}},
	{KindHeap, []string{"heapinuse", "gomemstatsheapinuse", "goheapinuse", "heapalloc", "gomemstatsheapalloc", "heapused", "heap"}},
}

// frameNames are the known spellings of a cumulative frame counter,
// normalised, best first.
var frameNames = []string{"fleetsent", "fleetframessent", "framessent", "frames", "framecount", "nframes",
	"commitssent", "commits", "eventssent", "events", "messagessent"}

// normName folds the spellings of a column name together: case, and the
// separators ('_', '-', ' ', '.', ':') the tools disagree on.
func normName(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// nameForms are the forms a name is matched in: as it is, and without the
// unit or counter suffix that exporters add (process_resident_memory_bytes,
// frames_total).
func nameForms(name string) []string {
	n := normName(name)
	forms := []string{n}
	for _, suf := range []string{"bytes", "total"} {
		if t, ok := strings.CutSuffix(n, suf); ok && t != "" {
			forms = append(forms, t)
		}
	}
	return forms
}

// memoryRank is a name's place in memoryNames (lower is better) and its
// kind; ok is false for a name not known as memory.
func memoryRank(name string) (rank int, kind string, ok bool) {
	forms := nameForms(name)
	for _, k := range memoryNames {
		for _, n := range k.names {
			if slices.Contains(forms, n) {
				return rank, k.kind, true
			}
			rank++
		}
	}
	return 0, "", false
}

// MemoryKind says what kind of memory a signal or column name measures (one
// of the Kind constants), or "" when the name is not known as memory.
// Spellings are folded: rss_anon, RssAnon, rssanon and anon_rss are all
// KindRssAnon.
func MemoryKind(name string) string {
	_, k, _ := memoryRank(name)
	return k
}

// frameRank is a name's place in frameNames; ok is false for a name not
// known as a frame counter.
func frameRank(name string) (int, bool) {
	forms := nameForms(name)
	for i, n := range frameNames {
		if slices.Contains(forms, n) {
			return i, true
		}
	}
	return 0, false
}

// IsFrameCounter says whether a column name is a known cumulative frame
// counter (fleet_sent, frames_sent, frames_total, commits_sent…): used for
// the frame rate, never judged.
func IsFrameCounter(name string) bool {
	_, ok := frameRank(name)
	return ok
}

// Choice says which signal carries the verdict and why, and what else the
// input held.
type Choice struct {
	// Signal is the signal (CSV column) that carries the verdict.
	Signal string `json:"signal"`
	// Kind is what Signal measures (a Kind constant), "" when its name is
	// not known as memory (asked for by name, or the only column).
	Kind string `json:"kind,omitempty"`
	// Why says how Signal was chosen, for people.
	Why string `json:"why"`
	// Frames is the column (or samples.jsonl field) behind
	// Context.FrameRate; "" when there is none.
	Frames string `json:"frames,omitempty"`
	// Ignored lists the CSV columns neither judged nor used as frames.
	Ignored []string `json:"ignored,omitempty"`
}

// String is the line a command prints before its verdict:
// "judging rssanon (RssAnon); frames from fleet_sent".
func (c Choice) String() string {
	s := "judging " + c.Signal
	if c.Kind != "" {
		s += " (" + c.Kind + ")"
	}
	if c.Frames != "" {
		s += "; frames from " + c.Frames
	}
	return s
}

// ErrNoMemoryColumn is returned (wrapped) when no column was asked for and
// none of a CSV's value columns is named like memory: the message lists the
// columns and asks for --column. It is a usage error, not unreadable input:
// it does not wrap ErrInput.
var ErrNoMemoryColumn = errors.New("no memory column")

// ErrUnknownColumn is wrapped, together with ErrInput, by the error for a
// column or signal asked for that the input does not have.
var ErrUnknownColumn = errors.New("no such column")

// pickColumns decides, from a CSV header, which columns ReadCSV reads as
// signals (judged), which one is the frame counter (-1: none), and why.
// tcol is the time column; column, when not empty, is the one asked for.
func pickColumns(header []string, tcol int, column, name string) (cols []int, fcol int, c Choice, err error) {
	fcol = -1
	var value []int
	for i, h := range header {
		if i == tcol {
			continue
		}
		if h == "" {
			return nil, -1, Choice{}, inputErr(name, 1, "column %d has no name", i+1)
		}
		value = append(value, i)
	}

	// The best-named frame counter among the columns other than skip.
	frames := func(skip int) int {
		best, bestRank := -1, 0
		for _, i := range value {
			if r, ok := frameRank(header[i]); ok && i != skip && (best < 0 || r < bestRank) {
				best, bestRank = i, r
			}
		}
		return best
	}
	finish := func(judged []int, chosen int, why string) ([]int, int, Choice, error) {
		fcol := frames(chosen)
		c := Choice{Signal: header[chosen], Kind: MemoryKind(header[chosen]), Why: why}
		if fcol >= 0 {
			c.Frames = header[fcol]
		}
		for _, i := range value {
			if i != fcol && !slices.Contains(judged, i) {
				c.Ignored = append(c.Ignored, header[i])
			}
		}
		return judged, fcol, c, nil
	}

	if column != "" {
		i := slices.Index(header, column)
		if i < 0 || i == tcol {
			// A unique match up to case and separators is what was meant.
			i = -1
			for _, j := range value {
				if normName(header[j]) == normName(column) {
					if i >= 0 {
						i = -1
						break
					}
					i = j
				}
			}
		}
		if i < 0 {
			return nil, -1, Choice{}, fmt.Errorf("%w: %w: %s:1: no column %q; columns are %s",
				ErrInput, ErrUnknownColumn, name, column, strings.Join(header, ", "))
		}
		return finish([]int{i}, i, "asked for (--column)")
	}

	var mem []int
	for _, i := range value {
		if _, _, ok := memoryRank(header[i]); ok {
			mem = append(mem, i)
		}
	}
	if len(mem) == 0 {
		// One column that is not a frame counter is unambiguous: the file
		// holds that series and nothing else.
		if len(value) == 1 && !IsFrameCounter(header[value[0]]) {
			return finish(value, value[0], "the only value column")
		}
		return nil, -1, Choice{}, fmt.Errorf("%s: %w: none of the columns %s is named like memory (RssAnon, VmRSS, working set or heap, e.g. rss_anon, vm_rss, cgroup_working_set, heap_inuse); pass --column NAME to judge one of them",
			name, ErrNoMemoryColumn, strings.Join(header, ", "))
	}
	chosen := mem[0]
	for _, i := range mem[1:] {
		ri, _, _ := memoryRank(header[i])
		rc, _, _ := memoryRank(header[chosen])
		if ri < rc {
			chosen = i
		}
	}
	_, kind, _ := memoryRank(header[chosen])
	why := "named like " + kind
	if len(mem) > 1 {
		why += ", the first choice among the memory columns (RssAnon, then VmRSS, working set, heap); the others are judged for comparison"
	}
	return finish(mem, chosen, why)
}

// frameCell reads a frame counter's cell: ok is false for an empty one (a
// gap).
func frameCell(rec []string, fcol int, header []string, name string, line int) (v float64, ok bool, err error) {
	if fcol < 0 {
		return 0, false, nil
	}
	s := strings.TrimSpace(rec[fcol])
	if s == "" {
		return 0, false, nil
	}
	v, err = strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return 0, false, inputErr(name, line, "column %s: %q is not a frame count", header[fcol], s)
	}
	return v, true, nil
}

// samplesChoice is the Choice for samples.jsonl, whose signals are memory
// by definition: the best-named one, else the one JudgeSignals would take.
func samplesChoice(run Run, hasFrames bool) Choice {
	var c Choice
	if hasFrames {
		c.Frames = "frames_sent"
	}
	if len(run.Signals) == 0 {
		return c
	}
	names := make([]string, 0, len(run.Signals))
	for n := range run.Signals {
		names = append(names, n)
	}
	slices.Sort(names)
	best, bestRank := "", 0
	for _, n := range names {
		if r, _, ok := memoryRank(n); ok && (best == "" || r < bestRank) {
			best, bestRank = n, r
		}
	}
	if best == "" {
		c.Signal, c.Why = choosePrimary(names), "no signal named like memory; the first by name"
		return c
	}
	c.Signal, c.Kind, c.Why = best, MemoryKind(best), "named like "+MemoryKind(best)
	if len(names) > 1 {
		c.Why += ", the first choice among the signals (RssAnon, then VmRSS, working set, heap); the others are judged for comparison"
	}
	return c
}

// JudgeRun judges every signal of run, like JudgeSignals, with the verdict
// carried by run.Choice.Signal (ReadCSV's and ReadSamples' choice), so that
// a CSV's spellings (rssanon, vmrss) are honoured. With no choice made, it
// is JudgeSignals.
func JudgeRun(run Run, cfg Config) (Report, error) {
	rep, err := JudgeSignals(run.Signals, run.Context, cfg)
	if err != nil || run.Choice.Signal == "" || rep.CarriedBy == run.Choice.Signal {
		return rep, err
	}
	i := slices.IndexFunc(rep.Signals, func(r Result) bool { return r.Signal == run.Choice.Signal })
	if i < 0 {
		return Report{}, fmt.Errorf("%w: signal %s was chosen but is not in the run", ErrUnknownColumn, run.Choice.Signal)
	}
	rep.Result = rep.Signals[i]
	rep.CarriedBy = run.Choice.Signal
	rep.Disagreements = disagreements(rep.Result, rep.Signals)
	return rep, nil
}

// Select keeps only the signal named column (exactly, else the one unique
// match up to case and separators), for a --column given with
// samples.jsonl; name is used in the error, which wraps ErrInput and
// ErrUnknownColumn and lists the signals.
func (r Run) Select(column, name string) (Run, error) {
	names := make([]string, 0, len(r.Signals))
	for n := range r.Signals {
		names = append(names, n)
	}
	slices.Sort(names)
	got := ""
	if _, ok := r.Signals[column]; ok {
		got = column
	} else {
		for _, n := range names {
			if normName(n) == normName(column) {
				if got != "" {
					got = ""
					break
				}
				got = n
			}
		}
	}
	if got == "" {
		return r, fmt.Errorf("%w: %w: %s: no signal %q; signals are %s", ErrInput, ErrUnknownColumn, name, column, strings.Join(names, ", "))
	}
	out := r
	out.Signals = map[string]Series{got: r.Signals[got]}
	out.Choice.Signal, out.Choice.Kind, out.Choice.Why = got, MemoryKind(got), "asked for (--column)"
	out.Choice.Ignored = nil
	return out, nil
}
