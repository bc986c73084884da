package soak

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// progressLine is what an operator wants to see during a long run: time
// left, frames sent and the rate achieved, delivery, RSS and its slope.
func progressLine(s *sampler, started time.Time, total time.Duration) string {
	l := s.latest()
	el := time.Since(started)
	left := max(0, total-el).Round(time.Second)
	frames := 0.0
	if l.FramesSent != nil {
		frames = *l.FramesSent
	}
	rate := frames / max(el.Seconds(), 1)
	deliv := 0.0
	if sent := l.Context["commits_sent"]; sent > 0 {
		deliv = l.Context["commits_delivered"] / sent * 100
	}
	rss := "?"
	if v, ok := primary(l.Signals); ok {
		rss = fmt.Sprintf("%.0f MiB", v/(1<<20))
	}
	slope, verdict := s.slope()
	sl := "slope: warming up"
	if verdict != "" {
		sl = fmt.Sprintf("slope %+.0f MiB/h (%s so far)", slope, verdict)
	}
	return fmt.Sprintf("%s left · %.0f frames (%.0f/s) · delivered %.2f%% · lag p99 %.0f ms · RSS %s · %s",
		left, frames, rate, deliv, l.Context["lag_p99_ms"], rss, sl)
}

// progress draws a live bar on a terminal, or prints one plain line a
// minute (CI logs).
func progress(ctx context.Context, cfg Config, started time.Time, ss ...*sampler) {
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
