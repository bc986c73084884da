package verdict

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/relaysoak/relaysoak/internal/stats"
)

// Point is one memory sample: seconds since the run started, and bytes.
type Point struct {
	T     float64 // seconds since the start of the run
	Bytes float64
}

// Series is one memory signal over a run, in time order.
type Series []Point

// ErrTooShort is returned for a series with fewer than two samples: there is
// no trend to judge in one point.
var ErrTooShort = errors.New("need at least two samples")

// Validate reports the first sample that makes the series unusable: times
// that do not strictly increase, and values that are negative, NaN or infinite.
func (s Series) Validate() error {
	if len(s) < 2 {
		return fmt.Errorf("%d sample(s): %w", len(s), ErrTooShort)
	}
	for i, p := range s {
		if math.IsNaN(p.T) || math.IsInf(p.T, 0) {
			return fmt.Errorf("sample %d: time %v is not a finite number", i, p.T)
		}
		if math.IsNaN(p.Bytes) || math.IsInf(p.Bytes, 0) || p.Bytes < 0 {
			return fmt.Errorf("sample %d: value %v is not a non-negative finite number", i, p.Bytes)
		}
		if i > 0 && p.T <= s[i-1].T {
			return fmt.Errorf("sample %d: time %v s is not after the previous sample's %v s (times must increase)", i, p.T, s[i-1].T)
		}
	}
	return nil
}

const (
	mib         = 1 << 20
	secPerHour  = 3600.0
	minFitPoint = 8 // fewer thinned points than this cannot carry a trend test
)

// thinned is a series reduced to at most maxPoints points, in the units the
// statistics use: hours since origin and MiB.
type thinned struct {
	t, y []float64
}

// thin bins s by time into at most maxPoints equal-width bins and keeps each
// bin's median value (at the bins' mean time). Medians make bins robust to GC
// spikes and single outliers; empty bins (sampling gaps) are dropped. Cost is
// O(n log(n/maxPoints)), and everything downstream sees ≤ maxPoints points.
func thin(s Series, origin float64, maxPoints int) thinned {
	n := len(s)
	out := thinned{t: make([]float64, 0, min(n, maxPoints)), y: make([]float64, 0, min(n, maxPoints))}
	if n == 0 {
		return out
	}
	if n <= maxPoints {
		for _, p := range s {
			out.t = append(out.t, (p.T-origin)/secPerHour)
			out.y = append(out.y, p.Bytes/mib)
		}
		return out
	}
	start, end := s[0].T, s[n-1].T
	width := (end - start) / float64(maxPoints)
	var vals []float64
	var tsum float64
	cur := -1
	flush := func() {
		if len(vals) == 0 {
			return
		}
		out.t = append(out.t, (tsum/float64(len(vals))-origin)/secPerHour)
		out.y = append(out.y, stats.MedianInPlace(vals)/mib)
		vals = vals[:0]
		tsum = 0
	}
	for _, p := range s {
		b := min(int((p.T-start)/width), maxPoints-1)
		if b != cur {
			flush()
			cur = b
		}
		vals = append(vals, p.Bytes)
		tsum += p.T
	}
	flush()
	return out
}

// sub returns the points with from ≤ t ≤ to (hours).
func (th thinned) sub(from, to float64) thinned {
	i, _ := slices.BinarySearch(th.t, from)
	j, found := slices.BinarySearch(th.t, to)
	if found {
		j++
	}
	return thinned{t: th.t[i:j], y: th.y[i:j]}
}

func (th thinned) len() int { return len(th.t) }

func (th thinned) duration() float64 {
	if len(th.t) < 2 {
		return 0
	}
	return th.t[len(th.t)-1] - th.t[0]
}

// runningMedian5 smooths y with a centred 5-point running median, which
// removes single outliers without rounding a step or a knee.
func runningMedian5(y []float64) []float64 {
	n := len(y)
	out := make([]float64, n)
	var w [5]float64
	for i := range y {
		lo, hi := max(i-2, 0), min(i+2, n-1)
		k := copy(w[:], y[lo:hi+1])
		out[i] = stats.MedianInPlace(w[:k])
	}
	return out
}
