package soak

import (
	"context"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/relaysoak/relaysoak/captures"
	"github.com/relaysoak/relaysoak/fakepds"
	"github.com/relaysoak/relaysoak/replay"
	"github.com/relaysoak/relaysoak/soak/report"
)

// CaptureInfo names the capture a run replayed, as run.json and the
// report do: the path and the digests of the files as given (not of a
// temporary import), so the run can be repeated and checked.
type CaptureInfo struct {
	Path   string            `json:"path"`
	Mode   replay.Mode       `json:"mode"`
	SHA256 map[string]string `json:"sha256"`
	// From the capture: what the re-hosted traffic follows, and what was
	// left to the defaults (too few samples).
	Shape     []string `json:"shape_from_capture,omitempty"`
	Defaulted []string `json:"defaulted,omitempty"`
}

// load is a run's traffic: the replay that decides what is written when,
// the fleet's commit shape, and the capture it came from.
type load struct {
	replay  replay.Config
	shape   *fakepds.Shape
	capture *CaptureInfo
	attr    *attribution // an attribution run's plan, nil otherwise
	cleanup func()

	mu      sync.Mutex
	windows []replay.Window // kept by the replay too; copied at the end
	report  replay.Report
	err     error
}

// prepareLoad resolves the capture (a raw dump is imported into a
// temporary file), derives the shape of re-hosted traffic from it, and
// fills every default, so run.json records the load as it really is.
func prepareLoad(ctx context.Context, cfg Config, out io.Writer) (*load, error) {
	l := &load{cleanup: func() {}}
	rc := replay.Config{
		Rate: cfg.Rate, Duration: cfg.Duration, RampUp: cfg.RampUp, Weights: cfg.Weights,
		Burst: cfg.Burst, Outages: cfg.Outages, Seed: cfg.Seed, Churn: cfg.Churn,
	}
	if cfg.Capture != "" {
		file, cleanup, err := captures.Resolve(ctx, cfg.Capture, func(f string, a ...any) { fmt.Fprintf(out, "relaysoak: "+f+"\n", a...) })
		if err != nil {
			return nil, err
		}
		l.cleanup = cleanup
		sums, err := captures.SourceDigests(cfg.Capture)
		if err != nil {
			cleanup()
			return nil, err
		}
		p, err := replay.ProfileFromCapture(file, replay.ShapeConfig{})
		if err != nil {
			cleanup()
			return nil, err
		}
		l.shape = &p.Shape
		if rc.Churn == nil {
			rc.Churn = &p.Churn
		}
		mode := cfg.CaptureMode
		if mode == "" {
			mode = replay.Rehosted
		}
		l.capture = &CaptureInfo{Path: cfg.Capture, Mode: mode, SHA256: sums, Shape: p.FromCapture, Defaulted: p.Defaulted}
		rc.Capture = file
		if mode == replay.Verbatim {
			// The real frames first, then re-hosted traffic in their shape
			// for the rest of the run.
			rc.Mode, rc.ThenRehosted = replay.Verbatim, true
		}
	}
	// Checked (and its defaults filled) now, before anything starts.
	var err error
	if l.replay, err = rc.Normalize(); err != nil {
		l.cleanup()
		return nil, err
	}
	return l, nil
}

// run drives the first arm's fleet (an A/B soak's fleet is shared) until
// loadCtx ends, telling every sampler of each closed window.
func (l *load) run(loadCtx context.Context, a *arm, samplers ...*sampler) {
	rc := l.replay
	rc.Duration = 0 // loadCtx ends the load; a relay restart must not reset the clock
	rc.OnWindow = func(w replay.Window) {
		for _, s := range samplers {
			s.noteWindow(w)
		}
	}
	rep, err := a.rig.Load(loadCtx, rc)
	l.mu.Lock()
	l.report, l.err = rep, err
	l.mu.Unlock()
}

// shortfall is how far a window fell short of its target (0.02: 2%).
func shortfall(w replay.Window) float64 {
	if w.Target <= 0 {
		return 0
	}
	return math.Max(0, 1-float64(w.Frames)/w.Target)
}

// section is the report's account of the load: the source, the schedule,
// the achieved rate per minute and the lateness, and a warning when the
// rig, not the relay, was the bottleneck.
func (l *load) section() (report.Section, []string) {
	l.mu.Lock()
	rep, rerr := l.report, l.err
	l.mu.Unlock()
	var b strings.Builder
	var warnings []string
	rc := l.replay
	fmt.Fprintf(&b, "| | |\n|---|---|\n")
	row := func(k, v string) { fmt.Fprintf(&b, "| %s | %s |\n", k, v) }
	if c := l.capture; c != nil {
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
	if rerr != nil {
		warnings = append(warnings, "the load stopped with an error: "+rerr.Error())
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
	return report.Section{Title: "Load", Markdown: b.String()}, warnings
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
