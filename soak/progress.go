package soak

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/relaysoak/relaysoak/internal/stats"
	"github.com/relaysoak/relaysoak/soak/rundir"
	"github.com/relaysoak/relaysoak/soak/verdict"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// progressLine is what an operator wants to see during a long run: time
// left, frames sent and the rate achieved, delivery, RSS and the live
// judgement (see progressText).
func progressLine(s *sampler, started time.Time, total time.Duration) string {
	live, kept := s.liveResult()
	return progressText(s.latest(), live, kept, time.Since(started), total)
}

// progressText renders the progress line from the latest sample and the
// live judgements (nil before the first; kept nil for a relay that serves
// no live heap) at elapsed into a run of total.
func progressText(l rundir.Line, live *verdict.Result, kept *verdict.KeptView, el, total time.Duration) string {
	left := max(0, total-el).Round(time.Second)
	frames := 0.0
	if l.FramesSent != nil {
		frames = *l.FramesSent
	}
	rate := frames / max(el.Seconds(), 1)
	deliv := 0.0
	if sent := l.Context[rundir.CommitsSent]; sent > 0 {
		deliv = l.Context[rundir.CommitsDelivered] / sent * 100
	}
	rss := "?"
	if v, ok := primary(l.Signals); ok {
		rss = fmt.Sprintf("%.0f MiB", v/(1<<20))
	}
	dark := ""
	if n := l.Context[rundir.DarkHosts]; n > 0 {
		what := "hosts"
		if n == 1 {
			what = "host"
		}
		dark = fmt.Sprintf(" · %.0f %s dark", n, what)
	}
	return fmt.Sprintf("%s left · %.0f frames (%.0f/s) · delivered %.2f%%%s · lag p99 %.0f ms · RSS %s · %s",
		left, frames, rate, deliv, dark, l.Context[rundir.LagP99Ms], rss, judgementText(live, kept, max(0, total-el)))
}

// judgementText is the live judgement in words: the slope with its interval
// once there are enough points to estimate one (with what the relay keeps
// first, when its floors are judged), the warm-up's state, and the verdict
// so far or the minutes still needed for one. What was never computed reads
// "not yet", never a zero.
func judgementText(r *verdict.Result, kept *verdict.KeptView, left time.Duration) string {
	if r == nil {
		return "slope not yet · warm-up not yet known · verdict not yet"
	}
	slope := "slope not yet"
	if r.JudgedPoints > 0 {
		slope = fmt.Sprintf("slope %+.0f MiB/h (%.0f%% CI %+.0f to %+.0f)", r.SlopeMiBPerHour, r.CILevel*100, r.SlopeCIMiBPerHour[0], r.SlopeCIMiBPerHour[1])
	}
	switch {
	case kept != nil && kept.NotYet != "":
		slope += " · " + kept.NotYet
	case kept != nil:
		f := kept.Floors
		k := "kept: floors not yet judged"
		if f.JudgedPoints > 0 {
			k = fmt.Sprintf("kept %+.1f MiB/h (%.0f%% CI %+.1f to %+.1f)", f.SlopeMiBPerHour, f.CILevel*100, f.SlopeCIMiBPerHour[0], f.SlopeCIMiBPerHour[1])
		}
		slope = k + " · RSS " + slope
		// The verdict so far is on what it keeps.
		r = &verdict.Result{Verdict: kept.Verdict, NeedMoreMinutes: kept.NeedMoreMinutes, WarmupState: r.WarmupState, WarmupEndS: r.WarmupEndS}
	}
	var warm string
	switch r.WarmupState {
	case verdict.WarmingUp:
		warm = "warming up"
	case verdict.WarmupEnded:
		warm = fmt.Sprintf("warm-up ended at %.0f min", r.WarmupEndS/60)
	case verdict.WarmupNone:
		warm = "no warm-up seen"
	default:
		warm = "warm-up not yet known"
	}
	var said string
	switch {
	case r.Verdict != verdict.Inconclusive:
		said = fmt.Sprintf("%s so far", r.Verdict)
	case r.NeedMoreMinutes != nil:
		said = fmt.Sprintf("verdict needs ~%.0f more min", *r.NeedMoreMinutes)
		if m := left.Minutes(); m > 0 && *r.NeedMoreMinutes > m {
			said += fmt.Sprintf(" (%.0f left in the run)", m)
		}
	default:
		said = "verdict not yet"
	}
	return slope + " · " + warm + " · " + said
}

// progress draws a live bar on a terminal, or prints one plain line a
// minute (CI logs). While the bars run, what is written to con lands above
// them.
func progress(ctx context.Context, cfg Config, started time.Time, con *console, ss ...*sampler) {
	names := []string{"soak "}
	if len(ss) > 1 {
		names = []string{"A ", "B "}
	}
	if !cfg.Terminal {
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				for i, s := range ss {
					fmt.Fprintf(cfg.Out, "%s %s%s\n", time.Now().UTC().Format(time.TimeOnly), names[i], progressLine(s, started, cfg.Duration))
				}
			}
		}
	}
	p := mpb.NewWithContext(ctx, mpb.WithOutput(cfg.Out), mpb.WithRefreshRate(time.Second))
	restore := con.through(p)
	total := int64(cfg.Duration.Seconds())
	var mu sync.Mutex // texts are read by mpb's render goroutine
	texts := make([]string, len(ss))
	bars := make([]*mpb.Bar, len(ss))
	for i := range ss {
		bars[i] = p.AddBar(total,
			mpb.PrependDecorators(decor.Name(names[i], decor.WC{W: 5}), decor.Elapsed(decor.ET_STYLE_MMSS)),
			mpb.AppendDecorators(decor.Any(func(decor.Statistics) string { mu.Lock(); defer mu.Unlock(); return texts[i] })),
		)
	}
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			restore()
			for _, b := range bars {
				b.Abort(false)
			}
			p.Wait()
			return
		case <-t.C:
			for i, s := range ss {
				l := progressLine(s, started, cfg.Duration)
				mu.Lock()
				texts[i] = l
				mu.Unlock()
				bars[i].SetCurrent(min(total, int64(time.Since(started).Seconds())))
			}
		}
	}
}

// steadyNeed keeps the live line's "minutes still needed" from jumping
// about: each judgement's estimate moves with the noise of the last few
// samples, so the line shows the median of the last needWindow estimates,
// each less the minutes since it was made. A run with no estimate shows
// none, and the estimates start over after one.
type steadyNeed struct {
	at, need [needWindow]float64 // seconds into the run; minutes
	n, next  int
}

const needWindow = 6

// steady notes the estimate need (minutes; nil for none) made at el
// seconds, and returns the one to show.
func (s *steadyNeed) steady(el float64, need *float64) *float64 {
	if need == nil {
		s.n, s.next = 0, 0
		return nil
	}
	s.at[s.next], s.need[s.next] = el, *need
	s.next = (s.next + 1) % needWindow
	s.n = min(s.n+1, needWindow)
	now := make([]float64, 0, needWindow)
	for i := range s.n {
		now = append(now, max(s.need[i]-(el-s.at[i])/60, 0))
	}
	m := math.Ceil(stats.Median(now))
	return &m
}
