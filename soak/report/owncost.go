package report

import (
	"fmt"

	"github.com/relaysoak/relaysoak/soak/verdict"
)

// The rig shares the machine with the relay it judges: past these it
// moves the relay's numbers (GC pacing, scheduling, lag) enough that the
// report says so at the top.
const ownCPUWarnShare = 0.15 // of one core

// OwnCost is what the rig (relaysoak itself) cost over a run, from its own
// samples.
type OwnCost struct {
	// FromS and ToS bound the window the CPU share is read over: the load
	// after its ramp-up, to the last sample.
	FromS, ToS float64
	// CPUShare is CPU seconds per second over the window (1 = one core);
	// SystemShare the kernel's part of it (-1 when not sampled);
	// CPUPerKFrames CPU milliseconds per 1,000 frames sent in it.
	CPUShare, SystemShare, CPUPerKFrames float64
	// RSSEndMiB and PeakMiB are RssAnon at the last sample and at most.
	RSSEndMiB, PeakMiB float64
	Goroutines         float64
	Judged             verdict.Report
	JudgeErr           string // why its memory was not judged
}

// OwnCostSection is the report's Rig section, and the warnings for its
// top.
func OwnCostSection(c OwnCost) (Section, []string) {
	var warnings []string
	cpu := "not measured (the load did not run past its ramp-up)"
	if c.ToS > c.FromS {
		kernel := ""
		if c.SystemShare >= 0 {
			kernel = fmt.Sprintf(", %.1f%% of it in the kernel", 100*c.SystemShare)
		}
		cpu = fmt.Sprintf("%.1f%% of one core from minute %.0f to %.0f (%.1f ms per 1,000 frames sent%s)",
			100*c.CPUShare, c.FromS/60, c.ToS/60, c.CPUPerKFrames, kernel)
		if c.CPUShare > ownCPUWarnShare {
			warnings = append(warnings, fmt.Sprintf("the rig used %.0f%% of a core beside the relay (over %.0f%%): it competes with the relay for CPU, so the relay's lag and memory may be off — fewer hosts or a lower rate, or a machine with more cores, make a cleaner measurement", 100*c.CPUShare, 100*ownCPUWarnShare))
		}
	}
	said := "not judged"
	if c.JudgeErr != "" {
		said = "not judged: " + c.JudgeErr
	} else {
		j := c.Judged
		said = fmt.Sprintf("%s (%s): %+.1f MiB/h, level %.0f MiB", j.Verdict, j.CarriedBy, j.SlopeMiBPerHour, j.LevelMiB)
		switch g := j.Goroutines; {
		case g != nil && j.MemoryVerdict != "":
			said = fmt.Sprintf("LEAK (goroutines): %+.0f an hour, %.0f at the end; memory %s (%s): %+.1f MiB/h", g.SlopeMiBPerHour, g.LevelMiB, j.MemoryVerdict, j.CarriedBy, j.SlopeMiBPerHour)
			warnings = append(warnings, fmt.Sprintf("the rig's own goroutines grow (%+.0f an hour): a rig that grows takes memory and CPU from the relay as the run goes on", g.SlopeMiBPerHour))
		case j.Verdict != verdict.Pass:
			warnings = append(warnings, fmt.Sprintf("the rig's own memory did not level off (%s, %+.0f MiB/h): a rig that grows takes memory and CPU from the relay as the run goes on", j.Verdict, j.SlopeMiBPerHour))
		}
	}
	md := fmt.Sprintf(`The rig (fleet, pacer, measuring consumer and controller, one process) beside the relay:

| CPU | RSS (RssAnon) at the end | peak | goroutines | its memory's verdict |
|---|---|---|---|---|
| %s | %.0f MiB | %.0f MiB | %.0f | %s |
`, cpu, c.RSSEndMiB, c.PeakMiB, c.Goroutines, said)
	return Section{Title: "Rig", Markdown: md}, warnings
}
