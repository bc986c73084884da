package replay

import (
	"fmt"
	"math"
	"time"
)

// Stage is one stretch of a run whose load differs from the baseline: from
// Start until the next stage's Start, frames, churn and outages run at
// these multiples of their configured rates (0 means 1, the baseline). An
// attribution plan raises one factor at a time, so what the relay retains
// can be told apart per factor.
type Stage struct {
	Start   time.Duration `json:"start"`
	Frames  float64       `json:"frames,omitempty"`
	Churn   float64       `json:"churn,omitempty"`
	Outages float64       `json:"outages,omitempty"`
}

func validateStages(stages []Stage) error {
	for i, s := range stages {
		if s.Start < 0 || i > 0 && s.Start <= stages[i-1].Start {
			return fmt.Errorf("replay: stage %d starts at %s: stages start at 0 or later, each after the one before", i, s.Start)
		}
		for name, m := range map[string]float64{"frames": s.Frames, "churn": s.Churn, "outages": s.Outages} {
			if m < 0 || math.IsNaN(m) || math.IsInf(m, 0) {
				return fmt.Errorf("replay: stage %d's %s multiplier must be a non-negative number, got %g", i, name, m)
			}
		}
	}
	return nil
}

// stageMultiplier is one factor's multiplier at elapsed: 1 before the
// first stage and where a stage leaves it 0.
func stageMultiplier(stages []Stage, of func(Stage) float64, elapsed time.Duration) float64 {
	m := 1.0
	for _, s := range stages {
		if elapsed < s.Start {
			break
		}
		m = orOne(of(s))
	}
	return m
}

func orOne(m float64) float64 {
	if m == 0 {
		return 1
	}
	return m
}

// staged is a Pacer whose rate is base's times the stage's multiplier: its
// Due integrates that product exactly, stage by stage, so a sender that
// falls behind across a boundary still catches up to the right count.
type staged struct {
	base   Pacer
	stages []Stage
	of     func(Stage) float64
}

func (p staged) Due(elapsed time.Duration) float64 {
	if len(p.stages) == 0 || elapsed <= p.stages[0].Start {
		return p.base.Due(elapsed)
	}
	due := p.base.Due(p.stages[0].Start)
	for i, s := range p.stages {
		if elapsed <= s.Start {
			break
		}
		end := elapsed
		if i+1 < len(p.stages) && p.stages[i+1].Start < elapsed {
			end = p.stages[i+1].Start
		}
		due += orOne(p.of(s)) * (p.base.Due(end) - p.base.Due(s.Start))
	}
	return due
}

func (p staged) Rate(elapsed time.Duration) float64 {
	return stageMultiplier(p.stages, p.of, elapsed) * p.base.Rate(elapsed)
}

func stageFrames(s Stage) float64  { return s.Frames }
func stageChurn(s Stage) float64   { return s.Churn }
func stageOutages(s Stage) float64 { return s.Outages }
