package attribute

import "github.com/relaysoak/relaysoak/internal/stats"

// Floors keeps, of each whole window of windowS seconds from fromS on, its
// lowest sample (stats.FloorIndices), with the counts at that sample (a
// floor is what was kept at that moment, so its counts are that moment's
// too). Samples before fromS are kept as they are (the warm-up, which the
// fit drops anyway).
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
	for _, i := range stats.FloorIndices(o.T, o.Memory, fromS, windowS) {
		keep(i)
	}
	return out
}
