package replay

import (
	"math"
	"sync"
	"time"
)

// lateness is a bounded log-scaled histogram of how late frames went out
// after the schedule made them due: buckets grow by 5% from 10 µs to 1 h
// (about 400 buckets), so a week's run costs what a minute's does and a
// percentile is known to within 5%.
type lateness struct {
	mu      sync.Mutex
	buckets [latBuckets + 1]uint64 // last: above latMax
	count   uint64
	sum     float64
	max     time.Duration
}

const (
	latMin     = 10 * time.Microsecond
	latMax     = time.Hour
	latFactor  = 1.05
	latBuckets = 400 // ln(latMax/latMin)/ln(latFactor) ≈ 394
)

var latLogF = math.Log(latFactor)

func (l *lateness) observe(d time.Duration) {
	if d < 0 {
		d = 0 // sent a hair early: a sleep that woke before the due time
	}
	i := 0
	if d > latMin {
		i = min(int(math.Ceil(math.Log(float64(d)/float64(latMin))/latLogF)), latBuckets)
	}
	l.mu.Lock()
	l.buckets[i]++
	l.count++
	l.sum += d.Seconds()
	l.max = max(l.max, d)
	l.mu.Unlock()
}

// Lateness summarises how late frames were sent.
type Lateness struct {
	Count              uint64
	Mean               time.Duration
	P50, P90, P99, Max time.Duration
}

func (l *lateness) summary() Lateness {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := Lateness{Count: l.count, Max: l.max, P50: l.quantile(0.5), P90: l.quantile(0.9), P99: l.quantile(0.99)}
	if l.count > 0 {
		s.Mean = time.Duration(l.sum / float64(l.count) * float64(time.Second))
	}
	return s
}

// quantile is the upper bound of the bucket holding q, at most the max seen.
func (l *lateness) quantile(q float64) time.Duration {
	if l.count == 0 {
		return 0
	}
	rank := max(uint64(math.Ceil(q*float64(l.count))), 1)
	var seen uint64
	for i, c := range l.buckets {
		seen += c
		if seen >= rank {
			if i == latBuckets {
				return l.max
			}
			return min(time.Duration(float64(latMin)*math.Exp(float64(i)*latLogF)), l.max)
		}
	}
	return l.max
}

// take returns the summary and empties the histogram (a window's lateness).
func (l *lateness) take() Lateness {
	s := l.summary()
	l.mu.Lock()
	l.buckets, l.count, l.sum, l.max = [latBuckets + 1]uint64{}, 0, 0, 0
	l.mu.Unlock()
	return s
}
