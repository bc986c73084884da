package attribute

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewPlanDefault(t *testing.T) {
	p, err := NewPlan(PlanConfig{})
	require.NoError(t, err)
	t.Log("\n" + p.Text())
	assert.LessOrEqual(t, p.Total(), 110*time.Minute, "a phase per factor fits under two hours")
	raised := map[Factor]int{}
	bases := 0
	for _, ph := range p.Phases {
		if ph.Raised == "" {
			bases++
		} else {
			raised[ph.Raised]++
			assert.Equal(t, 2.5, ph.Multiplier)
		}
	}
	for _, f := range AllFactors {
		assert.Equal(t, 1, raised[f], "factor %s raised once", f)
	}
	assert.GreaterOrEqual(t, bases, 2)
	assert.Empty(t, p.Phases[0].Raised, "starts with baseline")
	assert.Empty(t, p.Phases[len(p.Phases)-1].Raised, "ends with baseline")
	assert.Contains(t, p.Text(), "DID resolutions ×2.5")
}

func TestNewPlanErrors(t *testing.T) {
	_, err := NewPlan(PlanConfig{MinDetectMiBPerHour: 1})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "over the 120 min cap")
	t.Log(err)
	_, err = NewPlan(PlanConfig{Multiplier: 4})
	assert.ErrorContains(t, err, "outside [1.5, 3]")
	_, err = NewPlan(PlanConfig{PhaseLength: 20 * time.Minute})
	assert.ErrorContains(t, err, "11 phases of 20 min plus a 10 min warm-up take 230 min")
	_, err = NewPlan(PlanConfig{Warmup: 110 * time.Minute})
	assert.ErrorContains(t, err, "exceed the 120 min cap")
}
