package harness_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/relaysoak/relaysoak/captures"
	"github.com/relaysoak/relaysoak/fakepds"
	"github.com/relaysoak/relaysoak/internal/sharedfiles"
	"github.com/relaysoak/relaysoak/relay"
	"github.com/relaysoak/relaysoak/replay"
	"github.com/relaysoak/relaysoak/soak/harness"
	"github.com/relaysoak/relaysoak/soak/harness/harnesstest"
)

// The 150 real frames of the shared capture,
// verbatim, through the real indigo relay in strict mode. All 148 commits
// come out and verify against the real keys; the #identity and #account
// (of an account the capture has no document for) pass too.
func TestE2EVerbatimThroughIndigoStrict(t *testing.T) {
	capPath := sharedCapture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rg := harnesstest.Start(t, ctx, harness.Config{
		Fleet:        fakepds.Config{Hosts: 20, AccountsPerHost: 1},
		Relay:        relay.Config{Memory: 1 << 30, Profile: &relay.Indigo{}},
		MetricsEvery: 2 * time.Second,
	})
	r, err := replay.New(rg.Fleet(), replay.Config{Mode: replay.Verbatim, Capture: capPath, Rate: 50, Weights: replay.Weights{Kind: "capture"}})
	require.NoError(t, err)
	rep, err := r.Run(ctx)
	require.NoError(t, err)
	require.True(t, rep.CaptureEnded)
	require.Equal(t, int64(150), rep.Frames)
	rg.Drain(ctx, 10*time.Second, time.Minute)
	// The #identity and #account come last in the capture: give the relay
	// a moment to pass them on after the last commit.
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if s := rg.Counts().Firehose; s.Identity >= 1 && s.Account >= 1 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	res, err := rg.Finish(ctx)
	require.NoError(t, err)
	fh := res.Firehose
	t.Logf("replay: %d frames, kinds %v, made-up %d (%d frames), lateness %+v", rep.Frames, rep.ByKind, rep.MadeUp, rep.MadeUpFrames, rep.Lateness)
	t.Logf("firehose: commits %d identity %d account %d sync %d errors %d decode-errors %d; verified %d failed %d skipped %d; failures %v",
		fh.Commits, fh.Identity, fh.Account, fh.Sync, fh.ErrorFrames, fh.DecodeErrors, fh.Verified, fh.VerifyFailed, fh.VerifySkipped, fh.Failures)
	t.Logf("log counts: %v; exit %s", res.LogCounts, res.Exit)

	assert.Equal(t, uint64(148), fh.Commits, "every captured commit comes out of the relay")
	assert.Equal(t, uint64(148), fh.Verified, "and verifies against the real keys")
	assert.Zero(t, fh.VerifyFailed, "%v", fh.Failures)
	assert.Equal(t, uint64(1), fh.Identity)
	assert.Equal(t, uint64(1), fh.Account)
	assert.Zero(t, fh.ErrorFrames)
	assert.Zero(t, fh.DecodeErrors)
	assert.Zero(t, res.LogCounts[relay.IndigoLogFailedHandling], "no 'failed handling event'")
	assert.Zero(t, res.LogCounts[relay.IndigoLogSkippedSig], "every signature was checked")
	assert.Zero(t, res.LogCounts[relay.IndigoLogBadPrevData])
	require.NotNil(t, res.Exit)
	assert.True(t, res.Exit.Expected, "relay died during the run: %s", res.Exit)
}

// sharedCapture imports the shared dump into a capture in a temp dir.
func sharedCapture(t testing.TB) string {
	t.Helper()
	dir := sharedfiles.CaptureDir(t)
	out := filepath.Join(t.TempDir(), "shared.rsoak")
	_, err := captures.Import(context.Background(), captures.ImportConfig{
		Frames: filepath.Join(dir, "frames.bin.zst"), DIDDocs: filepath.Join(dir, "did_docs.json.zst"),
		Out: out, Source: "wss://bsky.network/xrpc/com.atproto.sync.subscribeRepos",
	})
	require.NoError(t, err)
	return out
}
