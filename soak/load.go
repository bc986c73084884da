package soak

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/relaysoak/relaysoak/captures"
	"github.com/relaysoak/relaysoak/fakepds"
	"github.com/relaysoak/relaysoak/replay"
	"github.com/relaysoak/relaysoak/soak/report"
	"github.com/relaysoak/relaysoak/soak/rundir"
)

// load is a run's traffic: the replay that decides what is written when,
// the fleet's commit shape, and the capture it came from.
type load struct {
	replay  replay.Config
	shape   *fakepds.Shape
	capture *rundir.CaptureInfo
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
		l.capture = &rundir.CaptureInfo{Path: cfg.Capture, Mode: mode, SHA256: sums, Shape: p.FromCapture, Defaulted: p.Defaulted}
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

// finding is the load as the report tells it.
func (l *load) finding() report.Load {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := report.Load{Capture: l.capture, Replay: l.replay, Report: l.report}
	if l.err != nil {
		f.Err = l.err.Error()
	}
	return f
}
