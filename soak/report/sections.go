package report

import (
	"fmt"
	"strings"
	"time"

	"github.com/relaysoak/relaysoak/internal/bytesize"
	"github.com/relaysoak/relaysoak/soak/crowd"
	"github.com/relaysoak/relaysoak/soak/heapdiff"
	"github.com/relaysoak/relaysoak/soak/leaks"
)

// HeapGrowth is the section on where a Go relay's heap grew between the
// end of warm-up and the end of the run: a headline and the top functions.
func HeapGrowth(g heapdiff.Growth) Section {
	var b strings.Builder
	s := fmt.Sprintf("the Go heap in use went from %s to %s", bytesize.IEC(g.TotalBefore), bytesize.IEC(g.TotalAfter))
	if g.Span > 0 {
		unit := time.Millisecond // a test's span; a run's reads in seconds
		if g.Span >= time.Minute {
			unit = time.Second
		}
		s += fmt.Sprintf(" over %s", g.Span.Round(unit))
	}
	if len(g.Top) > 0 {
		s += fmt.Sprintf("; the function whose own allocations grew most is %s (+%s)", g.Top[0].Name, bytesize.IEC(g.Top[0].Flat))
	}
	fmt.Fprintf(&b, "%s.\n\n", capitalize(s))
	if len(g.Top) == 0 {
		b.WriteString("No function's in-use heap grew between the two profiles.\n")
	} else {
		b.WriteString("Growth of in-use bytes (inuse_space) between the two profiles; flat is what the function allocated itself, cum includes what it calls.\n\n")
		b.WriteString("| function | flat growth | cum growth | flat at the end |\n|---|---|---|---|\n")
		for _, f := range g.Top {
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", f.Name, bytesize.SignedIEC(f.Flat), bytesize.SignedIEC(f.Cum), bytesize.IEC(f.FlatAfter))
		}
	}
	return Section{Title: "Heap growth (end of warm-up → end of run)", Markdown: b.String()}
}

// LeakSites is the section on the leak report a diagnostic build's
// allocator printed at shutdown: a table of the top sites and the first
// frames of each stack; ok is false when the log held no leak report.
func LeakSites(r leaks.Report) (sec Section, ok bool) {
	if r.Leaks == 0 {
		return Section{}, false
	}
	var b strings.Builder
	s := fmt.Sprintf("the allocator reported %d leaked allocation%s at shutdown", r.Leaks, plural(r.Leaks))
	if len(r.Sites) > 0 {
		top := r.Sites[0]
		s += fmt.Sprintf(" from %d stack%s; the top site, %s, holds %d (%.0f%%)", r.Stacks, plural(r.Stacks), top.Where, top.Count, top.Share*100)
	}
	if r.Truncated {
		s += " (the log was cut off inside the report: a lower bound)"
	}
	fmt.Fprintf(&b, "%s.\n\n", capitalize(s))
	if r.NoStack > 0 {
		fmt.Fprintf(&b, "%d leak%s had no stack trace (a build without stack traces, or a trace the log lost).\n\n", r.NoStack, plural(r.NoStack))
	}
	if len(r.Sites) > 0 {
		b.WriteString("| # | leaks | share | where |\n|---|---|---|---|\n")
		for i, s := range r.Sites {
			cut := ""
			if s.Cut > 0 {
				cut = fmt.Sprintf(" (%d cut off)", s.Cut)
			}
			fmt.Fprintf(&b, "| %d | %d%s | %.1f%% | `%s` |\n", i+1, s.Count, cut, s.Share*100, s.Where)
		}
		if rest := r.Stacks - len(r.Sites); rest > 0 {
			fmt.Fprintf(&b, "\n%d more stack%s not shown.\n", rest, plural(rest))
		}
		for i, s := range r.Sites {
			fmt.Fprintf(&b, "\n%d. `%s`, first frames:\n\n```\n", i+1, s.Where)
			for _, f := range s.Frames {
				fmt.Fprintf(&b, "%s\n", f)
			}
			b.WriteString("```\n")
		}
	}
	return Section{Title: "Leak sites (allocator report at shutdown)", Markdown: b.String()}, true
}

// ConsumerLoad is the consumer-side load of a run: how many extra
// consumers, how they churned, and what they counted.
type ConsumerLoad struct {
	Consumers int
	Churn     time.Duration // mean time between reconnects; 0: never on purpose
	Mix       crowd.Mix
	SlowFor   time.Duration
	Counts    crowd.Counts
}

// Consumers is the report's account of the consumer-side load, so the
// relay's memory can be read against it.
func Consumers(cl ConsumerLoad) Section {
	c, m := cl.Counts, cl.Mix
	churn := "never on purpose"
	if cl.Churn > 0 {
		churn = "every " + cl.Churn.String() + " on average, each"
	}
	md := fmt.Sprintf(`%d consumers besides the measuring one, reconnecting %s (resume %.2g, old cursor %.2g, slow %.2g, vanish %.2g; slow readers stop for %s).

| connects | cursor resumes | old cursors | cut off as too slow | slow, not cut | resets (vanished) | errors | frames read | replayed from the backlog |
|---|---|---|---|---|---|---|---|---|
| %d | %d | %d | %d | %d | %d | %d | %d | %d |
`, cl.Consumers, churn, m.Resume, m.OldCursor, m.Slow, m.Vanish, cl.SlowFor,
		c.Connects, c.CursorResumes, c.OldCursors, c.CutOff, c.SlowNotCut, c.Resets, c.Errors, c.Frames, c.Replayed)
	if c.LastError != "" {
		md += "\nLast error: `" + c.LastError + "`\n"
	}
	return Section{Title: "Consumers", Markdown: md}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
