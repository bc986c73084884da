package soak

import (
	"context"
	"io"
	"path/filepath"
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
