package soak

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/relaysoak/relaysoak/internal/sharedfiles"
	"github.com/relaysoak/relaysoak/replay"
)

// A raw dump directory as the capture, verbatim: imported, its source
// files digested as given, its shape read, and the replay told to go on
// re-hosted after the real frames; every default filled for run.json.
func TestPrepareLoadFromTheSharedCapture(t *testing.T) {
	dir := sharedfiles.CaptureDir(t)
	ld, err := prepareLoad(context.Background(), Config{Hosts: 50, Rate: 50, Duration: time.Hour, Capture: dir, CaptureMode: replay.Verbatim}.withDefaults(), io.Discard)
	require.NoError(t, err)
	defer ld.cleanup()
	require.NotNil(t, ld.capture)
	assert.Equal(t, dir, ld.capture.Path)
	assert.Len(t, ld.capture.SHA256, 2, "frames and DID documents, as given")
	assert.Contains(t, ld.capture.SHA256, filepath.Join(dir, "frames.bin.zst"))
	for _, sum := range ld.capture.SHA256 {
		assert.Len(t, sum, 64)
	}
	assert.Equal(t, replay.Verbatim, ld.replay.Mode)
	assert.True(t, ld.replay.ThenRehosted)
	require.NotNil(t, ld.shape, "re-hosted traffic follows the capture's shape")
	require.NotNil(t, ld.replay.Churn, "the effective churn, defaults filled")
	assert.Equal(t, replay.DefaultChurn.Identity, ld.replay.Churn.Identity, "one #identity in 150 frames is too few: default")
	assert.Equal(t, "zipf", ld.replay.Weights.Kind, "a capture from one origin has no skew of its own: the default applies")
	assert.Equal(t, int64(1), ld.replay.Seed)

	_, err = prepareLoad(context.Background(), Config{Hosts: 5, Rate: 5, Capture: filepath.Join(t.TempDir(), "missing")}.withDefaults(), io.Discard)
	assert.Error(t, err)
}

// A minute that fell more than 1% short is the rig's doing, said at the
// top of the report; the ramp's minutes and a last partial one are not.
func TestLoadSectionWarnsWhenTheRigFellShort(t *testing.T) {
	ld := &load{replay: replay.Config{Rate: 100, Window: time.Minute, RampUp: time.Minute, Weights: replay.Weights{Kind: "zipf", S: 1.2}, Churn: &replay.DefaultChurn}}
	win := func(i int, frames int64, target float64, length time.Duration) replay.Window {
		start := time.Duration(i) * time.Minute
		return replay.Window{Index: i, Start: start, End: start + length, Frames: frames, Target: target, Rate: float64(frames) / length.Seconds()}
	}
	ld.report = replay.Report{Windows: []replay.Window{
		win(0, 1000, 3000, time.Minute), // the ramp: not judged
		win(1, 6000, 6000, time.Minute),
		win(2, 5995, 6000, time.Minute), // 0.08% short: fine
		win(3, 6000, 6000, time.Minute),
		win(4, 100, 3000, 30*time.Second), // partial, at the end
	}, Lateness: replay.Lateness{P50: time.Millisecond, P99: 20 * time.Millisecond}}
	sec, warnings := ld.section()
	assert.Empty(t, warnings)
	assert.Contains(t, sec.Markdown, "3 minutes, 99.9 to 100.0 frames/s")
	assert.Contains(t, sec.Markdown, "p99 20ms")

	ld.report.Windows[3] = win(3, 5800, 6000, time.Minute)
	_, warnings = ld.section()
	require.Len(t, warnings, 1)
	assert.Contains(t, warnings[0], "the rig, not the relay, was the bottleneck")
	assert.Contains(t, warnings[0], "minute 4 (5800 of 6000 frames, 3.3% short)")
	assert.True(t, strings.HasPrefix(warnings[0], "the rig"))
}
