package verdict

// Live keeps a bounded, decimated copy of a memory series as it is sampled,
// so that the soak controller can show a slope during the run: Add costs O(1)
// amortised and Judge the same at hour 100 as at hour 1, whatever the run's
// length. Points are averaged into time buckets; when the buffer is full,
// neighbouring buckets merge and the bucket width doubles. Not safe for
// concurrent use.
type Live struct {
	capacity int
	width    float64 // seconds per bucket; 0 until the second sample
	origin   float64
	first    *Point
	lastT    float64
	buckets  []bucket
	cur      bucket
}

type bucket struct {
	idx        int64
	n          float64
	sumT, sumY float64
}

func (b bucket) point() Point { return Point{T: b.sumT / b.n, Bytes: b.sumY / b.n} }

// NewLive returns a Live keeping at most capacity points (0: DefaultMaxPoints).
func NewLive(capacity int) *Live {
	if capacity < 2*minFitPoint {
		capacity = DefaultMaxPoints
	}
	return &Live{capacity: capacity, buckets: make([]bucket, 0, capacity)}
}

// Add records a sample. Samples must come in time order; one that does not
// is dropped.
func (l *Live) Add(p Point) {
	if l.first == nil {
		f := p
		l.first = &f
		l.origin = p.T
		l.lastT = p.T
		l.cur = bucket{idx: 0, n: 1, sumT: p.T, sumY: p.Bytes}
		return
	}
	if p.T <= l.lastT {
		return
	}
	l.lastT = p.T
	if l.width == 0 {
		// Start at the sampling interval: no decimation until it is needed.
		l.width = p.T - l.first.T
	}
	idx := int64((p.T - l.origin) / l.width)
	if idx == l.cur.idx {
		l.cur.n++
		l.cur.sumT += p.T
		l.cur.sumY += p.Bytes
		return
	}
	if idx < l.cur.idx {
		return
	}
	l.buckets = append(l.buckets, l.cur)
	l.cur = bucket{idx: idx, n: 1, sumT: p.T, sumY: p.Bytes}
	if len(l.buckets) >= l.capacity {
		l.compact()
	}
}

// compact merges buckets pairwise and doubles the width: O(capacity), once
// per capacity/2 new buckets.
func (l *Live) compact() {
	l.width *= 2
	out := l.buckets[:0]
	for _, b := range l.buckets {
		b.idx /= 2
		if k := len(out); k > 0 && out[k-1].idx == b.idx {
			out[k-1].n += b.n
			out[k-1].sumT += b.sumT
			out[k-1].sumY += b.sumY
			continue
		}
		out = append(out, b)
	}
	l.buckets = out
	l.cur.idx /= 2
	if k := len(l.buckets); k > 0 && l.buckets[k-1].idx == l.cur.idx {
		b := l.buckets[k-1]
		l.buckets = l.buckets[:k-1]
		l.cur.n += b.n
		l.cur.sumT += b.sumT
		l.cur.sumY += b.sumY
	}
}

// Series returns the decimated series so far (at most capacity+1 points).
func (l *Live) Series() Series {
	if l.first == nil {
		return nil
	}
	out := make(Series, 0, len(l.buckets)+1)
	for _, b := range l.buckets {
		out = append(out, b.point())
	}
	return append(out, l.cur.point())
}

// Judge judges the decimated series so far; see Judge.
func (l *Live) Judge(ctx Context, cfg Config) (Result, error) {
	return Judge(l.Series(), ctx, cfg)
}
