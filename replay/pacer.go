package replay

import (
	"fmt"
	"math"
	"time"
)

// Pacer is the schedule, after vegeta's pacer: how many frames are due by
// a moment of the run. A sender compares it with what it has sent and sends
// the difference, so one that fell behind catches up instead of drifting:
// the schedule is open, it never slows down because the receiver is slow.
type Pacer interface {
	// Due is the number of frames the schedule expects sent after elapsed:
	// the integral of Rate from 0 to elapsed.
	Due(elapsed time.Duration) float64
	// Rate is the schedule's rate at elapsed, frames/s.
	Rate(elapsed time.Duration) float64
}

// Schedule is the Pacer of a run: Target frames/s, reached by a linear
// ramp over RampUp, with periodic bursts on top.
type Schedule struct {
	Target float64
	RampUp time.Duration
	Burst  Burst
}

// Burst injects spikes: Factor × the rate for Length, every Every. The
// first burst starts Every after the ramp ends. Factor ≤ 1 means none.
type Burst struct {
	Factor float64
	Length time.Duration // default 30 s
	Every  time.Duration // default 10 min
}

func (b Burst) withDefaults() (Burst, error) {
	if b.Factor <= 1 {
		return Burst{}, nil
	}
	if b.Length <= 0 {
		b.Length = 30 * time.Second
	}
	if b.Every <= 0 {
		b.Every = 10 * time.Minute
	}
	if b.Length >= b.Every {
		return b, fmt.Errorf("replay: a burst of %s every %s never ends: its length must be shorter than its period", b.Length, b.Every)
	}
	return b, nil
}

func (s Schedule) validate() error {
	if s.Target <= 0 || math.IsInf(s.Target, 0) || math.IsNaN(s.Target) {
		return fmt.Errorf("replay: rate must be a positive number of frames/s, got %g", s.Target)
	}
	if s.RampUp < 0 {
		return fmt.Errorf("replay: ramp-up must not be negative, got %s", s.RampUp)
	}
	_, err := s.Burst.withDefaults()
	return err
}

// Due implements Pacer.
func (s Schedule) Due(elapsed time.Duration) float64 {
	if elapsed <= 0 {
		return 0
	}
	t, r := elapsed.Seconds(), s.RampUp.Seconds()
	var due float64
	if t < r {
		due = s.Target * t * t / (2 * r)
	} else {
		due = s.Target * (r/2 + t - r)
	}
	if b := s.Burst; b.Factor > 1 {
		due += (b.Factor - 1) * s.Target * burstTime(t, r, b.Length.Seconds(), b.Every.Seconds())
	}
	return due
}

// Rate implements Pacer.
func (s Schedule) Rate(elapsed time.Duration) float64 {
	if elapsed < 0 {
		return 0
	}
	t, r := elapsed.Seconds(), s.RampUp.Seconds()
	rate := s.Target
	if t < r {
		rate = s.Target * t / r
	}
	if b := s.Burst; b.Factor > 1 && inBurst(t, r, b.Length.Seconds(), b.Every.Seconds()) {
		rate *= b.Factor
	}
	return rate
}

// burstTime is the time spent in bursts in [0, t]: bursts of length l start
// at ramp + k·every, k ≥ 1.
func burstTime(t, ramp, l, every float64) float64 {
	u := t - ramp - every
	if u <= 0 {
		return 0
	}
	k := math.Floor(u / every)
	return k*l + math.Min(l, u-k*every)
}

func inBurst(t, ramp, l, every float64) bool {
	u := t - ramp - every
	return u >= 0 && u-math.Floor(u/every)*every < l
}

// scheduledAt estimates when the schedule made frame n (0-based) due,
// given that at elapsed it has made due frames due at rate: exact for a
// constant rate, and off by a fraction of a tick in a ramp.
func scheduledAt(n int64, elapsed time.Duration, due, rate float64) time.Duration {
	if rate <= 0 {
		return elapsed
	}
	back := (due - float64(n+1)) / rate
	if back <= 0 {
		return elapsed
	}
	at := elapsed - time.Duration(back*float64(time.Second))
	return max(at, 0)
}

// nextWake is how long a sender that has sent `sent` frames may sleep
// before the next is due: never more than 10 ms (the rate may change, and
// windows close on time), never less than 200 µs (sleeping shorter costs
// more than batching).
func nextWake(p Pacer, elapsed time.Duration, sent int64) time.Duration {
	rate := p.Rate(elapsed)
	if rate <= 0 {
		return 10 * time.Millisecond
	}
	gap := (float64(sent+1) - p.Due(elapsed)) / rate
	d := time.Duration(gap * float64(time.Second))
	return min(max(d, 200*time.Microsecond), 10*time.Millisecond)
}
