package stats

import "math"

// DropScale picks the scale of a series' point-to-point differences that a
// drop's threshold is a multiple of.
type DropScale int

const (
	// NoiseScale is σ of one point's noise: the MAD of the differences over
	// √2. A sawtooth's rises shift the differences' median, not their
	// spread, and its few drops are outliers to it.
	NoiseScale DropScale = iota
	// StepScale is the median absolute difference: a typical step, which on
	// a sawtooth is a rise.
	StepScale
)

// DropConfig says what FindDrops takes for a drop. Zero values are defaults.
type DropConfig struct {
	// Side is how many points each side of a drop have their medians
	// compared: more resists outliers, fewer resolves closer drops. 0 is 1.
	Side int
	// Scale is the differences' scale the threshold is a multiple of.
	Scale DropScale
	// Times is the multiple of the scale a drop must exceed. 0 is 8.
	Times float64
	// OfLevel, when positive, raises the threshold to this fraction of the
	// series' median, for drops that matter beside the level.
	OfLevel float64
	// EachCandidate keeps every point that passes; otherwise only the
	// deepest of each run of consecutive ones (a drop spread over a few
	// points, or seen by several overlapping windows).
	EachCandidate bool
}

func (c DropConfig) withDefaults() DropConfig {
	if c.Side <= 0 {
		c.Side = 1
	}
	if c.Times == 0 {
		c.Times = 8
	}
	return c
}

// Drops are the sharp drops of a series, in time order.
type Drops struct {
	At     []int     // index of the first point after each drop
	Before []float64 // median of the Side points before each drop
	After  []float64 // median of the Side points from each drop on
	Depth  []float64 // Before − After
	Period float64   // median spacing of the drops in t; 0 with fewer than two
	// Scale is the differences' scale (DropConfig.Scale), and Threshold the
	// depth a drop exceeds.
	Scale, Threshold float64
}

// FindDrops finds the sharp drops of y over increasing times t, the way a
// sawtooth's teeth end: points i where the median of the Side points before
// i exceeds the median of the Side points from i on by more than the
// threshold. Too short a series (fewer than 2·Side points) has none.
func FindDrops(t, y []float64, c DropConfig) Drops {
	c = c.withDefaults()
	k, n := c.Side, len(y)
	var d Drops
	if n < 2*k {
		return d
	}
	diffs := make([]float64, n-1)
	for i := 1; i < n; i++ {
		diffs[i-1] = y[i] - y[i-1]
	}
	switch c.Scale {
	case StepScale:
		for i, v := range diffs {
			diffs[i] = math.Abs(v)
		}
		d.Scale = MedianInPlace(diffs)
	default:
		d.Scale = MAD(diffs) / math.Sqrt2
	}
	d.Threshold = c.Times * d.Scale
	if c.OfLevel > 0 {
		d.Threshold = max(d.Threshold, c.OfLevel*Median(y))
	}
	// Candidates are the points i = k … n−k, at j = i − k.
	m := n - 2*k + 1
	before, after := make([]float64, m), make([]float64, m)
	w := make([]float64, k)
	for j := range m {
		i := j + k
		copy(w, y[i-k:i])
		before[j] = MedianInPlace(w)
		copy(w, y[i:i+k])
		after[j] = MedianInPlace(w)
	}
	passes := func(j int) bool { return before[j]-after[j] > d.Threshold }
	keep := func(j int) {
		d.At = append(d.At, j+k)
		d.Before = append(d.Before, before[j])
		d.After = append(d.After, after[j])
		d.Depth = append(d.Depth, before[j]-after[j])
	}
	for j := 0; j < m; {
		if !passes(j) {
			j++
			continue
		}
		best := j
		for ; j < m && passes(j); j++ {
			if c.EachCandidate {
				keep(j)
			} else if before[j]-after[j] > before[best]-after[best] {
				best = j
			}
		}
		if !c.EachCandidate {
			keep(best)
		}
	}
	at := make([]float64, len(d.At))
	for a, i := range d.At {
		at[a] = t[i]
	}
	d.Period = MedianSpacing(at)
	return d
}

// MedianSpacing is the median gap between consecutive increasing times; 0
// with fewer than two.
func MedianSpacing(ts []float64) float64 {
	if len(ts) < 2 {
		return 0
	}
	gaps := make([]float64, len(ts)-1)
	for i := 1; i < len(ts); i++ {
		gaps[i-1] = ts[i] - ts[i-1]
	}
	return MedianInPlace(gaps)
}
