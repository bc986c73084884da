package verdict

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/relaysoak/relaysoak/soak/rundir"
)

// primaryOrder is the precedence for the signal that carries the verdict:
// RssAnon excludes reclaimable file pages (a memory-mapped database inflates
// VmRSS); the cgroup working set includes the page cache that is still active.
var primaryOrder = []string{rundir.SignalRssAnon, rundir.SignalVmRSS, rundir.SignalRSS, rundir.SignalCgroupWorkingSet}

// Leading is the signal that carries the verdict when a run has it: the
// first in primaryOrder for which has says yes.
func Leading(has func(signal string) bool) (string, bool) {
	for _, p := range primaryOrder {
		if has(p) {
			return p, true
		}
	}
	return "", false
}

// isHeap says whether a signal is an allocator-level gauge (Go heap, a Zig
// relay's malloc arena): judged, compared, never primary while an RSS-like
// signal exists.
func isHeap(name string) bool {
	n := strings.ToLower(name)
	return strings.Contains(n, "heap") || strings.Contains(n, "arena") || strings.Contains(n, "malloc")
}

// Report is the verdict on a run with several signals: the primary signal's
// Result (flattened into the JSON), the signal that carried it, every
// signal's own Result, and where they disagree.
type Report struct {
	Result
	CarriedBy     string   `json:"carried_by"`
	Disagreements []string `json:"disagreements,omitempty"`
	Signals       []Result `json:"signals"`
	// Kept is the verdict on what the process keeps, when the run holds a
	// live heap (see JudgeRun): the floors then carry the verdict, or
	// NotYet says why they do not.
	Kept *Kept `json:"kept,omitempty"`
	// Goroutines is the verdict on the process's goroutines, when the run
	// counted them (see Report.WithGoroutines): its slope and levels are
	// goroutines, not MiB.
	Goroutines *Result `json:"goroutines,omitempty"`
	// MemoryVerdict and MemoryReason are memory's own verdict when the
	// goroutines' LEAK overrode it.
	MemoryVerdict Verdict `json:"memory_verdict,omitempty"`
	MemoryReason  string  `json:"memory_reason,omitempty"`
}

// ErrNoSignals is returned when a run has no memory series at all.
var ErrNoSignals = errors.New("no memory signals")

// JudgeSignals judges every signal and reports the primary's verdict (see
// primaryOrder; failing those, the first non-heap signal by name, then the
// first heap one), noting the signals that disagree with it.
func JudgeSignals(signals map[string]Series, ctx Context, cfg Config) (Report, error) {
	if len(signals) == 0 {
		return Report{}, ErrNoSignals
	}
	names := make([]string, 0, len(signals))
	for n := range signals {
		names = append(names, n)
	}
	slices.Sort(names)
	primary := choosePrimary(names)

	var rep Report
	for _, n := range names {
		r, err := Judge(signals[n], ctx, cfg)
		if err != nil {
			return Report{}, fmt.Errorf("signal %s: %w", n, err)
		}
		r.Signal = n
		rep.Signals = append(rep.Signals, r)
		if n == primary {
			rep.Result = r
		}
	}
	rep.CarriedBy = primary
	rep.Disagreements = disagreements(rep.Result, rep.Signals)
	return rep, nil
}

// Primary is the signal of names that JudgeSignals lets carry the verdict;
// "" when there is none.
func Primary(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return choosePrimary(slices.Sorted(slices.Values(names)))
}

// Carry returns the report with signal, one of its Signals, carrying the
// verdict in place of the primary JudgeSignals chose (a reader that knows
// its input's spellings may choose better), and the disagreements with it.
func (r Report) Carry(signal string) (Report, error) {
	i := slices.IndexFunc(r.Signals, func(s Result) bool { return s.Signal == signal })
	if i < 0 {
		return Report{}, fmt.Errorf("signal %s is not among the report's signals", signal)
	}
	r.Result = r.Signals[i]
	r.CarriedBy = signal
	r.Disagreements = disagreements(r.Result, r.Signals)
	return r, nil
}

// choosePrimary is Primary for sorted names.
func choosePrimary(names []string) string {
	if p, ok := Leading(func(n string) bool { return slices.Contains(names, n) }); ok {
		return p
	}
	for _, n := range names {
		if !isHeap(n) {
			return n
		}
	}
	return names[0]
}

// disagreements explains the signals whose verdict contradicts the primary's
// (LEAK against PASS); INCONCLUSIVE contradicts nothing.
func disagreements(p Result, all []Result) []string {
	var out []string
	for _, r := range all {
		if r.Signal == p.Signal {
			continue
		}
		pl, rl := p.Verdict == Leak, r.Verdict == Leak
		pp, rp := p.Verdict == Pass, r.Verdict == Pass
		switch {
		case pl && rp && isHeap(r.Signal):
			out = append(out, fmt.Sprintf("%s rises (%.1f MiB/hour) while %s is flat (%.1f): fragmentation, or a leak outside the heap (allocator caches, cgo, mmap, thread stacks)",
				p.Signal, p.SlopeMiBPerHour, r.Signal, r.SlopeMiBPerHour))
		case pp && rl && isHeap(r.Signal):
			out = append(out, fmt.Sprintf("%s grows (%.1f MiB/hour) while %s is flat (%.1f): the heap is filling memory already resident; it will show in RSS once that is used up",
				r.Signal, r.SlopeMiBPerHour, p.Signal, p.SlopeMiBPerHour))
		case pp && rl:
			out = append(out, fmt.Sprintf("%s rises (%.1f MiB/hour) while %s is flat (%.1f): likely file-backed or cached pages, which are reclaimable",
				r.Signal, r.SlopeMiBPerHour, p.Signal, p.SlopeMiBPerHour))
		case pl && rp:
			out = append(out, fmt.Sprintf("%s rises (%.1f MiB/hour) while %s is flat (%.1f)",
				p.Signal, p.SlopeMiBPerHour, r.Signal, r.SlopeMiBPerHour))
		}
	}
	return out
}
