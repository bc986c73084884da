package soak

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/relaysoak/relaysoak/soak/report"
	"github.com/relaysoak/relaysoak/soak/rundir"
	"github.com/relaysoak/relaysoak/soak/verdict"
)

// writeRigSamples writes an hour of rig samples every 10 s: frames at
// rate/s from 30 s on, CPU at share of a core, RssAnon flat at mib plus
// growth MiB/h.
func writeRigSamples(t *testing.T, share, mib, growth float64) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), rundir.RigSamples)
	out, err := rundir.OpenAppender(path)
	require.NoError(t, err)
	defer out.Close()
	t0 := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	for s := 0.0; s <= 3600; s += 10 {
		el, frames := s, max(0, s-30)*700
		l := rundir.Line{Sample: rundir.Sample{T: t0.Add(time.Duration(s) * time.Second), ElapsedS: &el, FramesSent: &frames,
			Signals: map[string]float64{rundir.SignalRssAnon: (mib + growth*s/3600) * (1 << 20)}},
			Context: map[string]float64{"cpu_seconds": 5 + share*s, "cpu_system_seconds": 1 + share/4*s, "goroutines": 5600}}
		require.NoError(t, out.Write(l))
	}
	return path
}

func TestRigSectionOfALightRig(t *testing.T) {
	c, err := readOwnCost(writeRigSamples(t, 0.08, 250, 0), 2*time.Minute, verdict.Config{})
	require.NoError(t, err)
	assert.InDelta(t, 0.08, c.CPUShare, 1e-9)
	assert.InDelta(t, 160, c.FromS, 1e-9, "the window opens 2 min after the first sample with frames (at 40 s)")
	assert.InDelta(t, 0.08*1e6/700, c.CPUPerKFrames, 1e-6)
	assert.InDelta(t, 250, c.RSSEndMiB, 1e-9)
	sec, warnings := report.OwnCostSection(c)
	assert.Empty(t, warnings)
	assert.Equal(t, "Rig", sec.Title)
	assert.Contains(t, sec.Markdown, "8.0% of one core from minute 3 to 60")
	assert.Contains(t, sec.Markdown, "2.0% of it in the kernel")
	assert.Contains(t, sec.Markdown, "| 250 MiB |")
	assert.Contains(t, sec.Markdown, "PASS")
}

func TestRigSectionWarnsOfAHeavyOrGrowingRig(t *testing.T) {
	c, err := readOwnCost(writeRigSamples(t, 0.27, 500, 300), 2*time.Minute, verdict.Config{})
	require.NoError(t, err)
	_, warnings := report.OwnCostSection(c)
	require.Len(t, warnings, 2)
	assert.Contains(t, warnings[0], "the rig used 27% of a core")
	assert.Contains(t, warnings[1], "did not level off (LEAK")
}

func TestRigCostOfAnUnreadableFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), rundir.RigSamples)
	require.NoError(t, os.WriteFile(path, []byte("{\"elapsed_s\":1}\nnot json\n"), 0o644))
	_, err := readOwnCost(path, time.Minute, verdict.Config{})
	assert.ErrorContains(t, err, rundir.RigSamples+":2")
}
