package replay

import (
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A run's load is checked and filled in before any fleet exists.
func TestNormalizeNeedsNoFleet(t *testing.T) {
	cfg, err := Config{}.Normalize()
	require.NoError(t, err)
	assert.Equal(t, Rehosted, cfg.Mode)
	assert.Equal(t, 700.0, cfg.Rate)
	assert.Equal(t, "zipf", cfg.Weights.Kind)
	assert.Equal(t, time.Minute, cfg.Window)
	assert.Equal(t, runtime.GOMAXPROCS(0), cfg.Workers)
	assert.EqualValues(t, 1, cfg.Seed)
	require.NotNil(t, cfg.Churn)
	assert.Equal(t, DefaultChurn, *cfg.Churn)

	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Mode: "sideways"}, "mode must be"},
		{Config{Mode: Verbatim}, "needs a capture"},
		{Config{Speed: -1}, "speed must be positive"},
		{Config{Rate: -5}, "rate must be a positive"},
		{Config{ThenRehosted: true}, "ThenRehosted"},
		{Config{Stages: []Stage{{Frames: -1}}}, "non-negative"},
	} {
		_, err := c.cfg.Normalize()
		assert.ErrorContains(t, err, c.want, "%+v", c.cfg)
	}
}
