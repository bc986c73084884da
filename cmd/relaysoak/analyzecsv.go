package main

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/relaysoak/relaysoak/soak/rundir"
	"github.com/relaysoak/relaysoak/soak/verdict"
)

// A verdict on a series that is not memory (a frame counter rises like the
// worst leak) is a wrong answer, not a default. So when no column is asked
// for, the judged columns are only those named like memory, by the names the
// usual tools give them, and the verdict rests on the best of them.

// Kinds of memory signal, best first: the order in which a signal is chosen
// to carry the verdict.
const (
	kindRssAnon    = "RssAnon"     // anonymous resident memory: no reclaimable file pages
	kindVmRSS      = "VmRSS"       // all resident memory, file pages included
	kindWorkingSet = "working set" // cgroup usage less inactive file pages
	kindHeap       = "heap"        // the allocator's own gauge
)

// memoryNames are the known spellings of each kind, normalised (see
// normName), in order of preference within the kind.
var memoryNames = []struct {
	kind  string
	names []string
}{
	{kindRssAnon, []string{"rssanon", "anonrss", "rssanonymous", "anonymousrss", "processrssanon", "memoryrssanon", "anon", "anonymous"}},
	{kindVmRSS, []string{"vmrss", rundir.SignalRSS, "processresidentmemory", "promrss", "processrss", "residentmemory", "memoryrss", "containermemoryrss", "resident", "res"}},
	{kindWorkingSet, []string{"cgroupworkingset", "workingset", "containermemoryworkingset", "memoryworkingset"}},
	{kindHeap, []string{"heapinuse", "gomemstatsheapinuse", "goheapinuse", "heapalloc", "gomemstatsheapalloc", "heapused", "heap"}},
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

// memoryKind says what kind of memory a signal or column name measures (one
// of the kind constants), or "" when the name is not known as memory.
// Spellings are folded: rss_anon, RssAnon, rssanon and anon_rss are all
// kindRssAnon.
func memoryKind(name string) string {
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

// isFrameCounter says whether a column name is a known cumulative frame
// counter (fleet_sent, frames_sent, frames_total, commits_sent…): used for
// the frame rate, never judged.
func isFrameCounter(name string) bool {
	_, ok := frameRank(name)
	return ok
}

// choice says which signal carries the verdict and why, and what else the
// input held.
type choice struct {
	// signal is the signal (CSV column) that carries the verdict.
	signal string
	// kind is what signal measures (a kind constant), "" when its name is
	// not known as memory (asked for by name, or the only column).
	kind string
	// why says how signal was chosen, for people.
	why string
	// frames is the column (or samples.jsonl field) behind
	// Context.FrameRate; "" when there is none.
	frames string
	// ignored lists the CSV columns neither judged nor used as frames.
	ignored []string
	// kept is the column read as the live heap, whose floors are judged
	// beside the verdict's signal; "" when there is none.
	kept string
}

// String is the line analyze prints before its verdict:
// "judging rssanon (RssAnon); frames from fleet_sent".
func (c choice) String() string {
	s := "judging " + c.signal
	if c.kind != "" {
		s += " (" + c.kind + ")"
	}
	if c.frames != "" {
		s += "; frames from " + c.frames
	}
	if c.kept != "" {
		s += "; what it keeps from the floors of " + c.kept
	}
	return s
}

// liveHeapColumn is the column named like a live heap (live_heap,
// LiveHeap, live_heap_bytes), -1 for none.
func liveHeapColumn(header []string) int {
	return slices.IndexFunc(header, func(h string) bool {
		return slices.Contains(nameForms(h), normName(rundir.SignalLiveHeap))
	})
}

// errNoMemoryColumn is returned (wrapped) when no column was asked for and
// none of a CSV's value columns is named like memory: the message lists the
// columns and asks for --column. It is a usage error, not unreadable input:
// it does not wrap verdict.ErrInput.
var errNoMemoryColumn = errors.New("no memory column")

// errUnknownColumn is wrapped, together with verdict.ErrInput, by the error
// for a column or signal asked for that the input does not have.
var errUnknownColumn = errors.New("no such column")

// unreadable is an error about unreadable input: name, and line when it is
// not 0.
func unreadable(name string, line int, format string, args ...any) error {
	if line > 0 {
		return fmt.Errorf("%w: %s:%d: %s", verdict.ErrInput, name, line, fmt.Sprintf(format, args...))
	}
	return fmt.Errorf("%w: %s: %s", verdict.ErrInput, name, fmt.Sprintf(format, args...))
}

// timeColumns are header names taken for the time column; failing them, the
// first column is the time.
var timeColumns = []string{"seconds", "elapsed_s", "elapsed", "time", "timestamp", "t", "ts"}

// readCSV reads a CSV with a header: one time column (seconds, or RFC 3339
// times; see timeColumns) and one or more value columns. column, when not
// empty, is the one judged (whatever it holds: it was asked for). Otherwise
// a lone value column is judged, and of several only those named like
// memory are, the best carrying the verdict (the choice says which and why;
// errNoMemoryColumn when there is none). A frame counter column (fleet_sent,
// frames_sent…) gives Context.FrameRate and is never judged; other columns
// are ignored. Empty cells are gaps.
func readCSV(r io.Reader, name, column string) (verdict.Run, choice, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return verdict.Run{}, choice{}, unreadable(name, 0, "no header and no samples (empty file)")
	}
	if err != nil {
		return verdict.Run{}, choice{}, unreadable(name, 1, "%v", err)
	}
	if len(header) < 2 {
		return verdict.Run{}, choice{}, unreadable(name, 1, "header %q: need a time column and at least one column of bytes", strings.Join(header, ","))
	}
	for i := range header {
		header[i] = strings.TrimSpace(header[i])
	}
	if _, err := strconv.ParseFloat(header[0], 64); err == nil {
		return verdict.Run{}, choice{}, unreadable(name, 1, "header %q starts with a number: the first line must name the columns", strings.Join(header, ","))
	}
	tcol := 0
	for _, c := range timeColumns {
		if i := slices.IndexFunc(header, func(h string) bool { return strings.EqualFold(h, c) }); i >= 0 {
			tcol = i
			break
		}
	}
	cols, fcol, ch, err := pickColumns(header, tcol, column, name)
	if err != nil {
		return verdict.Run{}, choice{}, err
	}
	kcol := liveHeapColumn(header)
	if kcol == tcol || kcol == fcol || slices.Contains(cols, kcol) {
		kcol = -1
	}
	read := cols
	if kcol >= 0 {
		ch.kept = header[kcol]
		ch.ignored = slices.DeleteFunc(ch.ignored, func(h string) bool { return h == ch.kept })
		read = append(slices.Clip(cols), kcol)
	}

	run := verdict.Run{Signals: map[string]verdict.Series{}}
	var (
		t0       time.Time
		prev     = math.Inf(-1)
		prevLine int
		rows     int
		first    float64
	)
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			return verdict.Run{}, choice{}, unreadable(name, line, "%v", err)
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		if len(rec) != len(header) {
			return verdict.Run{}, choice{}, unreadable(name, line, "%d fields, the header has %d", len(rec), len(header))
		}
		ts := strings.TrimSpace(rec[tcol])
		el, err := strconv.ParseFloat(ts, 64)
		if err != nil {
			tm, terr := time.Parse(time.RFC3339Nano, ts)
			if terr != nil {
				return verdict.Run{}, choice{}, unreadable(name, line, "time %q (column %s) is neither seconds nor an RFC 3339 time", ts, header[tcol])
			}
			if rows == 0 {
				t0 = tm
			}
			el = tm.Sub(t0).Seconds()
		}
		if math.IsNaN(el) || math.IsInf(el, 0) {
			return verdict.Run{}, choice{}, unreadable(name, line, "time %q is not a finite number", ts)
		}
		// Seconds since the first row: exports carry Unix times.
		if rows == 0 {
			first = el
		}
		el -= first
		if el <= prev {
			return verdict.Run{}, choice{}, unreadable(name, line, "time %s is not after line %d's (rows must be in time order)", ts, prevLine)
		}
		prev, prevLine = el, line
		rows++
		if f, ok, err := frameCell(rec, fcol, header, name, line); err != nil {
			return verdict.Run{}, choice{}, err
		} else if ok {
			run.Frames = append(run.Frames, verdict.Point{T: el, Bytes: f})
		}
		for _, c := range read {
			v := strings.TrimSpace(rec[c])
			if v == "" {
				continue
			}
			b, err := strconv.ParseFloat(v, 64)
			if err != nil || math.IsNaN(b) || math.IsInf(b, 0) || b < 0 {
				return verdict.Run{}, choice{}, unreadable(name, line, "column %s: %q is not a byte count", header[c], v)
			}
			if c == kcol {
				run.Kept = append(run.Kept, verdict.Point{T: el, Bytes: b})
				continue
			}
			run.Signals[header[c]] = append(run.Signals[header[c]], verdict.Point{T: el, Bytes: b})
		}
	}
	if rows == 0 {
		return verdict.Run{}, choice{}, unreadable(name, 0, "header but no samples")
	}
	if err := checkSignals(run, name); err != nil {
		return verdict.Run{}, choice{}, err
	}
	run.Context.FrameRate = verdict.FrameRate(run.Frames)
	return run, ch, nil
}

// checkSignals says which signal, if any, is too short to judge.
func checkSignals(run verdict.Run, name string) error {
	if len(run.Signals) == 0 {
		return unreadable(name, 0, "no memory signals in any sample")
	}
	for _, k := range signalNames(run) {
		if len(run.Signals[k]) < 2 {
			return unreadable(name, 0, "signal %s has %d sample(s); a trend needs at least two", k, len(run.Signals[k]))
		}
	}
	return nil
}

// pickColumns decides, from a CSV header, which columns readCSV reads as
// signals (judged), which one is the frame counter (-1: none), and why.
// tcol is the time column; column, when not empty, is the one asked for.
func pickColumns(header []string, tcol int, column, name string) (cols []int, fcol int, c choice, err error) {
	fcol = -1
	var value []int
	for i, h := range header {
		if i == tcol {
			continue
		}
		if h == "" {
			return nil, -1, choice{}, unreadable(name, 1, "column %d has no name", i+1)
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
	finish := func(judged []int, chosen int, why string) ([]int, int, choice, error) {
		fcol := frames(chosen)
		c := choice{signal: header[chosen], kind: memoryKind(header[chosen]), why: why}
		if fcol >= 0 {
			c.frames = header[fcol]
		}
		for _, i := range value {
			if i != fcol && !slices.Contains(judged, i) {
				c.ignored = append(c.ignored, header[i])
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
			return nil, -1, choice{}, fmt.Errorf("%w: %w: %s:1: no column %q; columns are %s",
				verdict.ErrInput, errUnknownColumn, name, column, strings.Join(header, ", "))
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
		if len(value) == 1 && !isFrameCounter(header[value[0]]) {
			return finish(value, value[0], "the only value column")
		}
		return nil, -1, choice{}, fmt.Errorf("%s: %w: none of the columns %s is named like memory (RssAnon, VmRSS, working set or heap, e.g. rss_anon, vm_rss, cgroup_working_set, heap_inuse); pass --column NAME to judge one of them",
			name, errNoMemoryColumn, strings.Join(header, ", "))
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
		return 0, false, unreadable(name, line, "column %s: %q is not a frame count", header[fcol], s)
	}
	return v, true, nil
}

// samplesChoice is the choice for samples.jsonl, whose signals are memory
// by definition: the best-named one, else the one JudgeSignals would take.
func samplesChoice(run verdict.Run) choice {
	var c choice
	if len(run.Frames) > 0 {
		c.frames = "frames_sent"
	}
	if len(run.Kept) > 0 {
		c.kept = rundir.SignalLiveHeap
	}
	if len(run.Signals) == 0 {
		return c
	}
	names := signalNames(run)
	best, bestRank := "", 0
	for _, n := range names {
		if r, _, ok := memoryRank(n); ok && (best == "" || r < bestRank) {
			best, bestRank = n, r
		}
	}
	if best == "" {
		c.signal, c.why = verdict.Primary(names), "no signal named like memory; the first by name"
		return c
	}
	c.signal, c.kind, c.why = best, memoryKind(best), "named like "+memoryKind(best)
	if len(names) > 1 {
		c.why += ", the first choice among the signals (RssAnon, then VmRSS, working set, heap); the others are judged for comparison"
	}
	return c
}

// signalNames are run's signal names, sorted.
func signalNames(run verdict.Run) []string {
	names := make([]string, 0, len(run.Signals))
	for n := range run.Signals {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// selectSignal keeps only the signal of run named column (exactly, else the
// one unique match up to case and separators), for a --column given with
// samples.jsonl; name is used in the error, which wraps verdict.ErrInput and
// errUnknownColumn and lists the signals.
func selectSignal(run verdict.Run, column, name string) (verdict.Run, choice, error) {
	names := signalNames(run)
	got := ""
	if _, ok := run.Signals[column]; ok {
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
		return run, choice{}, fmt.Errorf("%w: %w: %s: no signal %q; signals are %s", verdict.ErrInput, errUnknownColumn, name, column, strings.Join(names, ", "))
	}
	out := run
	out.Signals = map[string]verdict.Series{got: run.Signals[got]}
	c := samplesChoice(run)
	c.signal, c.kind, c.why = got, memoryKind(got), "asked for (--column)"
	return out, c, nil
}

// judgeRun judges every signal of run, like verdict.JudgeRun, with the
// OS's view carried by c.signal (the reader's choice), so that a CSV's
// spellings (rssanon, vmrss) are honoured, and what the process keeps
// judged beside it when run holds a live heap. With no choice made, it is
// JudgeRun.
func judgeRun(run verdict.Run, c choice, cfg verdict.Config) (verdict.Report, error) {
	rep, err := verdict.JudgeSignals(run.Signals, run.Context, cfg)
	if err != nil {
		return rep, err
	}
	if c.signal != "" && rep.CarriedBy != c.signal {
		if _, ok := run.Signals[c.signal]; !ok {
			return verdict.Report{}, fmt.Errorf("%w: signal %s was chosen but is not in the run", errUnknownColumn, c.signal)
		}
		if rep, err = rep.Carry(c.signal); err != nil {
			return rep, err
		}
	}
	return rep.WithKept(run.Kept, run.Context, cfg)
}
