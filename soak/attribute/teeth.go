package attribute

import (
	"slices"

	"github.com/relaysoak/relaysoak/internal/stats"
)

// Teeth is a fast sawtooth in memory: a gradual rise ended by a sharp drop,
// every PeriodS or so. A Go relay's heap rises with what it holds between
// flushes or collections (indigo's live heap climbs 75 MiB in 75 s and
// drops back, at HOSTS=500 RATE=200), which scatters samples by far more
// than an hour's growth; each tooth's floor, what is left after the drop,
// moves only with what is kept.
type Teeth struct {
	Drops    int     `json:"drops"`
	PeriodS  float64 `json:"period_s"`  // median spacing of the drops
	DepthMiB float64 `json:"depth_mib"` // median drop
	// WindowS is the width of the windows whose lowest sample is a floor:
	// 1.5 periods, so each holds a drop's aftermath.
	WindowS float64 `json:"window_s"`
}

// Found says whether memory is a sawtooth worth taking floors of.
func (th Teeth) Found() bool { return th.WindowS > 0 }

// Tooth recognition.
const (
	minTeeth = 4 // fewer drops do not make a period
	// A drop is a fall of more than dropOfStep times the median step: a
	// sawtooth's rises are small steps and its drops a few large ones (the
	// series' spread is no measure: growth widens it).
	dropOfStep = 4.0
	floorWidth = 1.5 // periods per floor window
)

// FindTeeth finds a fast sawtooth in memory over [fromS, toS] of t; none
// (WindowS 0) when there are fewer than four drops, or they are so far apart
// that a floor window would be wider than maxWindowS.
func FindTeeth(t, memory []float64, fromS, toS, maxWindowS float64) Teeth {
	lo, hi := window(t, fromS, toS)
	if hi-lo < 2*minTeeth {
		return Teeth{}
	}
	// Every fall between two samples counts, even one of a few in a row.
	d := stats.FindDrops(t[lo:hi], memory[lo:hi], stats.DropConfig{Side: 1, Scale: stats.StepScale, Times: dropOfStep, EachCandidate: true})
	if d.Threshold <= 0 || len(d.At) < minTeeth {
		return Teeth{} // a flat series (no median step), or too few drops for a period
	}
	th := Teeth{Drops: len(d.At), PeriodS: d.Period, DepthMiB: stats.Median(d.Depth) / (1 << 20)}
	if th.PeriodS*floorWidth > maxWindowS {
		return Teeth{Drops: th.Drops, PeriodS: th.PeriodS, DepthMiB: th.DepthMiB}
	}
	th.WindowS = floorWidth * th.PeriodS
	return th
}

// window is the index range of t in [fromS, toS].
func window(t []float64, fromS, toS float64) (lo, hi int) {
	lo, _ = slices.BinarySearch(t, fromS)
	hi, _ = slices.BinarySearch(t, toS+1e-9)
	return lo, hi
}

// Floors keeps, of each whole window of windowS seconds from fromS on, its
// lowest sample, with the counts at that sample (a floor is what was kept at that
// moment, so its counts are that moment's too). Samples before fromS are
// kept as they are (the warm-up, which the fit drops anyway).
func (o Observations) Floors(fromS, windowS float64) Observations {
	out := Observations{Counts: map[Factor][]float64{}}
	keep := func(i int) {
		out.T = append(out.T, o.T[i])
		out.Memory = append(out.Memory, o.Memory[i])
		for f, c := range o.Counts {
			out.Counts[f] = append(out.Counts[f], c[i])
		}
	}
	for i := 0; i < len(o.T) && o.T[i] < fromS; i++ {
		keep(i)
	}
	if len(o.T) == 0 {
		return out
	}
	// Whole windows only: one cut short by the end may hold no drop.
	for start := fromS; start+windowS <= o.T[len(o.T)-1]; start += windowS {
		lo, hi := window(o.T, start, start+windowS-1e-6)
		if hi-lo < 2 {
			continue // a gap in the samples: a lone sample is not a floor
		}
		low := lo
		for i := lo + 1; i < hi; i++ {
			if o.Memory[i] < o.Memory[low] {
				low = i
			}
		}
		keep(low)
	}
	return out
}
