package report

import (
	"strings"
	"testing"
	"time"

	"github.com/relaysoak/relaysoak/replay"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A minute that fell more than 1% short is the rig's doing, said at the
// top of the report; the ramp's minutes and a last partial one are not.
func TestLoadSectionWarnsWhenTheRigFellShort(t *testing.T) {
	ld := Load{Replay: replay.Config{Rate: 100, Window: time.Minute, RampUp: time.Minute, Weights: replay.Weights{Kind: "zipf", S: 1.2}, Churn: &replay.DefaultChurn}}
	win := func(i int, frames int64, target float64, length time.Duration) replay.Window {
		start := time.Duration(i) * time.Minute
		return replay.Window{Index: i, Start: start, End: start + length, Frames: frames, Target: target, Rate: float64(frames) / length.Seconds()}
	}
	ld.Report = replay.Report{Windows: []replay.Window{
		win(0, 1000, 3000, time.Minute), // the ramp: not judged
		win(1, 6000, 6000, time.Minute),
		win(2, 5995, 6000, time.Minute), // 0.08% short: fine
		win(3, 6000, 6000, time.Minute),
		win(4, 100, 3000, 30*time.Second), // partial, at the end
	}, Lateness: replay.Lateness{P50: time.Millisecond, P99: 20 * time.Millisecond}}
	sec, warnings := LoadSection(ld)
	assert.Empty(t, warnings)
	assert.Contains(t, sec.Markdown, "3 minutes, 99.9 to 100.0 frames/s")
	assert.Contains(t, sec.Markdown, "p99 20ms")

	ld.Report.Windows[3] = win(3, 5800, 6000, time.Minute)
	_, warnings = LoadSection(ld)
	require.Len(t, warnings, 1)
	assert.Contains(t, warnings[0], "the rig, not the relay, was the bottleneck")
	assert.Contains(t, warnings[0], "minute 4 (5800 of 6000 frames, 3.3% short)")
	assert.True(t, strings.HasPrefix(warnings[0], "the rig"))
}
