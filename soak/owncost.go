package soak

import (
	"fmt"
	"time"

	"github.com/relaysoak/relaysoak/soak/report"
	"github.com/relaysoak/relaysoak/soak/rundir"
	"github.com/relaysoak/relaysoak/soak/verdict"
)

// readOwnCost reads what relaysoak itself cost from its own samples; skip
// is how long after the first frame the window starts (the ramp-up, and
// the fleet's first #sync of every account).
func readOwnCost(path string, skip time.Duration, judge verdict.Config) (report.OwnCost, error) {
	var c report.OwnCost
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
	if c.Judged, err = judgeFile(path, judge); err != nil {
		c.JudgeErr = err.Error()
	}
	return c, nil
}
