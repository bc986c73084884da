package report

import (
	"fmt"
	"strings"
	"time"

	"github.com/relaysoak/relaysoak/internal/bytesize"
	"github.com/relaysoak/relaysoak/soak/attribute"
	"github.com/relaysoak/relaysoak/soak/crowd"
	"github.com/relaysoak/relaysoak/soak/heapdiff"
	"github.com/relaysoak/relaysoak/soak/leaks"
	"github.com/relaysoak/relaysoak/soak/probe"
	"github.com/relaysoak/relaysoak/soak/rundir"
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
	// Identities and IdentityChurn are the crowd's (crowd.Config).
	Identities    int     `json:",omitempty"`
	IdentityChurn float64 `json:",omitempty"`
	// Series is the relay's /metrics series at the first sample and the
	// last, and the families that grew; nil when not scraped.
	Series *MetricSeries `json:",omitempty"`
	// Stuck prices the stuck clients; nil when none got stuck.
	Stuck *StuckClients `json:",omitempty"`
	// PerIdentity is an attribution run's estimate of the bytes kept per
	// new identity, when it found one.
	PerIdentity *attribute.Term `json:",omitempty"`
}

// MetricSeries is how many series the relay's /metrics served when warm-up
// ended (First: its per-host series are there by then) and at the end.
type MetricSeries struct {
	First, Last int
	Grown       []probe.FamilySeries
	// NewIdentities is how many never-seen client identities connected
	// between the two counts.
	NewIdentities uint64
}

// StuckClients is what the relay held for the clients that stopped
// reading and kept their connections open.
type StuckClients struct {
	Stuck, Released uint64 // stuck, and of them let go of by the relay
	// BytesPerClient, with its interval (Lo, Hi), is memory (Signal)
	// regressed on the number stuck, fitted from FitFromS; Reason says
	// why there is none.
	BytesPerClient, Lo, Hi float64
	Signal                 string
	FitFromS               float64
	// LagS is how long after a client got stuck its memory showed (the
	// fit's best lag: the relay's queue for it filling).
	LagS   float64
	Reason string `json:",omitempty"`
}

// Found says whether the relay held something per stuck client: the
// interval excludes zero.
func (s StuckClients) Found() bool { return s.Reason == "" && s.Lo > 0 }

// releasedWord is "no", "yes", or "k of n".
func (s StuckClients) releasedWord() string {
	switch s.Released {
	case 0:
		return "no"
	case s.Stuck:
		return "yes"
	}
	return fmt.Sprintf("%d of %d", s.Released, s.Stuck)
}

// Sentence is the stuck clients' finding, for the section and the
// verdict's warnings.
func (s StuckClients) Sentence() string {
	if s.Reason != "" || s.Hi == 0 && s.Lo == 0 {
		return fmt.Sprintf("%d stuck client%s (released: %s); memory per stuck client not fitted: %s", s.Stuck, plural(int(s.Stuck)), s.releasedWord(), s.Reason)
	}
	mib := float64(1 << 20)
	return fmt.Sprintf("%+.1f MiB per stuck client (CI %.1f to %.1f, %s, held from %.0f s after it stopped reading), released: %s, over %d stuck client%s",
		s.BytesPerClient/mib, s.Lo/mib, s.Hi/mib, s.Signal, s.LagS, s.releasedWord(), s.Stuck, plural(int(s.Stuck)))
}

// gib is the byte count an identity cost is read against.
const gib = 1 << 30

// Consumers is the report's account of the consumer-side load, so the
// relay's memory can be read against it.
func Consumers(cl ConsumerLoad) Section {
	c, m := cl.Counts, cl.Mix
	churn := "never on purpose"
	if cl.Churn > 0 {
		churn = "every " + cl.Churn.String() + " on average, each"
	}
	md := fmt.Sprintf(`%d consumers besides the measuring one, reconnecting %s (resume %.2g, old cursor %.2g, slow %.2g, vanish %.2g, stuck %.2g; slow readers stop for %s).

| connects | cursor resumes | old cursors | cut off as too slow | slow, not cut | resets (vanished) | errors | frames read | replayed from the backlog |
|---|---|---|---|---|---|---|---|---|
| %d | %d | %d | %d | %d | %d | %d | %d | %d |
`, cl.Consumers, churn, m.Resume, m.OldCursor, m.Slow, m.Vanish, m.Stuck, cl.SlowFor,
		c.Connects, c.CursorResumes, c.OldCursors, c.CutOff, c.SlowNotCut, c.Resets, c.Errors, c.Frames, c.Replayed)
	md += "\n" + identitiesText(cl)
	if s := cl.Stuck; s != nil {
		md += fmt.Sprintf("\n**Stuck clients:** %s. Each stopped reading and kept its connection open until the run ended; \"released\" is whether the relay closed it meanwhile (a ping written every 5 s finds out without reading, which would unblock the relay). ", s.Sentence())
		if s.Found() {
			md += fmt.Sprintf("A stuck client's memory is held for as long as it stays connected: a bound per client, not a slope (fitted against the number stuck, from minute %.0f); %d such clients hold %d times it.\n", s.FitFromS/60, s.Stuck, s.Stuck)
		} else {
			md += "\n"
		}
	}
	if c.LastError != "" {
		md += "\nLast error: `" + c.LastError + "`\n"
	}
	return Section{Title: "Consumers", Markdown: md}
}

// identitiesText is the Consumers section's account of client identities:
// how many, how many new, what the relay's /metrics did with them and, from
// an attribution run, what each new one costs.
func identitiesText(cl ConsumerLoad) string {
	var b strings.Builder
	c := cl.Counts
	if cl.Identities <= 1 && cl.IdentityChurn == 0 {
		b.WriteString("**Client identities:** one for every consumer (one User-Agent).")
	} else {
		fmt.Fprintf(&b, "**Client identities:** %d regular, and a connect came as a never-seen one with chance %.2g; %d presented in all (`%s`). An identity is a User-Agent: every consumer dials from the rig's one address (source addresses are not varied), so a relay that tells clients by address alone sees one.",
			cl.Identities, cl.IdentityChurn, c.NewIdentities, rundir.CrowdNewIdentities)
	}
	if s := cl.Series; s != nil {
		fmt.Fprintf(&b, " The relay's /metrics served %d series when warm-up ended (or a quarter into the run) and %d at the last sample", s.First, s.Last)
		if s.NewIdentities > 0 {
			fmt.Fprintf(&b, ", while %d new identities connected", s.NewIdentities)
		}
		if len(s.Grown) == 0 {
			b.WriteString("; no family grew.")
		} else {
			b.WriteString("; families that grew: ")
			for i, g := range s.Grown[:min(len(s.Grown), 6)] {
				if i > 0 {
					b.WriteString(", ")
				}
				fmt.Fprintf(&b, "`%s` %+d (%d → %d", g.Family, g.Latest-g.First, g.First, g.Latest)
				if s.NewIdentities > 0 {
					fmt.Fprintf(&b, ", %.2g per new identity", float64(g.Latest-g.First)/float64(s.NewIdentities))
				}
				b.WriteString(")")
			}
			b.WriteString(".")
		}
	}
	if t := cl.PerIdentity; t != nil && t.Significant && t.BytesPerUnit > 0 {
		n := gib / t.BytesPerUnit
		fmt.Fprintf(&b, " Each new client identity kept %s (CI %s to %s) to the run's end: 1 GiB after %s new identities, %s a day to reach it within a month.",
			bytesize.Scaled(t.BytesPerUnit, t.BytesPerUnit), bytesize.Scaled(t.Lo, t.BytesPerUnit), bytesize.Scaled(t.Hi, t.BytesPerUnit),
			bytesize.Figures(n), bytesize.Figures(n/30))
	}
	b.WriteString("\n")
	return b.String()
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
