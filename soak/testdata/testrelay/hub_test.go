package main

// These tests run only when the package is named (go test
// ./soak/testdata/testrelay): ./... skips testdata. They drive the hub with
// the soak's consumer crowd, as a soak does.

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/events"
	lexutil "github.com/bluesky-social/indigo/lex/util"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/relaysoak/relaysoak/soak/crowd"
)

// startHub serves a hub on loopback and publishes a commit with size
// bytes of blocks every interval until the test ends.
func startHub(t *testing.T, cfg hubConfig, every time.Duration, size int) (*hub, string) {
	t.Helper()
	mem := &arena{}
	h := newHub(cfg, mem, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.serve(ctx, w, r) }))
	c, err := cid.Prefix{Version: 1, Codec: cid.DagCBOR, MhType: multihash.SHA2_256, MhLength: -1}.Sum([]byte("x"))
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			h.publish(&events.XRPCStreamEvent{RepoCommit: &comatproto.SyncSubscribeRepos_Commit{
				Repo: "did:plc:abcdefghijklmnopqrstuvwx", Rev: "3kabcdefghijl", Time: "2026-11-28T00:00:00.000Z",
				Commit: lexutil.LexLink(c), Blocks: make([]byte, size), Ops: []*comatproto.SyncSubscribeRepos_RepoOp{}, Blobs: []lexutil.LexLink{},
			}})
		}
	}()
	t.Cleanup(func() { cancel(); <-done; srv.Close() })
	return h, "ws" + strings.TrimPrefix(srv.URL, "http")
}

func disconnects(reason string) float64 {
	var m dto.Metric
	if err := subscriberDisconnects.WithLabelValues(reason).Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

var reasons = []string{"closed", "reset", "too_slow", "shutdown", "error"}

// counted waits until every subscriber has gone (and so been counted),
// then reads the disconnects by reason.
func counted(t *testing.T) map[string]float64 {
	t.Helper()
	require.Eventually(t, func() bool {
		var m dto.Metric
		require.NoError(t, subscribers.Write(&m))
		return m.GetGauge().GetValue() == 0
	}, 10*time.Second, 10*time.Millisecond, "subscribers' handlers end")
	out := map[string]float64{}
	for _, r := range reasons {
		out[r] = disconnects(r)
	}
	return out
}

func runCrowd(t *testing.T, cfg crowd.Config, until func(crowd.Counts) bool) crowd.Counts {
	t.Helper()
	c, err := crowd.New(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	require.Eventually(t, func() bool { return until(c.Counts()) }, 20*time.Second, 10*time.Millisecond, "counts %+v", c.Counts())
	cancel()
	require.NoError(t, <-done)
	return c.Counts()
}

func TestEveryDisconnectRetainsAndIsCounted(t *testing.T) {
	const leak = 10000
	h, url := startHub(t, hubConfig{queue: 4096, leakPerDisconnect: leak}, time.Millisecond, 100)
	before := counted(t)

	n := runCrowd(t, crowd.Config{URL: url, Consumers: 2, Churn: 30 * time.Millisecond, Mix: crowd.Mix{Resume: 1, Vanish: 1}},
		func(n crowd.Counts) bool { return n.Resets >= 3 && n.CursorResumes >= 3 })
	after := counted(t)
	delta := map[string]float64{}
	for _, r := range reasons {
		delta[r] = after[r] - before[r]
	}
	// Each connection ended, by churn or by the crowd's shutdown.
	assert.Equal(t, map[string]float64{"reset": float64(n.Resets), "closed": float64(n.Connects - n.Resets),
		"too_slow": 0, "shutdown": 0, "error": 0}, delta, "disconnects by reason")
	assert.EqualValues(t, int64(n.Connects)*leak, h.mem.total.Load(), "each disconnect retains LEAK_BYTES_PER_DISCONNECT")
}

func TestSlowSubscriberIsCutOffWithConsumerTooSlow(t *testing.T) {
	h, url := startHub(t, hubConfig{queue: 4}, time.Millisecond, 32<<10)
	before := counted(t)["too_slow"]
	n := runCrowd(t, crowd.Config{URL: url, Consumers: 1, Churn: 20 * time.Millisecond, Mix: crowd.Mix{Slow: 1},
		SlowFor: time.Second, DrainFor: 5 * time.Second}, func(n crowd.Counts) bool { return n.CutOff >= 1 })
	assert.Zero(t, n.SlowNotCut)
	assert.Zero(t, n.Errors, n.LastError)
	assert.GreaterOrEqual(t, counted(t)["too_slow"]-before, 1.0)
	assert.Zero(t, h.mem.total.Load(), "no leak configured, none retained")
}

func TestEveryCursorSubscribeParksAGoroutineAndItsBuffer(t *testing.T) {
	const leak = 64 << 10
	h, url := startHub(t, hubConfig{queue: 4096, cursorLeak: leak}, time.Millisecond, 100)
	counted(t)
	before := runtime.NumGoroutine()
	n := runCrowd(t, crowd.Config{URL: url, Consumers: 2, Churn: 30 * time.Millisecond, Mix: crowd.Mix{Resume: 1}},
		func(n crowd.Counts) bool { return n.CursorResumes >= 3 })
	counted(t)
	comebacks := int64(n.CursorResumes + n.OldCursors)
	require.Positive(t, comebacks)
	// A dial the crowd gave up on as it stopped may still have reached the
	// hub: one each at most.
	kept := h.mem.total.Load()
	assert.GreaterOrEqual(t, kept, comebacks*leak, "CURSOR_LEAK kept per subscribe with a cursor")
	assert.LessOrEqual(t, kept, (comebacks+2)*leak, "and none for the first subscribes")
	assert.GreaterOrEqual(t, int64(runtime.NumGoroutine()-before), comebacks, "a goroutine parked per comeback, alive after its subscriber left")
}

// RETAIN_IN=heap keeps what is retained where the collector sees it; the
// default keeps it outside the Go heap.
func TestRetainInHeapIsSeenByTheCollector(t *testing.T) {
	heapAfter := func(a *arena, n int) int64 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		a.retain(n)
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(a) // what it retains is reachable through it
		return int64(after.HeapAlloc) - int64(before.HeapAlloc)
	}
	const n = 8 << 20
	assert.InEpsilon(t, n, heapAfter(&arena{heap: true}, n), 0.05, "kept in the Go heap (give or take what else the test freed)")
	assert.Less(t, heapAfter(&arena{}, n), int64(1<<20), "kept outside the Go heap")
}

func gauge(t *testing.T, g interface{ Write(*dto.Metric) error }) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, g.Write(&m))
	return m.GetGauge().GetValue()
}

// IDENTITY_LEAK keeps its bytes once per client identity the crowd
// presents, not per connect.
func TestEachNewClientIdentityRetainsOnce(t *testing.T) {
	const leak = 4 << 10
	h, url := startHub(t, hubConfig{queue: 4096, identityLeak: leak}, time.Millisecond, 100)
	n := runCrowd(t, crowd.Config{URL: url, Consumers: 3, Churn: 20 * time.Millisecond, Mix: crowd.Mix{Resume: 1},
		Identities: 2, IdentityChurn: 0.5}, func(n crowd.Counts) bool { return n.Connects >= 20 })
	counted(t)
	require.Greater(t, n.Connects, n.NewIdentities, "identities come back: not one per connect")
	// A dial the crowd gave up on as it stopped may still have reached the
	// hub as a new identity: one per consumer at most.
	ids := int64(gauge(t, clientIdentities))
	assert.GreaterOrEqual(t, ids, int64(n.NewIdentities))
	assert.LessOrEqual(t, ids, int64(n.NewIdentities)+3)
	assert.Equal(t, ids*leak, h.mem.total.Load(), "IDENTITY_LEAK per identity seen")
}

// STUCK_PIN: a client that stops reading is never cut off, pins its bytes
// for as long as it stays, and lets them go when it leaves.
func TestStuckSubscriberPinsUntilItLeaves(t *testing.T) {
	const pin = 8 << 20
	_, url := startHub(t, hubConfig{queue: 16, stuckPin: pin}, time.Millisecond, 32<<10)
	before := counted(t)
	c, err := crowd.New(crowd.Config{URL: url, Consumers: 2, Churn: 50 * time.Millisecond, Mix: crowd.Mix{Stuck: 1}, StuckProbe: 100 * time.Millisecond})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	require.Eventually(t, func() bool { return gauge(t, pinnedBytes) == 2*pin }, 20*time.Second, 10*time.Millisecond,
		"both stuck clients pin (counts %+v)", c.Counts())
	time.Sleep(2 * time.Second)
	n := c.Counts()
	assert.EqualValues(t, 2, n.Stuck)
	assert.EqualValues(t, 2, n.Connected, "stuck clients stay connected")
	assert.EqualValues(t, 4, n.Connects, "each reconnects once to get stuck, and never comes back")
	assert.Equal(t, 2.0*pin, gauge(t, pinnedBytes), "held while they stay")
	cancel()
	require.NoError(t, <-done)
	n = c.Counts()
	assert.Zero(t, n.StuckReleased, "the hub never let go of them")
	after := counted(t)
	assert.Zero(t, gauge(t, pinnedBytes), "released when they leave")
	assert.Equal(t, before["too_slow"], after["too_slow"], "never cut off")
}
