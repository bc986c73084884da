package soak

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/relaysoak/relaysoak/internal/testkit"
	"github.com/relaysoak/relaysoak/relay"
	"github.com/relaysoak/relaysoak/replay"
	"github.com/relaysoak/relaysoak/soak/crowd"
	"github.com/relaysoak/relaysoak/soak/report"
	"github.com/relaysoak/relaysoak/soak/rundir"
	"github.com/relaysoak/relaysoak/soak/verdict"
)

// Positive control (a), bytes retained per frame received, run as an A/B
// soak against the same target with its leak set to zero: both containers
// fed by one fleet, each judged on its own, then the difference. B alone
// must be LEAK with the slope it retains (±20%), A not LEAK, and the
// comparison must name B and estimate the difference within ±20%.
func TestE2EControlLeakPerFrameAB(t *testing.T) {
	const (
		bytesPerFrame = 1200
		rate          = 200.0 // ≈ 824 MiB/h for B
	)
	img := leakyTarget(t)
	id := fmt.Sprintf("ab-%d", time.Now().UnixNano())
	cfg := Config{
		RunsDir: t.TempDir(), ID: id, Out: testkit.LogWriter{T: t},
		Hosts: 20, Rate: rate, Duration: 150 * time.Second, SampleEvery: 2 * time.Second,
		Churn:      replay.NoChurn, // every frame a commit: frames sent = frames each target receives
		RelayImage: img, Profile: &leakyRelay{Env: map[string]string{"LEAK_BYTES_PER_FRAME": "0"}},
		Compare: &Compare{RelayImage: img, Profile: &leakyRelay{Env: map[string]string{"LEAK_BYTES_PER_FRAME": strconv.Itoa(bytesPerFrame)}}},
		CPUs:    0.5,
		Judge:   shortJudge,
	}
	out, ab := soakLeakyAB(t, cfg)
	c := ab.Comparison
	t.Logf("A: %s %.1f MiB/h (CI %.1f…%.1f); B: %s %.1f MiB/h (CI %.1f…%.1f); fairness %v",
		ab.A.Judged.Verdict, c.A.SlopeMiBPerHour, c.A.SlopeCI[0], c.A.SlopeCI[1],
		ab.B.Judged.Verdict, c.B.SlopeMiBPerHour, c.B.SlopeCI[0], c.B.SlopeCI[1], ab.Fairness)

	require.True(t, c.Comparable, c.Sentence)
	assert.Equal(t, verdict.Leak, ab.Verdict, "B grows materially more than A")
	assert.Equal(t, verdict.Leak, ab.B.Judged.Verdict)
	assert.NotEqual(t, verdict.Leak, ab.A.Judged.Verdict, ab.A.Judged.Reason)
	assert.Contains(t, c.Sentence, "B ("+id+"/B) grows")
	assert.Contains(t, c.Sentence, "more than A")
	want := bytesPerFrame * windowRate(t, filepath.Join(out.Dir, rundir.B), ab.B.Judged, framesSent) / mibPerHour
	t.Logf("B alone: retains %.1f MiB/h; measured %.1f MiB/h (%+.1f%%)", want, ab.B.Judged.SlopeMiBPerHour, 100*(ab.B.Judged.SlopeMiBPerHour/want-1))
	assert.InEpsilon(t, want, ab.B.Judged.SlopeMiBPerHour, 0.20, "B's own slope within ±20%% of what it retains")
	t.Logf("B retains %.1f MiB/h more than A; measured difference %.1f MiB/h (%+.1f%%), CI %.1f…%.1f",
		want, c.DiffMiBPerHour, 100*(c.DiffMiBPerHour/want-1), c.DiffCI[0], c.DiffCI[1])
	assert.InEpsilon(t, want, c.DiffMiBPerHour, 0.20, "difference within ±20%% of what B retains")

	// Same frames at the same moments; each arm a complete run directory.
	assertABRunDir(t, out.Dir, ab)
	b, err := os.ReadFile(filepath.Join(out.Dir, rundir.Verdict))
	require.NoError(t, err)
	var v struct {
		Verdict    verdict.Verdict `json:"verdict"`
		Comparison struct {
			Diff float64 `json:"diff_mib_per_hour"`
		} `json:"comparison"`
	}
	require.NoError(t, json.Unmarshal(b, &v))
	assert.Equal(t, verdict.Leak, v.Verdict)
	assert.InDelta(t, c.DiffMiBPerHour, v.Comparison.Diff, 1e-9)
}

// Positive control (c), on the consumer side, judged on what each relay
// keeps: a target that keeps bytes in its Go heap for every subscriber that
// leaves (a subscriber's channel or buffers never freed after it
// disconnected, or was cut off as too slow — the leaks fixed in public relay
// code), under consumer churn, as B of an A/B soak whose A is the same
// target keeping none. Each relay has its own crowd of consumers resuming,
// asking for old cursors, reading too slowly and vanishing; both name their
// live heap and hold keptTeeth in it, so the floors carry both verdicts.
//   - B is LEAK on its floors within ±20% of what it keeps per disconnect.
//   - A is PASS on its floors, though each of its slow readers pins a
//     queue in its heap until it reads again or is cut off: bounded
//     pinning, which its RSS's high-water mark can read as growth.
//   - The A/B compares floors: B keeps more than A.
func TestE2EControlConsumerDisconnectAB(t *testing.T) {
	const perDisconnect = 32 << 10 // × about 10 disconnects/s ≈ 1.1 GiB/h
	img := leakyTarget(t)
	id := fmt.Sprintf("consumers-%d", time.Now().UnixNano())
	// The Go runtime of either target grows for the first minute while the
	// consumers' connections and buffers reach their steady churn: judge
	// after it. Floors 6 s apart need windows of 24 s and more (a quarter
	// of MinWindow).
	judge := shortJudge
	judge.Warmup, judge.MinWindow = time.Minute, 90*time.Second
	// A third of what B keeps still calls B a leak, and leaves room above
	// A's floors' noise: its slow readers' queues come and go in its heap.
	judge.MinSlopeMiBPerHour = 200
	leak := func(n int) relay.Profile {
		return &leakyRelay{Env: map[string]string{"LEAK_BYTES_PER_DISCONNECT": strconv.Itoa(n), "RETAIN_IN": "heap",
			"HEAP_TEETH": keptTeeth, "SUBSCRIBER_QUEUE": "400"}, Kept: true}
	}
	cfg := Config{
		RunsDir: t.TempDir(), ID: id, Out: testkit.LogWriter{T: t},
		Hosts: 10, Rate: 50, Duration: 180 * time.Second, SampleEvery: 500 * time.Millisecond, Churn: replay.NoChurn,
		RelayImage: img, Profile: leak(0), Compare: &Compare{RelayImage: img, Profile: leak(perDisconnect)},
		Consumers: 20, ConsumerChurn: 2 * time.Second, ConsumerSlowFor: 12 * time.Second,
		ConsumerMix: crowd.Mix{Resume: 0.4, OldCursor: 0.2, Slow: 0.1, Vanish: 0.3},
		Judge:       judge,
	}
	out, ab := soakLeakyAB(t, cfg)
	for _, arm := range []struct {
		dir string
		sum report.Summary
	}{{rundir.A, ab.A}, {rundir.B, ab.B}} {
		rate := windowRate(t, filepath.Join(out.Dir, arm.dir), arm.sum.Judged, consumerDisconnects)
		t.Logf("%s: %.1f consumer disconnects/s in the judged window", arm.dir, rate)
		assert.Greater(t, rate, 3.0, "%s: the consumers churned", arm.dir)
		md, err := os.ReadFile(filepath.Join(out.Dir, arm.dir, rundir.Report))
		require.NoError(t, err)
		assert.Contains(t, string(md), "## Consumers", "the report counts what the consumers did")
		requireFloorsJudged(t, arm.sum.Judged)
		sys := arm.sum.Judged.OSView()
		require.NotNil(t, sys)
		t.Logf("%s: %s; %s %s %.1f MiB/h (CI %.1f to %.1f)", arm.dir, arm.sum.Judged.Verdict, sys.Signal, sys.Verdict,
			sys.SlopeMiBPerHour, sys.SlopeCIMiBPerHour[0], sys.SlopeCIMiBPerHour[1])
	}
	aLines := readLines(t, filepath.Join(out.Dir, rundir.A, rundir.Samples))
	slow := aLines[len(aLines)-1].Context
	require.Positive(t, slow[rundir.CrowdCutOff]+slow[rundir.CrowdSlowNotCut], "A's slow readers had queues pinned")
	assert.Equal(t, verdict.Pass, ab.A.Judged.Verdict, "no leak under the same churn: %s", ab.A.Judged.Reason)
	require.Equal(t, verdict.Leak, ab.B.Judged.Verdict, ab.B.Judged.Reason)
	want := perDisconnect * windowRate(t, filepath.Join(out.Dir, rundir.B), ab.B.Judged, consumerDisconnects) / mibPerHour
	t.Logf("B keeps %.1f MiB/h; its floors %.1f MiB/h (%+.1f%%)", want, ab.B.Judged.SlopeMiBPerHour, 100*(ab.B.Judged.SlopeMiBPerHour/want-1))
	assert.InEpsilon(t, want, ab.B.Judged.SlopeMiBPerHour, 0.20, "B's floors within ±20%% of what it keeps per disconnect")
	assert.Equal(t, verdict.Leak, ab.Verdict, "B keeps materially more than A")
	assert.Contains(t, report.HeadlineAB(ab), "keeps", "the A/B compares what the relays keep")
}

// soakLeakyAB runs an A/B soak of the control target, checks that nothing
// of either arm is left in the engine afterwards and that both arms were
// measured, and logs the comparison.
func soakLeakyAB(t *testing.T, cfg Config) (Outcome, report.AB) {
	t.Helper()
	t.Cleanup(func() { assertNothingLeft(t, cfg.ID+"-A"); assertNothingLeft(t, cfg.ID+"-B") })
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Duration+4*time.Minute)
	defer cancel()
	out, err := Run(ctx, cfg)
	require.NoError(t, err)
	require.NotNil(t, out.AB)
	ab := *out.AB
	t.Logf("%s", report.HeadlineAB(ab))
	assertLeakyMeasured(t, ab.A)
	assertLeakyMeasured(t, ab.B)
	return out, ab
}

func TestFairnessWarningsNameTheMachine(t *testing.T) {
	even := report.Summary{CommitsSent: 1000, Delivery: 0.999, LagP99Ms: 80}
	assert.Empty(t, fairnessWarnings(even, even, 0.4), "equal arms on an idle machine")
	w := fairnessWarnings(even, even, 0.95)
	require.Len(t, w, 1)
	assert.Contains(t, w[0], "95% busy")

	behind := report.Summary{CommitsSent: 1000, Delivery: 0.90, LagP99Ms: 4000}
	w = fairnessWarnings(even, behind, 0.5)
	joined := fmt.Sprint(w)
	assert.Contains(t, joined, "B delivered only 90.00%")
	assert.Contains(t, joined, "delivery diverges")
	assert.Contains(t, joined, "lag diverges (p99 A 80 ms, B 4000 ms)")
	assert.Contains(t, joined, "may be the build's", "an idle machine points at the build")

	c0, err := readHostCPU()
	require.NoError(t, err)
	for end := time.Now().Add(100 * time.Millisecond); time.Now().Before(end); {
	}
	c1, err := readHostCPU()
	require.NoError(t, err)
	busy := c1.busySince(c0)
	assert.Greater(t, busy, 0.0, "this test spun a core")
	assert.LessOrEqual(t, busy, 1.0)
}
