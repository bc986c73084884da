package harness

import (
	"context"
	"time"

	"github.com/relaysoak/relaysoak/internal/loghist"
	"github.com/relaysoak/relaysoak/internal/promtext"
	"github.com/relaysoak/relaysoak/relay"
)

// Point is one sample of a counter.
type Point struct {
	At    time.Time
	Value float64
}

// maxPoints bounds the kept metric series; older halves are thinned.
const maxPoints = 4096

func (r *Harness) scrapeLoop(ctx context.Context) {
	c := r.facts().Counters
	if c.Resolutions == "" {
		return
	}
	t := time.NewTicker(r.cfg.MetricsEvery)
	defer t.Stop()
	for {
		r.scrapeOnce(ctx, c)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// scrapeOnce reads the relay's resolutions counter, c.Resolutions.
func (r *Harness) scrapeOnce(ctx context.Context, c relay.Counters) {
	m, err := promtext.Scrape(ctx, r.target.MetricsURL(), c.Resolutions)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.scrapeErr = err.Error()
		return
	}
	now := time.Now()
	v, _ := m.Sum(c.Resolutions, nil)
	r.resolves = appendBounded(r.resolves, Point{At: now, Value: v})
	// Failed resolutions on their own: PLC faults must show there.
	if len(c.ResolutionErrors) > 0 {
		e, _ := m.Sum(c.Resolutions, c.ResolutionErrors)
		r.resolveErrs = appendBounded(r.resolveErrs, Point{At: now, Value: e})
	}
}

// LiveHeap names the relay's live-heap gauges, when its profile does.
func (r *Harness) LiveHeap() relay.LiveHeap { return r.facts().LiveHeap }

// Goroutines names the relay's gauge of its goroutines, when its profile
// does.
func (r *Harness) Goroutines() string { return r.facts().Goroutines }

// appendBounded appends p, thinning the older half of s (every other
// point) when it reaches maxPoints.
func appendBounded(s []Point, p Point) []Point {
	s = append(s, p)
	if len(s) >= maxPoints {
		half := len(s) / 2
		kept := s[:0]
		for i, p := range s {
			if i >= half || i%2 == 0 {
				kept = append(kept, p)
			}
		}
		s = kept
	}
	return s
}

// ResolveErrors is the relay's failed DID resolutions over the run so far
// (none when its profile names no such counter).
func (r *Harness) ResolveErrors() []Point {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Point(nil), r.resolveErrs...)
}

// Resolves is the relay's DID-resolution counter over the run so far (none
// when its profile names no such counter).
func (r *Harness) Resolves() []Point {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Point(nil), r.resolves...)
}

// TakeLag is the measuring consumer's lag over the commits it received
// since the last TakeLag.
func (r *Harness) TakeLag() loghist.Summary { return r.firehose.TakeLag() }
