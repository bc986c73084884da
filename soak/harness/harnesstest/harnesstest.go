// Package harnesstest starts a harness (fleet, relay in a container, consumer) for
// a test and removes it when the test ends, pass or fail; or, for a soak
// that must take seconds, each arm's harness around a relay it runs as a
// process beside the test (Processes).
package harnesstest

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/relaysoak/relaysoak/internal/testkit"
	"github.com/relaysoak/relaysoak/relay"
	"github.com/relaysoak/relaysoak/replay"
	"github.com/relaysoak/relaysoak/soak/harness"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Start assembles the rig and checks afterwards that no container of the
// run is left. A missing Docker engine fails the test: a skip would read as
// a pass.
func Start(t testing.TB, ctx context.Context, cfg harness.Config) *harness.Harness {
	t.Helper()
	testkit.RequireDocker(t)
	if cfg.RunDir == "" {
		cfg.RunDir = t.TempDir()
	}
	if cfg.Log == nil {
		cfg.Log = testkit.LogWriter{T: t}
	}
	runID := filepath.Base(cfg.RunDir)
	t.Cleanup(func() {
		testkit.AssertNoneLeft(t, relay.Label+".run="+runID, testkit.Containers)
	})
	r, err := harness.Start(ctx, cfg)
	if r != nil {
		t.Cleanup(func() { assert.NoError(t, r.Close(context.Background())) })
	}
	require.NoError(t, err, "Docker is required for this test")
	return r
}

// Write drives h's fleet with synthetic traffic at rate frames/s for d, in
// churn's mix (nil: the realistic one), and stops early when the relay
// dies, which the test's own checks then find.
func Write(ctx context.Context, h *harness.Harness, rate float64, d time.Duration, churn *replay.Churn) error {
	ctx, cancel := h.UntilExit(ctx)
	defer cancel()
	_, err := h.Load(ctx, replay.Config{Rate: rate, Duration: d, Churn: churn})
	return err
}
