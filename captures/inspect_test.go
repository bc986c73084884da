package captures

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func importShared(t testing.TB, dir string) string {
	t.Helper()
	shared := sharedCapture(t)
	capPath := filepath.Join(dir, "shared.rscap")
	_, err := Import(context.Background(), ImportConfig{
		Frames:  filepath.Join(shared, "frames.bin.zst"),
		DIDDocs: filepath.Join(shared, "did_docs.json.zst"),
		Out:     capPath,
		Source:  "wss://bsky.network/xrpc/com.atproto.sync.subscribeRepos",
	})
	require.NoError(t, err)
	return capPath
}

func TestInspectSharedCapture(t *testing.T) {
	capPath := importShared(t, t.TempDir())
	rep, err := Inspect(capPath, InspectConfig{})
	require.NoError(t, err)
	assert.True(t, rep.Closed)
	assert.Equal(t, int64(150), rep.Frames)
	assert.Equal(t, map[string]int64{KindCommit: 148, KindIdentity: 1, KindAccount: 1}, rep.Kinds)
	// The figures the shared capture's manifest states.
	assert.Equal(t, map[string]int64{"create": 144, "update": 2, "delete": 4}, rep.Ops)
	assert.Equal(t, int64(148), rep.OpsPerCommit[1]+rep.OpsPerCommit[2]+rep.OpsPerCommit[3])
	assert.Zero(t, rep.Undecodable)
	assert.Contains(t, rep.Collections, "app.bsky.feed.like")
	assert.Equal(t, map[string]int64{"bsky.network": 150}, rep.Hosts)
	assert.Zero(t, rep.Seq.Gaps, "the shared capture is contiguous")
	assert.Zero(t, rep.Seq.Backward)
	assert.Equal(t, int64(819376-150*4), rep.Bytes)
	assert.LessOrEqual(t, rep.Sizes.Min, rep.Sizes.P50)
	assert.LessOrEqual(t, rep.Sizes.P50, rep.Sizes.P99)
	assert.LessOrEqual(t, rep.Sizes.P99, rep.Sizes.Max)
	assert.Equal(t, int64(150), sum(rep.Rate.Series))

	docs := sharedDIDDocs(t)
	assert.Equal(t, int64(len(docs)), rep.DIDDocs)
	// Documents exist for every DID with a #commit; the #identity/#account
	// account has none.
	for _, did := range rep.WithoutDoc {
		assert.NotContains(t, docs, did)
	}
	assert.Contains(t, rep.WithoutDoc, "did:plc:hqvhxrowqbemo5e4wjnj6zao")
	assert.Equal(t, len(rep.Accounts)-len(docs), len(rep.WithoutDoc))
	assert.NotEmpty(t, rep.PDSHosts)

	var out bytes.Buffer
	require.NoError(t, rep.WriteText(&out))
	text := out.String()
	for _, want := range []string{"closed cleanly", "frames by kind", "#commit", "ops by action", "create", "ops by collection",
		"frame size", "p99", "frames per second", "hosts", "bsky.network", "accounts", "seq", "0 gaps", "DID documents", "without document"} {
		assert.Contains(t, text, want)
	}
	t.Logf("\n%s", text)
}

func sum(s []int64) int64 {
	var n int64
	for _, v := range s {
		n += v
	}
	return n
}

func TestInspectTruncatedAndGaps(t *testing.T) {
	recs := testRecords(t, 30)
	// Punch a gap: drop seq 1010..1012 (all on their own hosts' streams).
	recs = append(recs[:10], recs[13:]...)
	path := filepath.Join(t.TempDir(), "killed.rscap")
	require.NoError(t, os.WriteFile(path, writeCapture(t, WriterConfig{}, recs, nil, false), 0o644))
	rep, err := Inspect(path, InspectConfig{})
	require.ErrorIs(t, err, ErrTruncated)
	require.NotNil(t, rep)
	assert.False(t, rep.Closed)
	assert.Contains(t, rep.Problem, path)
	assert.Equal(t, int64(27), rep.Frames)
	// Two hosts each number their own stream; the test records put every
	// third frame on host b, so both streams have gaps.
	assert.Positive(t, rep.Seq.Gaps)
	var out bytes.Buffer
	require.NoError(t, rep.WriteText(&out))
	assert.Contains(t, out.String(), "NOT CLOSED CLEANLY")
}

func TestSizeHistogramAccuracy(t *testing.T) {
	var h sizeHist
	for v := 1; v <= 100000; v++ {
		h.add(v)
	}
	p := h.percentiles()
	assert.InDelta(t, 50000, p.P50, 50000*0.016)
	assert.InDelta(t, 99000, p.P99, 99000*0.016)
	assert.Equal(t, int64(1), p.Min)
	assert.Equal(t, int64(100000), p.Max)
	for v := uint64(0); v < 1<<32; v = v*2 + 1 {
		assert.Less(t, sizeBucket(v), 1728)
	}
}

func TestRateSeriesStaysBounded(t *testing.T) {
	var s rateSeries
	s.max = 16
	start := time.Unix(1000, 0)
	for i := range 3600 {
		s.add(start.Add(time.Duration(i) * time.Second))
		s.add(start.Add(time.Duration(i)*time.Second + time.Millisecond))
	}
	st := s.stats(7200, time.Hour)
	assert.LessOrEqual(t, len(st.Series), 16)
	assert.Equal(t, int64(7200), sum(st.Series))
	assert.Equal(t, int64(2), st.Peak)
	assert.InDelta(t, 2.0, st.Mean, 0.01)
}
