package firehose

import (
	"math"
	"sync"
	"time"
)

// Histogram is a fixed-size log-scaled histogram of durations: buckets grow
// by a constant factor from Min to Max, so a percentile is known to within
// that factor (2% by default) whatever the run's length. Values below Min
// count in the first bucket, above Max in an overflow bucket; negative values
// (the relay emitted before the fleet's clock said the commit existed: clock
// skew or a wrong `time`) are counted apart.
type Histogram struct {
	mu       sync.Mutex
	min      float64 // seconds
	logF     float64
	buckets  []uint64 // len = n+1, last is overflow
	count    uint64
	negative uint64
	sum      float64
	max      time.Duration
}

// HistogramConfig: zero values mean 100µs .. 1h at 2% resolution
// (about 1,000 buckets, 8 KB).
type HistogramConfig struct {
	Min, Max time.Duration
	Factor   float64
}

func NewHistogram(cfg HistogramConfig) *Histogram {
	if cfg.Min <= 0 {
		cfg.Min = 100 * time.Microsecond
	}
	if cfg.Max <= cfg.Min {
		cfg.Max = time.Hour
	}
	if cfg.Factor <= 1 {
		cfg.Factor = 1.02
	}
	logF := math.Log(cfg.Factor)
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
	if d > h.max {
		h.max = d
	}
	h.buckets[h.index(d)]++
}

func (h *Histogram) index(d time.Duration) int {
	s := d.Seconds()
	if s <= h.min {
		return 0
	}
	i := int(math.Ceil(math.Log(s/h.min) / h.logF))
	if i >= len(h.buckets)-1 {
		return len(h.buckets) - 1
	}
	return i
}

// upper is the upper bound of bucket i (the overflow bucket reports the max seen).
func (h *Histogram) upper(i int) time.Duration {
	if i == len(h.buckets)-1 {
		return h.max
	}
	return time.Duration(h.min * math.Exp(float64(i)*h.logF) * float64(time.Second))
}

// Quantile returns the upper bound of the bucket holding quantile q (0..1),
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
	rank := uint64(math.Ceil(q * float64(h.count)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.buckets {
		seen += c
		if seen >= rank {
			if u := h.upper(i); u < h.max {
				return u
			}
			return h.max
		}
	}
	return h.max
}

// LagSummary is a snapshot of a Histogram.
type LagSummary struct {
	Count                    uint64
	Negative                 uint64 // observations below zero (clock skew), not in the percentiles
	Mean                     time.Duration
	P50, P90, P99, P999, Max time.Duration
}

func (h *Histogram) Summary() LagSummary {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := LagSummary{Count: h.count, Negative: h.negative, Max: h.max,
		P50: h.quantile(0.5), P90: h.quantile(0.9), P99: h.quantile(0.99), P999: h.quantile(0.999)}
	if h.count > 0 {
		s.Mean = time.Duration(h.sum / float64(h.count) * float64(time.Second))
	}
	return s
}
