package leaks

import (
	"fmt"
	"strings"
)

// Headline is one sentence for the report's notes, "" when the log held no
// leak report.
func (r Report) Headline() string {
	if r.Leaks == 0 {
		return ""
	}
	s := fmt.Sprintf("the allocator reported %d leaked allocation%s at shutdown", r.Leaks, plural(r.Leaks))
	if len(r.Sites) > 0 {
		top := r.Sites[0]
		s += fmt.Sprintf(" from %d stack%s; the top site, %s, holds %d (%.0f%%)", r.Stacks, plural(r.Stacks), top.Where, top.Count, top.Share*100)
	}
	if r.Truncated {
		s += " (the log was cut off inside the report: a lower bound)"
	}
	return s
}

// Markdown is a section body for report.md (no heading): a table of the top
// sites and the first frames of each stack. It is "" when the log held no
// leak report, so the caller can leave the section out.
func (r Report) Markdown() string {
	if r.Leaks == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s.\n\n", capitalize(r.Headline()))
	if r.NoStack > 0 {
		fmt.Fprintf(&b, "%d leak%s had no stack trace (a build without stack traces, or a trace the log lost).\n\n", r.NoStack, plural(r.NoStack))
	}
	if len(r.Sites) == 0 {
		return b.String()
	}
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
	return b.String()
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
