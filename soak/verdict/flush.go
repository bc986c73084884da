package verdict

import (
	"math"
	"slices"

	"github.com/relaysoak/relaysoak/internal/stats"
)

// flushCycles is what findFlush recognised: sharp drops that end a gradual
// rise (a cache flushed on a timer), each with the level just before it (the
// peak) and just after it (the floor).
type flushCycles struct {
	t      []float64 // hours: time of each drop
	peak   []float64 // MiB: level just before
	floor  []float64 // MiB: level just after
	period float64   // hours: median spacing of the drops; 0 with fewer than two
	// climb is, per drop, the hours the tooth before it took (or would have
	// taken) to rise by the drop: a period estimate from one tooth.
	climb []float64
	// levelSE is the largest standard error of one peak or floor.
	levelSE float64
}

func (f flushCycles) drops() int { return len(f.t) }

// in returns the drops with from ≤ t ≤ to.
func (f flushCycles) in(from, to float64) flushCycles {
	i, _ := slices.BinarySearch(f.t, from)
	j, found := slices.BinarySearch(f.t, to)
	if found {
		j++
	}
	return flushCycles{t: f.t[i:j], peak: f.peak[i:j], floor: f.floor[i:j], climb: f.climb[i:j], period: f.period, levelSE: f.levelSE}
}

// Flush recognition, in thinned points and hours.
const (
	flushSide      = 3         // points each side of a drop whose medians are compared
	flushSigmas    = 8.0       // a drop exceeds this many σ of the point-to-point noise
	flushOfLevel   = 0.02      // and this fraction of the level
	flushMinPeriod = 10.0 / 60 // hours: drops closer than this are a GC or allocator sawtooth
	flushMinPoints = 8         // a cycle must span this many thinned points to be resolved
	flushToothR2   = 0.8       // the rise before a drop must be this close to a line
)

// findFlush finds slow flush cycles in one process lifetime: drops
// (stats.FindDrops), within about one thinned point, by more than 8σ of the
// point-to-point noise and 2% of the level, each at the end of a gradual
// rise between half and twice its size (a tooth: a line explains the rise,
// which a step up followed by a step down does not; and the drop takes back
// most of it, which a GC sawtooth on a leak does not). Drops closer together
// than 10 minutes, or than the thinning can resolve, are a fast sawtooth,
// which the trend test already takes in its stride: none is returned then.
// Restarts (drops to a fresh process's level) have been cut off before.
func findFlush(th thinned) flushCycles {
	n := th.len()
	var none flushCycles
	if n < 4*flushMinPoints {
		return none
	}
	d := stats.FindDrops(th.t, th.y, stats.DropConfig{Side: flushSide, Scale: stats.NoiseScale, Times: flushSigmas, OfLevel: flushOfLevel})
	idx, sigma := d.At, d.Scale
	if len(idx) == 0 {
		return none
	}
	// Spacing: a fast sawtooth is no flush cycle.
	spacing := th.duration() / float64(n-1)
	minGap := max(flushMinPeriod, flushMinPoints*spacing)
	if len(idx) >= 2 && d.Period < minGap {
		return none
	}
	var out flushCycles
	sm := runningMedian5(th.y)
	// Every drop after the first must end a tooth (the first may follow a
	// warm-up or part of a tooth): drops that do not, among drops that do,
	// are something else (a leak whose teeth do not come back down), and
	// none is recognised then.
	reject := func(k int) bool { return k > 0 }
	for k, i := range idx {
		// The tooth before the drop: from the previous drop, or as long as
		// the next cycle (the first drop), or from the lifetime's start.
		from := 0
		switch {
		case k > 0:
			from = idx[k-1] + 1
		case k+1 < len(idx):
			from = max(0, i-(idx[k+1]-i)+1)
		}
		// The points next to a drop may be bins that straddle it: left out.
		from, to := from+1, i-2
		if to-from+1 < flushMinPoints || th.t[i]-th.t[max(from-2, 0)] < minGap {
			if reject(k) {
				return none
			}
			continue
		}
		_, _, r2 := fitLine(th.t[from:to+1], sm[from:to+1]).ab()
		before := fitLine(th.t[from:to+1], th.y[from:to+1])
		rise := before.b * (th.t[to] - th.t[from])
		// A tooth returns at least halfway to where it began: growth that
		// drops back only a little (a leak under a GC sawtooth) is no cycle.
		// The first tooth may be cut by the start of the data: it needs only
		// to rise.
		depth := d.Depth[k]
		minRise := 0.5 * depth
		if k == 0 {
			minRise = 0
		}
		if r2 < flushToothR2 || rise <= minRise || depth < 0.5*rise {
			if reject(k) {
				return none
			}
			continue
		}
		// The drop must fall from the tooth's top, not from a burst of
		// outliers above it.
		if math.Abs(before.at(th.t[i-1])-d.Before[k]) > 0.25*depth {
			if reject(k) {
				return none
			}
			continue
		}
		// Peak and floor from the lines through the teeth either side (far
		// more precise than a few points), the floor from the points after
		// the drop when the next tooth is too short.
		peak, peakSE := before.at(th.t[i-1]), before.seAt(th.t[i-1])
		next := n
		if k+1 < len(idx) {
			next = idx[k+1]
		}
		floor, floorSE := d.After[k], sigma
		if next-2-(i+1)+1 >= flushMinPoints {
			after := fitLine(th.t[i+1:next-1], th.y[i+1:next-1])
			floor, floorSE = after.at(th.t[i]), after.seAt(th.t[i])
		}
		out.t = append(out.t, th.t[i])
		out.peak = append(out.peak, peak)
		out.floor = append(out.floor, floor)
		out.levelSE = max(out.levelSE, peakSE, floorSE)
		out.climb = append(out.climb, depth/before.b)
	}
	out.period = stats.MedianSpacing(out.t)
	return out
}

// line is a least-squares line a + b·t with what its standard errors need.
type line struct {
	a, b, r2 float64
	sigma    float64 // residual standard deviation
	n        float64
	mt, stt  float64
}

func (l line) ab() (a, b, r2 float64) { return l.a, l.b, l.r2 }

func (l line) at(t float64) float64 { return l.a + l.b*t }

// seAt is the standard error of the line's value at t.
func (l line) seAt(t float64) float64 {
	if l.n < 3 || l.stt == 0 {
		return math.Inf(1)
	}
	return l.sigma * math.Sqrt(1/l.n+(t-l.mt)*(t-l.mt)/l.stt)
}

// fitLine fits the least-squares line through (t, y).
func fitLine(t, y []float64) line {
	n := float64(len(t))
	l := line{n: n}
	if n < 2 {
		return l
	}
	var mt, my float64
	for i := range t {
		mt += t[i]
		my += y[i]
	}
	mt /= n
	my /= n
	var stt, sty, syy float64
	for i := range t {
		dt, dy := t[i]-mt, y[i]-my
		stt += dt * dt
		sty += dt * dy
		syy += dy * dy
	}
	l.mt, l.stt, l.a = mt, stt, my
	if stt == 0 || syy == 0 {
		return l
	}
	l.b = sty / stt
	l.a = my - l.b*mt
	l.r2 = sty * sty / (stt * syy)
	if n > 2 {
		l.sigma = math.Sqrt(max(syy-l.b*sty, 0) / (n - 2))
	}
	return l
}

// levelTrend is the trend of a few levels (one per flush cycle): Sen's
// slope, and a standard error from their scatter around it, never below
// what the per-level measurement noise (sigma) allows.
func levelTrend(t, y []float64, sigma float64) (slope, se float64) {
	n := len(t)
	var slopes []float64
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			slopes = append(slopes, (y[j]-y[i])/(t[j]-t[i]))
		}
	}
	slope = stats.Median(slopes)
	var mt float64
	for _, v := range t {
		mt += v
	}
	mt /= float64(n)
	var stt float64
	r := make([]float64, n)
	for i := range t {
		stt += (t[i] - mt) * (t[i] - mt)
		r[i] = y[i] - slope*t[i]
	}
	s := sigma
	if n >= 3 {
		s = max(s, stats.MAD(r))
	}
	return slope, s / math.Sqrt(stt)
}
