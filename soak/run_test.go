package soak

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaysoak/relaysoak/internal/sharedfiles"
	"github.com/relaysoak/relaysoak/internal/testkit"
	"github.com/relaysoak/relaysoak/relay"
	"github.com/relaysoak/relaysoak/replay"
	"github.com/relaysoak/relaysoak/soak/rundir"
	"github.com/relaysoak/relaysoak/soak/verdict"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// requireDocker fails (never skips) when the engine is missing: these tests
// exist to run the real relay in a real container. Afterwards no container
// of the run may be left.
func requireDocker(t *testing.T, runID string) {
	t.Helper()
	testkit.RequireDocker(t)
	t.Cleanup(func() { testkit.AssertNoneLeft(t, relay.Label+".run="+runID, testkit.Containers) })
}

// readLines reads a JSONL file written so far.
func readLines(t *testing.T, path string) []rundir.Line {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out []rundir.Line
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l rundir.Line
		require.NoError(t, json.Unmarshal(sc.Bytes(), &l))
		out = append(out, l)
	}
	return out
}

// killRelay SIGKILLs the run's relay container, as a crash would; it runs
// beside the soak, so it reports instead of stopping the test.
func killRelay(t *testing.T, id string) {
	t.Helper()
	out, err := exec.Command("docker", "ps", "-q", "--filter", "label=org.relaysoak.run="+id, "--filter", "label=org.relaysoak.profile").Output()
	ids := strings.Fields(string(out))
	if assert.NoError(t, err) && assert.Len(t, ids, 1, "one relay container for run %s", id) {
		assert.NoError(t, exec.Command("docker", "kill", ids[0]).Run())
	}
}

// smokeConfig is the smoke tier's soak of indigo: ten hosts, the shared
// capture's real frames first (verbatim), then re-hosted traffic in its
// shape, every delivered commit verified; long enough for six samples, a
// heap profile at a quarter of the run and one at its end.
func smokeConfig(t *testing.T, id string) Config {
	t.Helper()
	return Config{RunsDir: t.TempDir(), ID: id, Hosts: 10, Rate: 30, Duration: 90 * time.Second, SampleEvery: 5 * time.Second,
		MemLimit: 1 << 30, VerifyEvery: 1, Out: io.Discard,
		Capture: sharedfiles.CaptureDir(t), CaptureMode: replay.Verbatim}
}

// The real indigo relay, built here, started, fed real and re-hosted
// frames, sampled by every probe and judged: the one soak of it in `make
// test`.
func TestSmokeSoakWithIndigo(t *testing.T) {
	requireDocker(t, "e2e")
	// The image first (on a fresh machine, minutes of building): the clock
	// below times the soak, not the build.
	_, _, err := relay.EnsureIndigoImage(t.Context(), relay.ImageConfig{Log: testkit.LogWriter{T: t}})
	require.NoError(t, err)
	cfg := smokeConfig(t, "e2e")
	dir, capture := cfg.RunsDir, cfg.Capture
	metrics := testkit.FreeAddr(t)
	cfg.MetricsListen = metrics
	done := make(chan Outcome, 1)
	errc := make(chan error, 1)
	go func() {
		out, err := Run(context.Background(), cfg)
		errc <- err
		done <- out
	}()
	runDir := filepath.Join(dir, "e2e")
	// While the run goes on, samples from all three probes are on disk and
	// the rig's metrics endpoint serves them.
	require.Eventually(t, func() bool {
		_, err := os.Stat(filepath.Join(runDir, rundir.Samples))
		return err == nil && len(readLines(t, filepath.Join(runDir, rundir.Samples))) >= 6
	}, 2*time.Minute, time.Second, "samples.jsonl must grow while the run goes on")
	lines := readLines(t, filepath.Join(runDir, rundir.Samples))
	last := lines[len(lines)-1]
	assert.Positive(t, last.Signals[rundir.SignalRssAnon], "proc probe")
	assert.Positive(t, last.Signals[rundir.SignalCgroupWorkingSet], "cgroup probe")
	assert.Positive(t, last.Signals["rss"], "metrics probe (process_resident_memory_bytes)")
	assert.Positive(t, last.Signals[rundir.SignalHeapInuse], "metrics probe (heap)")
	assert.Positive(t, last.Context[rundir.SignalLiveHeap], "live heap probe (the collector's goal), as context")
	assert.NotContains(t, last.Signals, rundir.SignalLiveHeap, "not judged: its teeth read as growth")
	assert.Less(t, last.Context[rundir.SignalLiveHeap], last.Signals["rss"], "the live heap is part of the resident set")
	assert.Positive(t, last.Context[rundir.Goroutines], "the relay's goroutines, from the gauge its profile names")
	assert.NotContains(t, last.Context, "go_goroutines", "under the one name only")
	assert.Positive(t, last.Context["commits_delivered"])
	resp, err := http.Get("http://" + metrics + "/metrics")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Contains(t, string(body), `relaysoak_relay_memory_bytes{signal="rss_anon"}`)
	assert.Contains(t, string(body), `relaysoak_fleet_frames_emitted_total{kind="commit"}`)
	assert.Contains(t, string(body), "relaysoak_fleet_plc_requests_total", "the fleet's own counters are served too")
	assert.Contains(t, string(body), "relaysoak_lag_seconds_count")
	assert.Contains(t, string(body), "process_resident_memory_bytes", "the rig's own process")

	require.NoError(t, <-errc)
	out := <-done
	s := out.Summary
	assert.NotEqual(t, verdict.Leak, s.Judged.Verdict, "a short run of the real indigo relay is not a leak: %s", s.Judged.Reason)
	assert.GreaterOrEqual(t, s.Delivery, 0.99)
	require.NotNil(t, s.Judged.Kept, "indigo serves its live heap: what it keeps is judged, or the report says why not yet")
	assert.Equal(t, rundir.SignalRssAnon, s.Judged.Kept.OSView)
	if s.Judged.Kept.NotYet == "" {
		assert.Equal(t, verdict.FloorsSignal(rundir.SignalLiveHeap), s.Judged.CarriedBy)
	} else {
		assert.Equal(t, rundir.SignalRssAnon, s.Judged.CarriedBy, s.Judged.Kept.NotYet)
	}
	require.NotNil(t, s.Judged.Goroutines, "indigo's goroutines are judged")
	assert.Positive(t, s.Judged.Goroutines.LevelMiB)
	md, err := os.ReadFile(filepath.Join(runDir, rundir.Report))
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(md), fmt.Sprintf("# relaysoak e2e — %s", s.Judged.Verdict)), "report.md opens with the verdict")
	assert.Contains(t, string(md), "## Heap growth", "a Go relay's heap is profiled and diffed")
	for _, f := range []string{rundir.Plot, rundir.Verdict, rundir.JUnit, rundir.Run, rundir.Events, rundir.RigSamples, "relay.log", "heap-warmup.pb.gz", "heap-end.pb.gz"} {
		st, err := os.Stat(filepath.Join(runDir, f))
		require.NoError(t, err, f)
		assert.Positive(t, st.Size(), f)
	}
	info, err := rundir.ReadRunInfo(filepath.Join(runDir, rundir.Run))
	require.NoError(t, err)
	assert.NotEmpty(t, info.ImageID, "run.json records the image's ID")
	assert.EqualValues(t, 10, info.Config["hosts"])
	assert.Equal(t, rundir.RunFormat, info.Format)
	require.NotNil(t, info.Capture, "run.json names the capture")
	assert.Equal(t, capture, info.Capture.Path)
	assert.Len(t, info.Capture.SHA256, 2, "digests of the source files as given")
	assert.Equal(t, replay.Verbatim, info.Load.Mode)
	assert.True(t, info.Load.ThenRehosted)
	require.NotNil(t, info.Load.Churn, "the effective churn, not zeros meaning defaults")
	assert.Positive(t, info.Load.Churn.Identity)

	// Every one of the capture's 148 real commits came out and verified
	// against the real keys, counted apart; re-hosted commits followed.
	require.NotNil(t, s.Captured)
	assert.Equal(t, uint64(148), s.Captured.Delivered)
	assert.Equal(t, uint64(148), s.Captured.Verified)
	assert.Zero(t, s.Captured.Failed)
	assert.Greater(t, s.CommitsSent, uint64(148+1000), "re-hosted traffic for the rest of the run")
	assert.Less(t, s.LagP99Ms, 60_000.0, "the captured frames keep their live-network times: they are no lag")
	assert.Contains(t, string(md), "## Load")
	assert.Contains(t, string(md), "captured commits (real frames) | 148 delivered, 148 verified, 0 failed")
	var achieved bool
	for _, l := range readLines(t, filepath.Join(runDir, rundir.Samples)) {
		achieved = achieved || l.Context["achieved_rate"] > 0 && l.Context["lateness_p99_ms"] >= 0
	}
	assert.True(t, achieved, "each minute's achieved rate and lateness reach samples.jsonl")
	events, err := os.ReadFile(filepath.Join(runDir, rundir.Events))
	require.NoError(t, err)
	for _, e := range []string{`"start"`, `"relay_ready"`, `"load_stopped"`, `"relay_stopped"`, `"report_written"`} {
		assert.Contains(t, string(events), e)
	}
}

// The smoke tier fails when the relay cannot start: the same soak with an
// image that exits at once (the test relay, which the indigo profile's
// settings do not tell where its hosts are) ends before any load, naming
// the image and why, and keeps the events written so far.
func TestSmokeFailsWhenTheRelayDoesNotStart(t *testing.T) {
	requireDocker(t, "smoke-nostart")
	cfg := smokeConfig(t, "smoke-nostart")
	cfg.RelayImage = leakyTarget(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, err := Run(ctx, cfg)
	require.Error(t, err, "a relay that never starts cannot pass the smoke tier")
	t.Logf("%v", err)
	assert.ErrorIs(t, err, ErrNotStarted)
	assert.Contains(t, err.Error(), "exited before it became healthy")
	assert.Contains(t, err.Error(), "set UPSTREAM_URL", "the relay's own last words are quoted")
	events, rerr := os.ReadFile(filepath.Join(cfg.RunsDir, cfg.ID, rundir.Events))
	require.NoError(t, rerr)
	assert.Contains(t, string(events), `"start_failed"`)
}

// The controller's behaviours against the real relay in its container,
// one test each (TestController… test them at length in seconds).
func TestE2ESoakInterruptedStillReports(t *testing.T) {
	requireDocker(t, "int")
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	cfg := Config{RunsDir: t.TempDir(), ID: "int", Hosts: 5, Rate: 20, Duration: 20 * time.Minute, SampleEvery: 2 * time.Second, Out: io.Discard}
	whenSampled(t, cfg, 8, func() { cancel(fmt.Errorf("SIGINT")) })
	out, err := Run(ctx, cfg)
	require.NoError(t, err)
	assert.True(t, out.Summary.Interrupted)
	assert.Contains(t, out.Summary.StopReason, "SIGINT")
	assert.Less(t, out.Summary.Duration, 2*time.Minute)
	md, err := os.ReadFile(filepath.Join(out.Dir, rundir.Report))
	require.NoError(t, err)
	assert.Contains(t, string(md), "stopped early")
	assert.GreaterOrEqual(t, len(readLines(t, filepath.Join(out.Dir, rundir.Samples))), 8)
}

func TestE2ESoakRelayKilledIsCrashed(t *testing.T) {
	requireDocker(t, "killed")
	cfg := Config{RunsDir: t.TempDir(), ID: "killed", Hosts: 5, Rate: 20, Duration: 10 * time.Minute, SampleEvery: 2 * time.Second, Out: io.Discard}
	whenSampled(t, cfg, 8, func() { killRelay(t, "killed") })
	out, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	assertCrashed(t, out, 8)
	assert.Less(t, out.Summary.Duration, 2*time.Minute)
}

func TestE2ESoakRestartCountsRestarts(t *testing.T) {
	requireDocker(t, "restart")
	cfg := Config{RunsDir: t.TempDir(), ID: "restart", Hosts: 5, Rate: 20, Duration: 40 * time.Second,
		SampleEvery: 2 * time.Second, Restart: true, Out: io.Discard}
	whenSampled(t, cfg, 5, func() { killRelay(t, "restart") })
	out, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	assert.Greater(t, out.Summary.Duration, 38*time.Second)
	assertRestartedOnce(t, out, 4)
}
