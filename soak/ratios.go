package soak

import (
	"path/filepath"

	"github.com/relaysoak/relaysoak/soak/attribute"
	"github.com/relaysoak/relaysoak/soak/report"
	"github.com/relaysoak/relaysoak/soak/rundir"
	"github.com/relaysoak/relaysoak/soak/verdict"
)

// grewPer is growthPer of a run directory's samples for a verdict of
// growth: memory's (a LEAK's carried series, RETAINED's OS view: what
// grew) in bytes, and the goroutines' when they grew; nil for what did
// not grow.
func grewPer(dir string, judged verdict.Report) (memory, goroutines []report.Ratio, err error) {
	path := filepath.Join(dir, rundir.Samples)
	r := judged.Result
	switch {
	case judged.Verdict == verdict.Retained:
		if sys := judged.OSView(); sys != nil {
			r = *sys
		}
		memory, err = growthPer(path, r, 1<<20)
	case judged.Verdict == verdict.Leak && judged.MemoryVerdict == "":
		memory, err = growthPer(path, r, 1<<20)
	}
	if g := judged.Goroutines; err == nil && g != nil && g.Verdict == verdict.Leak {
		goroutines, err = growthPer(path, *g, 1)
	}
	return memory, goroutines, err
}

// growthPer divides a series' growth over r's judged window (r's slope
// times the window, times unit: bytes in a MiB for memory) by each load
// factor's rise over the same window, as the samples at path counted it:
// one ratio for each factor that happened. A steady run cannot tell which
// of them is the cause; an attribution run can.
func growthPer(path string, r verdict.Result, unit float64) ([]report.Ratio, error) {
	from, to := r.WindowStartS, r.WindowEndS
	if r.JudgedPoints == 0 || to <= from {
		return nil, nil
	}
	first, last := map[attribute.Factor]float64{}, map[attribute.Factor]float64{}
	err := rundir.ReadLinesFile(path, func(_ int, l rundir.Line) error {
		if l.ElapsedS == nil || *l.ElapsedS < from || *l.ElapsedS > to {
			return nil
		}
		for f, col := range factorColumns {
			v, ok := l.Context[col]
			if !ok {
				continue
			}
			if _, seen := first[f]; !seen {
				first[f] = v
			}
			last[f] = v
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	growth := r.SlopeMiBPerHour * (to - from) / 3600 * unit
	var out []report.Ratio
	for _, f := range attribute.AllFactors {
		if n := last[f] - first[f]; n > 0 {
			out = append(out, report.Ratio{Per: f.Unit(), Events: n, Each: growth / n})
		}
	}
	return out, nil
}
