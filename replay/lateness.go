package replay

import (
	"time"

	"github.com/relaysoak/relaysoak/internal/loghist"
)

// Lateness summarises how late frames were sent after the schedule made them
// due. Negative stays 0: a frame sent early counts as on time.
type Lateness = loghist.Summary

// lateness is kept over the whole run and over the current window, from
// 10 µs to 1 h at 5%: a percentile is known to within 5%, and a week's run
// costs what a minute's does.
type lateness struct{ run, window *loghist.Histogram }

func newLateness() lateness {
	cfg := loghist.Config{Min: 10 * time.Microsecond, Max: time.Hour, Factor: 1.05}
	return lateness{run: loghist.New(cfg), window: loghist.New(cfg)}
}

// observe records one frame sent d after it was due.
func (l lateness) observe(d time.Duration) {
	d = max(d, 0) // sent a hair early: a sleep that woke before the due time
	l.run.Observe(d)
	l.window.Observe(d)
}
