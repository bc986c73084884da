package heapdiff

import (
	"fmt"
	"strings"
	"time"
)

// Headline is one sentence for the report's notes.
func (g Growth) Headline() string {
	s := fmt.Sprintf("the Go heap in use went from %s to %s", Bytes(g.TotalBefore), Bytes(g.TotalAfter))
	if g.Span > 0 {
		s += fmt.Sprintf(" over %s", g.Span.Round(timeUnit(g.Span)))
	}
	if len(g.Top) > 0 {
		s += fmt.Sprintf("; the function whose own allocations grew most is %s (+%s)", g.Top[0].Name, Bytes(g.Top[0].Flat))
	}
	return s
}

// Markdown is a section body for report.md (no heading): the headline and
// a table of the top functions.
func (g Growth) Markdown() string {
	var b strings.Builder
	h := g.Headline()
	fmt.Fprintf(&b, "%s%s.\n\n", strings.ToUpper(h[:1]), h[1:])
	if len(g.Top) == 0 {
		b.WriteString("No function's in-use heap grew between the two profiles.\n")
		return b.String()
	}
	b.WriteString("Growth of in-use bytes (inuse_space) between the two profiles; flat is what the function allocated itself, cum includes what it calls.\n\n")
	b.WriteString("| function | flat growth | cum growth | flat at the end |\n|---|---|---|---|\n")
	for _, f := range g.Top {
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", f.Name, signed(f.Flat), signed(f.Cum), Bytes(f.FlatAfter))
	}
	return b.String()
}

// Bytes renders a byte count with a binary unit.
func Bytes(n int64) string {
	neg := n < 0
	if neg {
		n = -n
	}
	var s string
	switch {
	case n >= 1<<30:
		s = fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		s = fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		s = fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	default:
		s = fmt.Sprintf("%d B", n)
	}
	if neg {
		return "-" + s
	}
	return s
}

func signed(n int64) string {
	if n > 0 {
		return "+" + Bytes(n)
	}
	return Bytes(n)
}

// timeUnit rounds spans to what a reader cares about: seconds for a run,
// milliseconds for a test.
func timeUnit(d time.Duration) time.Duration {
	if d >= time.Minute {
		return time.Second
	}
	return time.Millisecond
}
