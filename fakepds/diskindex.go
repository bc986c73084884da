package fakepds

import "slices"

// diskIndex is one host's index of its spooled frames by seq: five bytes a
// frame (an offset in its segment, and its kind and write states), with
// the segment given once per run of frames in it. Seqs are consecutive on
// a host, so entry i is seq first+i.
type diskIndex struct {
	first int64
	offs  []uint32
	flags []uint8 // commitFlag | write states
	runs  []segRun
}

// segRun: entries from start on are in segment seg, up to the next run.
type segRun struct {
	seg   uint32
	start int
}

// commitFlag marks a #commit in diskIndex.flags; the states take the bits
// below it, 2 a reader.
const commitFlag = 1 << (2 * maxReaders)

func (x *diskIndex) len() int { return len(x.offs) }

// add appends the frame at l, seq being the host's next.
func (x *diskIndex) add(seq int64, l location) {
	if len(x.offs) == 0 {
		x.first = seq
	}
	if n := len(x.runs); n == 0 || x.runs[n-1].seg != l.segment() {
		x.runs = append(x.runs, segRun{seg: l.segment(), start: len(x.offs)})
	}
	f := l.states()
	if l.commit() {
		f |= commitFlag
	}
	x.offs = append(x.offs, uint32(l.offset()))
	x.flags = append(x.flags, f)
}

// at is entry i's location.
func (x *diskIndex) at(i int) location {
	r := len(x.runs) - 1
	for r > 0 && x.runs[r].start > i {
		r--
	}
	f := x.flags[i]
	return makeLocation(x.runs[r].seg, int64(x.offs[i]), f&commitFlag != 0, f&(commitFlag-1))
}

// locations are entries i to j-1.
func (x *diskIndex) locations(i, j int) []location {
	out := make([]location, 0, j-i)
	for k := i; k < j; k++ {
		out = append(out, x.at(k))
	}
	return out
}

// dropRun drops the entries of the oldest run, each passed to gone first.
func (x *diskIndex) dropRun(gone func(seq int64, l location)) {
	n := len(x.offs)
	if len(x.runs) > 1 {
		n = x.runs[1].start
	}
	for i := range n {
		gone(x.first+int64(i), x.at(i))
	}
	x.offs, x.flags, x.first = x.offs[n:], x.flags[n:], x.first+int64(n)
	x.runs = x.runs[1:]
	for i := range x.runs {
		x.runs[i].start -= n
	}
	if cap(x.offs) > 64 && len(x.offs) < cap(x.offs)/4 {
		// The dropped front is not kept for the rest of the run.
		x.offs, x.flags = slices.Clone(x.offs), slices.Clone(x.flags)
	}
	if len(x.runs) == 0 {
		x.runs = nil
	}
}
