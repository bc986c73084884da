package report

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/relaysoak/relaysoak/replay"
	"github.com/relaysoak/relaysoak/soak/rundir"
)

// shortfall is how far a window fell short of its target (0.02: 2%).
func shortfall(w replay.Window) float64 {
	if w.Target <= 0 {
		return 0
	}
	return math.Max(0, 1-float64(w.Frames)/w.Target)
}

// Load is a run's traffic and how it went, for its section.
type Load struct {
	Capture *rundir.CaptureInfo `json:"capture,omitempty"` // nil: synthetic traffic
	Replay  replay.Config       `json:"replay"`
	Report  replay.Report       `json:"report"`
	Err     string              `json:"error,omitempty"` // why the load stopped early
}

// LoadSection is the report's account of the load: the source, the
// schedule, the achieved rate per minute and the lateness, and a warning
// when the rig, not the relay, was the bottleneck.
func LoadSection(l Load) (Section, []string) {
	rep, rerr, rc := l.Report, l.Err, l.Replay
	var b strings.Builder
	var warnings []string
	fmt.Fprintf(&b, "| | |\n|---|---|\n")
	row := func(k, v string) { fmt.Fprintf(&b, "| %s | %s |\n", k, v) }
	if c := l.Capture; c != nil {
		row("capture", fmt.Sprintf("`%s` (%s)", c.Path, c.Mode))
		for f, sum := range c.SHA256 {
			row("sha256", fmt.Sprintf("`%s` %s", sum, f))
		}
		if len(c.Shape) > 0 {
			row("shape from the capture", strings.Join(c.Shape, ", "))
		}
		if len(c.Defaulted) > 0 {
			row("left to the defaults", strings.Join(c.Defaulted, ", "))
		}
		if c.Mode == replay.Verbatim {
			row("captured frames replayed", fmt.Sprintf("%d (kinds %v; %d identities hosted, %d made up); capture played to its end: %v",
				sumKinds(rep.ByKind), rep.ByKind, rep.Imported, rep.MadeUp, rep.CaptureEnded))
		}
	} else {
		row("source", "synthetic")
	}
	row("rate asked", fmt.Sprintf("%.0f frames/s", rc.Rate))
	row("host weights", weightsText(rc.Weights))
	if rc.RampUp > 0 {
		row("ramp-up", rc.RampUp.String())
	}
	if rc.Burst.Factor > 1 {
		row("bursts", fmt.Sprintf("%.1f× for %s every %s", rc.Burst.Factor, rc.Burst.Length, rc.Burst.Every))
	}
	if rc.Outages.Every > 0 {
		row("host outages", fmt.Sprintf("%d of %s, about every %s (%d hosts abandoned)", rep.Outages, rc.Outages.Length, rc.Outages.Every, len(rep.Abandoned)))
	}
	if c := rc.Churn; c != nil {
		row("churn per 1,000 frames", fmt.Sprintf("identity %.2g (%.0f%% rotating the key), new account %.2g, move %.2g, status %.2g, sync %.2g",
			c.Identity, c.KeyRotation*100, c.NewAccount, c.Move, c.Status, c.Sync))
	}
	row("lateness (send after due)", fmt.Sprintf("p50 %s, p99 %s, max %s", rep.Lateness.P50.Round(time.Microsecond), rep.Lateness.P99.Round(time.Microsecond), rep.Lateness.Max.Round(time.Millisecond)))
	if rep.Errors > 0 {
		row("write errors", fmt.Sprintf("%d (first: %s)", rep.Errors, strings.Join(rep.FirstErrors, "; ")))
	}
	if rerr != "" {
		warnings = append(warnings, "the load stopped with an error: "+rerr)
	}
	// Per-minute achieved rate: the whole minutes after the ramp.
	var short []string
	lo, hi, n := math.Inf(1), 0.0, 0
	for _, w := range rep.Windows {
		if w.End-w.Start < rc.Window || w.End <= rc.RampUp {
			continue
		}
		n++
		lo, hi = math.Min(lo, w.Rate), math.Max(hi, w.Rate)
		if sf := shortfall(w); sf > 0.01 {
			short = append(short, fmt.Sprintf("minute %d (%.0f of %.0f frames, %.1f%% short)", w.Index+1, float64(w.Frames), w.Target, sf*100))
		}
	}
	if n > 0 {
		row("achieved rate per minute", fmt.Sprintf("%d minutes, %.1f to %.1f frames/s", n, lo, hi))
	}
	if len(short) > 0 {
		shown := short
		if len(shown) > 5 {
			shown = append(shown[:5:5], fmt.Sprintf("and %d more", len(short)-5))
		}
		warnings = append(warnings, fmt.Sprintf("the rig, not the relay, was the bottleneck: %d minute(s) fell more than 1%% short of the rate asked — %s", len(short), strings.Join(shown, "; ")))
	}
	return Section{Title: "Load", Markdown: b.String()}, warnings
}

func sumKinds(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

func weightsText(w replay.Weights) string {
	if w.Kind == "zipf" {
		return fmt.Sprintf("zipf, s = %.2g", w.S)
	}
	return w.Kind
}
