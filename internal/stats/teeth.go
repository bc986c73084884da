package stats

import (
	"math"
	"slices"
)

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

// regular says whether the drops at indices at of t come about as evenly
// spaced as a sawtooth's: the spread (MAD) of their spacing is at most
// maxSpacingSpread of its median.
func regular(t []float64, at []int) bool {
	ts := make([]float64, len(at))
	for k, i := range at {
		ts[k] = t[i]
	}
	gaps := spacings(ts)
	m := Median(gaps)
	return m > 0 && MAD(gaps) <= maxSpacingSpread*m
}

// MedianSpacing is the median gap between consecutive increasing times; 0
// with fewer than two.
func MedianSpacing(ts []float64) float64 {
	if len(ts) < 2 {
		return 0
	}
	return MedianInPlace(spacings(ts))
}

// spacings are the gaps between consecutive times.
func spacings(ts []float64) []float64 {
	if len(ts) < 2 {
		return nil
	}
	gaps := make([]float64, len(ts)-1)
	for i := 1; i < len(ts); i++ {
		gaps[i-1] = ts[i] - ts[i-1]
	}
	return gaps
}

// Teeth is a fast sawtooth: a gradual rise ended by a sharp drop, every
// PeriodS or so. A garbage-collected heap rises with what a process holds
// between flushes or collections, which scatters samples by far more than
// an hour's growth; each tooth's floor, what is left after the drop, moves
// only with what is kept.
type Teeth struct {
	Drops    int     `json:"drops"`
	PeriodS  float64 `json:"period_s"`  // median spacing of the drops
	DepthMiB float64 `json:"depth_mib"` // median drop
	// WindowS is the width of the windows whose lowest sample is a floor:
	// 1.5 periods, so each holds a drop's aftermath.
	WindowS float64 `json:"window_s"`
	// FirstDropS is when the first drop came: before it the series had not
	// yet cycled (a process starting, its load arriving), so floors are
	// taken from it on.
	FirstDropS float64 `json:"first_drop_s,omitempty"`
}

// Found says whether the series is a sawtooth worth taking floors of.
func (th Teeth) Found() bool { return th.WindowS > 0 }

// Tooth recognition.
const (
	// MinTeeth is the fewest drops that make a period.
	MinTeeth = 4
	// A drop is a fall of more than dropOfStep times the median step: a
	// sawtooth's rises are small steps and its drops a few large ones (the
	// series' spread is no measure: growth widens it).
	dropOfStep = 4.0
	// Teeth of a few samples each rise by a large share of a drop at every
	// step (a Go relay's heap at production load: a tooth a minute, sampled
	// every 10 s). FindFastTeeth seeks their drops at fastDropOfStep, and
	// takes them when they come about as regularly as a sawtooth's do:
	// their spacing's spread (MAD) at most maxSpacingSpread of its median,
	// which an hour of a real heap's teeth, some of their drops missed,
	// stays within and white noise's random falls mostly do not.
	fastDropOfStep   = 2.5
	maxSpacingSpread = 0.75
	floorWidth       = 1.5 // periods per floor window
)

// FindTeeth finds a fast sawtooth in y (bytes) over [fromS, toS] of t; none
// (WindowS 0) when there are fewer than MinTeeth drops (Drops says how many
// there were), or they are so far apart that a floor window would be wider
// than maxWindowS (the teeth are still described).
func FindTeeth(t, y []float64, fromS, toS, maxWindowS float64) Teeth {
	return findTeeth(t, y, fromS, toS, maxWindowS, false)
}

// FindFastTeeth is FindTeeth that also finds teeth of a few samples each,
// whose drops are under four median steps, when they come regularly. Noise
// can pass for such teeth now and then, so it is for series whose floors
// do no harm if it does (the lowest sample of each window of noise trends
// as the noise does): a live heap's, for a verdict.
func FindFastTeeth(t, y []float64, fromS, toS, maxWindowS float64) Teeth {
	return findTeeth(t, y, fromS, toS, maxWindowS, true)
}

func findTeeth(t, y []float64, fromS, toS, maxWindowS float64, fast bool) Teeth {
	lo, hi := Span(t, fromS, toS)
	if hi-lo < 2*MinTeeth {
		return Teeth{}
	}
	// Every fall between two samples counts, even one of a few in a row.
	d := FindDrops(t[lo:hi], y[lo:hi], DropConfig{Side: 1, Scale: StepScale, Times: dropOfStep, EachCandidate: true})
	if fast && len(d.At) < MinTeeth && d.Threshold > 0 {
		few := FindDrops(t[lo:hi], y[lo:hi], DropConfig{Side: 1, Scale: StepScale, Times: fastDropOfStep, EachCandidate: true})
		if len(few.At) >= MinTeeth && regular(t[lo:hi], few.At) {
			d = few
		}
	}
	switch {
	case d.Threshold <= 0:
		return Teeth{} // a flat series: no median step
	case len(d.At) < MinTeeth:
		return Teeth{Drops: len(d.At)} // too few drops for a period
	}
	th := Teeth{Drops: len(d.At), PeriodS: d.Period, DepthMiB: Median(d.Depth) / (1 << 20), FirstDropS: t[lo+d.At[0]]}
	if th.PeriodS*floorWidth > maxWindowS {
		return th
	}
	th.WindowS = floorWidth * th.PeriodS
	return th
}

// FloorIndices returns, of each whole window of windowS seconds of t from
// fromS on, the index of its lowest y. A window cut short by the end is
// left out (it may hold no drop), and so is one holding a single sample (a
// gap in the samples: a lone sample is not a floor).
func FloorIndices(t, y []float64, fromS, windowS float64) []int {
	if len(t) == 0 || windowS <= 0 {
		return nil
	}
	var out []int
	for start := fromS; start+windowS <= t[len(t)-1]; start += windowS {
		lo, hi := Span(t, start, start+windowS-1e-6)
		if hi-lo < 2 {
			continue
		}
		low := lo
		for i := lo + 1; i < hi; i++ {
			if y[i] < y[low] {
				low = i
			}
		}
		out = append(out, low)
	}
	return out
}

// Span is the index range of increasing t within [fromS, toS].
func Span(t []float64, fromS, toS float64) (lo, hi int) {
	lo, _ = slices.BinarySearch(t, fromS)
	hi, _ = slices.BinarySearch(t, toS+1e-9)
	return lo, hi
}
