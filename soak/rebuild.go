package soak

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/relaysoak/relaysoak/soak/report"
	"github.com/relaysoak/relaysoak/soak/rundir"
	"github.com/relaysoak/relaysoak/soak/verdict"
)

// RebuildConfig says which run to report again, and how.
type RebuildConfig struct {
	// Dir is the run directory (runs/<id>).
	Dir string
	// Baseline, when set, is another run directory to compare with.
	Baseline string
	// AttributionWarmup starts an attribution run's fit later than its
	// plan's warm-up, for a relay that settled late; 0: the plan's.
	AttributionWarmup time.Duration
	// Judge configures the verdict; zero values are the defaults.
	Judge verdict.Config
}

// Rebuild judges a run directory's samples afresh and writes its report
// again (relaysoak report): the verdict and the sections that derive from
// samples are rebuilt, the rest is kept from the run's verdict.json. A run
// that ended before writing verdict.json is rebuilt from its samples alone.
func Rebuild(cfg RebuildConfig) (report.Summary, error) {
	if st, err := os.Stat(cfg.Dir); err != nil || !st.IsDir() {
		return report.Summary{}, fmt.Errorf("%s is not a run directory (runs/<id>)", cfg.Dir)
	}
	sum, err := rejudge(cfg.Dir, cfg.AttributionWarmup, cfg.Judge)
	if err != nil {
		return sum, err
	}
	if cfg.Baseline != "" {
		base, err := rejudge(cfg.Baseline, 0, cfg.Judge)
		if err != nil {
			return sum, fmt.Errorf("baseline: %w", err)
		}
		c := report.Compare(base, sum)
		sum.Comparison = &c
	}
	if err := report.Write(cfg.Dir, sum); err != nil {
		return sum, fmt.Errorf("%w: %w", ErrNotWritten, err)
	}
	return sum, nil
}

// ErrNotWritten is a rebuilt report that could not be written: the run
// directory read fine.
var ErrNotWritten = errors.New("the report was not written")

// rejudge reads a run's last verdict.json (or starts from nothing when the
// run ended before writing it) and judges its samples afresh; an
// attribution run's fit starts at attrWarmup when that is past its plan's.
func rejudge(dir string, attrWarmup time.Duration, judge verdict.Config) (report.Summary, error) {
	var sum report.Summary
	path := filepath.Join(dir, rundir.Verdict)
	if b, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(b, &sum); err != nil {
			return sum, fmt.Errorf("%s: %w", path, err)
		}
	} else {
		sum.RunID = filepath.Base(filepath.Clean(dir))
		sum.Notes = append(sum.Notes, "rebuilt from samples alone: the run ended before it wrote verdict.json")
	}
	if judge.MinWindow == 0 {
		judge.MinWindow = recordedWindow(dir)
	}
	judged, err := judgeFile(filepath.Join(dir, rundir.Samples), judge)
	if err != nil {
		return sum, err
	}
	sum.Judged = judged
	if sum.Findings.RetainedPer, sum.Findings.GoroutinesPer, err = grewPer(dir, judged); err != nil {
		sum.Notes = append(sum.Notes, "growth per event: "+err.Error())
	}
	// An attribution run is fitted afresh too (a newer fit).
	found, ok, err := refitAttribution(dir, judged.SampledSignal(), attrWarmup)
	if ok {
		sum.Findings.Attribution = nil
		if err != nil {
			sum.Notes = append(sum.Notes, "attribution: "+err.Error())
		} else {
			sum.Findings.Attribution = &found
		}
		// A run written before findings were data holds the fit as a
		// rendered section: the new fit replaces it.
		kept := sum.Sections[:0]
		for _, s := range sum.Sections {
			if s.Title != report.AttributionTitle {
				kept = append(kept, s)
			}
		}
		sum.Sections = kept
	}
	consumerFindings(dir, &sum)
	return sum, nil
}

// recordedWindow is the judge's least window the run was soaked with
// (--judge-window in its run.json's recipe), 0 for the default: a run is
// judged again as it was judged.
func recordedWindow(dir string) time.Duration {
	info, err := rundir.ReadRunInfo(filepath.Join(dir, rundir.Run))
	if err != nil {
		return 0
	}
	d, _ := time.ParseDuration(info.Recipe["judge-window"])
	return d
}
