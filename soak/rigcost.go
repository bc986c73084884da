package soak

import (
	"fmt"
	"time"

	"github.com/relaysoak/relaysoak/soak/report"
	"github.com/relaysoak/relaysoak/soak/rundir"
	"github.com/relaysoak/relaysoak/soak/trend"
)

// The rig shares the machine with the relay it judges: past these it
// moves the relay's numbers (GC pacing, scheduling, lag) enough that the
// report says so at the top.
const (
	rigCPUWarnShare = 0.15 // of one core
)

// rigCost is what the rig itself cost over a run, from rig-samples.jsonl.
type rigCost struct {
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
	Judged             trend.Report
	JudgeErr           error
}

// readRigCost reads the rig's samples; skip is how long after the first
// frame the window starts (the ramp-up, and the fleet's first #sync of
// every account).
func readRigCost(path string, skip time.Duration, judge trend.Config) (rigCost, error) {
	var c rigCost
	var (
		start, end   *rundir.Line
		firstFrameAt = -1.0
	)
	err := rundir.ReadLinesFile(path, func(_ int, l rundir.Line) error {
		if l.ElapsedS == nil {
			return nil
		}
		c.PeakMiB = max(c.PeakMiB, l.Signals[rundir.SignalRssAnon]/(1<<20))
		if _, ok := l.Context[rundir.CPUSeconds]; !ok {
			return nil
		}
		if firstFrameAt < 0 && l.FramesSent != nil && *l.FramesSent > 0 {
			firstFrameAt = *l.ElapsedS
		}
		if firstFrameAt >= 0 && start == nil && *l.ElapsedS >= firstFrameAt+skip.Seconds() {
			start = &l
		}
		end = &l
		return nil
	})
	if err != nil {
		return c, err
	}
	if end == nil {
		return c, fmt.Errorf("%s: no sample with the rig's CPU time", path)
	}
	c.RSSEndMiB = end.Signals[rundir.SignalRssAnon] / (1 << 20)
	c.Goroutines = end.Context[rundir.Goroutines]
	if start != nil && *end.ElapsedS > *start.ElapsedS {
		c.FromS, c.ToS = *start.ElapsedS, *end.ElapsedS
		cpu := end.Context[rundir.CPUSeconds] - start.Context[rundir.CPUSeconds]
		c.CPUShare = cpu / (c.ToS - c.FromS)
		c.SystemShare = -1
		if s0, ok := start.Context[rundir.CPUSystemSeconds]; ok {
			c.SystemShare = (end.Context[rundir.CPUSystemSeconds] - s0) / (c.ToS - c.FromS)
		}
		if end.FramesSent != nil && start.FramesSent != nil && *end.FramesSent > *start.FramesSent {
			c.CPUPerKFrames = cpu * 1000 / (*end.FramesSent - *start.FramesSent) * 1000
		}
	}
	c.Judged, c.JudgeErr = judgeFile(path, judge)
	return c, nil
}

// section is the report's Rig section, and the warnings for its top.
func (c rigCost) section() (report.Section, []string) {
	var warnings []string
	cpu := "not measured (the load did not run past its ramp-up)"
	if c.ToS > c.FromS {
		kernel := ""
		if c.SystemShare >= 0 {
			kernel = fmt.Sprintf(", %.1f%% of it in the kernel", 100*c.SystemShare)
		}
		cpu = fmt.Sprintf("%.1f%% of one core from minute %.0f to %.0f (%.1f ms per 1,000 frames sent%s)",
			100*c.CPUShare, c.FromS/60, c.ToS/60, c.CPUPerKFrames, kernel)
		if c.CPUShare > rigCPUWarnShare {
			warnings = append(warnings, fmt.Sprintf("the rig used %.0f%% of a core beside the relay (over %.0f%%): it competes with the relay for CPU, so the relay's lag and memory may be off — fewer hosts or a lower rate, or a machine with more cores, make a cleaner measurement", 100*c.CPUShare, 100*rigCPUWarnShare))
		}
	}
	verdict := "not judged"
	if c.JudgeErr != nil {
		verdict = "not judged: " + c.JudgeErr.Error()
	} else {
		j := c.Judged
		verdict = fmt.Sprintf("%s (%s): %+.1f MiB/h, level %.0f MiB", j.Verdict, j.CarriedBy, j.SlopeMiBPerHour, j.LevelMiB)
		if j.Verdict != trend.Pass {
			warnings = append(warnings, fmt.Sprintf("the rig's own memory did not level off (%s, %+.0f MiB/h): a rig that grows takes memory and CPU from the relay as the run goes on", j.Verdict, j.SlopeMiBPerHour))
		}
	}
	md := fmt.Sprintf(`The rig (fleet, pacer, measuring consumer and controller, one process) beside the relay:

| CPU | RSS (RssAnon) at the end | peak | goroutines | its memory's verdict |
|---|---|---|---|---|
| %s | %.0f MiB | %.0f MiB | %.0f | %s |
`, cpu, c.RSSEndMiB, c.PeakMiB, c.Goroutines, verdict)
	return report.Section{Title: "Rig", Markdown: md}, warnings
}
