// Package loghist is a fixed-size histogram of durations with log-scaled
// buckets: buckets grow by a constant factor from Min to Max, so a quantile
// is known to within that factor and memory stays the same whatever the run's
// length. Values below Min count in the first bucket, above Max in an
// overflow bucket that reports the largest value seen; negative values are
// counted apart and left out of the quantiles.
//
// It knows durations only, nothing of replay, relays or firehoses: what is
// timed, and what a negative value means, belong to the caller.
package loghist

import (
	"math"
	"sync"
	"time"
)

// Config sets the buckets' range and growth. Zero values mean 100 µs to 1 h
// at 2% (about 900 buckets, 7 KB).
type Config struct {
	Min, Max time.Duration
	// Factor is the ratio of one bucket's upper bound to the one before:
	// the relative error of a quantile.
	Factor float64
}

// Histogram is safe for concurrent use.
type Histogram struct {
	min  float64 // seconds
	logF float64

	mu       sync.Mutex
	buckets  []uint64 // last is overflow
	count    uint64
	negative uint64
	sum      float64 // seconds
	max      time.Duration
}

// New makes an empty histogram.
func New(cfg Config) *Histogram {
	if cfg.Min <= 0 {
		cfg.Min = 100 * time.Microsecond
	}
	if cfg.Max <= cfg.Min {
		cfg.Max = max(time.Hour, cfg.Min)
	}
	if cfg.Factor <= 1 {
		cfg.Factor = 1.02
	}
	logF := math.Log(cfg.Factor)
	// Bucket i holds (Min·F^(i-1), Min·F^i]; the last regular one reaches Max.
	n := int(math.Ceil(math.Log(cfg.Max.Seconds()/cfg.Min.Seconds())/logF)) + 1
	return &Histogram{min: cfg.Min.Seconds(), logF: logF, buckets: make([]uint64, n+1)}
}

// Observe records one duration.
func (h *Histogram) Observe(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if d < 0 {
		h.negative++
		return
	}
	h.count++
	h.sum += d.Seconds()
	h.max = max(h.max, d)
	h.buckets[h.index(d)]++
}

func (h *Histogram) index(d time.Duration) int {
	s := d.Seconds()
	if s <= h.min {
		return 0
	}
	return min(int(math.Ceil(math.Log(s/h.min)/h.logF)), len(h.buckets)-1)
}

// upper is the upper bound of bucket i; the overflow bucket's is the max seen.
func (h *Histogram) upper(i int) time.Duration {
	if i == len(h.buckets)-1 {
		return h.max
	}
	// Rounded: truncating would put the bound a nanosecond under values
	// the bucket holds.
	return time.Duration(math.Round(h.min * math.Exp(float64(i)*h.logF) * float64(time.Second)))
}

// Quantile is the upper bound of the bucket holding quantile q (0..1),
// never above the largest value seen; 0 when empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.quantile(q)
}

func (h *Histogram) quantile(q float64) time.Duration {
	if h.count == 0 {
		return 0
	}
	rank := max(uint64(math.Ceil(q*float64(h.count))), 1)
	var seen uint64
	for i, c := range h.buckets {
		seen += c
		if seen >= rank {
			return min(h.upper(i), h.max)
		}
	}
	return h.max
}

// Summary is a snapshot of a Histogram.
type Summary struct {
	Count                    uint64
	Negative                 uint64 // observations below zero, not in Count nor the quantiles
	Mean                     time.Duration
	P50, P90, P99, P999, Max time.Duration
}

// Summary reads the histogram.
func (h *Histogram) Summary() Summary {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.summary()
}

// Take reads the histogram and empties it in one step, so an observation
// lands in exactly one of two successive windows.
func (h *Histogram) Take() Summary {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.summary()
	clear(h.buckets)
	h.count, h.negative, h.sum, h.max = 0, 0, 0, 0
	return s
}

func (h *Histogram) summary() Summary {
	s := Summary{Count: h.count, Negative: h.negative, Max: h.max,
		P50: h.quantile(0.5), P90: h.quantile(0.9), P99: h.quantile(0.99), P999: h.quantile(0.999)}
	if h.count > 0 {
		s.Mean = time.Duration(h.sum / float64(h.count) * float64(time.Second))
	}
	return s
}
