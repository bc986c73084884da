package soak

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/relaysoak/relaysoak/soak/trend"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Production shape against the real indigo relay: 2,750 hosts, 700
// frames/s, long enough for 30 minutes after warm-up. The verdict must be
// an answer (PASS or LEAK, with its reason), not INCONCLUSIVE; and the rig's
// own memory, sampled the same way while driving the run, must be PASS.
func TestLongProductionShapeIndigo(t *testing.T) {
	if os.Getenv("RELAYSOAK_LONG") == "" {
		t.Skip("long tier: make test-long")
	}
	requireDocker(t, "long-prod")
	d := 40 * time.Minute
	if s := os.Getenv("RELAYSOAK_LONG_SOAK"); s != "" {
		var err error
		d, err = time.ParseDuration(s)
		require.NoError(t, err)
	}
	out, err := Run(context.Background(), Config{RunsDir: t.TempDir(), ID: "long-prod", Hosts: 2750, Rate: 700, Duration: d,
		MemLimit: 6 << 30, SampleEvery: 10 * time.Second, Out: testWriter{t}})
	require.NoError(t, err)
	s := out.Summary
	j := s.Judged
	t.Logf("verdict %s on %s: %.1f MiB/h [%.1f, %.1f], warm-up %.1f min, level %.0f MiB — %s",
		j.Verdict, j.CarriedBy, j.SlopeMiBPerHour, j.SlopeCIMiBPerHour[0], j.SlopeCIMiBPerHour[1], j.WarmupEndS/60, j.LevelMiB, j.Reason)
	t.Logf("delivery %.4f (%d of %d), lag p50 %.0f ms p99 %.0f ms, PLC requests %d, log %v",
		s.Delivery, s.CommitsOut, s.CommitsSent, s.LagP50Ms, s.LagP99Ms, s.PLCRequests, s.LogWarnings)
	assert.Contains(t, []trend.Verdict{trend.Pass, trend.Leak}, j.Verdict, "production shape for 30 minutes after warm-up must be judged: %s", j.Reason)
	assert.NotEmpty(t, j.Reason)
	assert.GreaterOrEqual(t, s.Delivery, 0.99)

	rigRep, err := judgeFile(filepath.Join(out.Dir, RigSamplesFile), trend.Config{})
	require.NoError(t, err)
	t.Logf("rig's own memory: %s, %.1f MiB/h, level %.0f MiB — %s", rigRep.Verdict, rigRep.SlopeMiBPerHour, rigRep.LevelMiB, rigRep.Reason)
	assert.Equal(t, trend.Pass, rigRep.Verdict, "the rig must not leak: %s", rigRep.Reason)
}

// testWriter sends progress lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
