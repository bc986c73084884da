package replay

import (
	"context"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/relaysoak/relaysoak/fakepds"
	"github.com/relaysoak/relaysoak/internal/testkit"
)

// benchFleet serves a fleet of 2,750 hosts with one websocket consumer per
// host connected (as a relay holds), counting frames.
func benchFleet(b *testing.B, cfg fakepds.Config) (*fakepds.Fleet, *testkit.FrameCounter) {
	f, err := fakepds.New(cfg)
	require.NoError(b, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	srv := &http.Server{Handler: f}
	go srv.Serve(ln)
	got := testkit.CountFrames(b, ln.Addr().String(), "/xrpc/com.atproto.sync.subscribeRepos", f.HostNames())
	b.Cleanup(func() {
		got.Close()
		srv.Close()
		f.Close()
	})
	return f, got
}

// maxInFlight bounds the frames published and not yet read in
// BenchmarkVerbatim2750: under a subscriber's queue (512), so none is cut.
const maxInFlight = 256

func waitFor(got *testkit.FrameCounter, n int64) {
	deadline := time.Now().Add(10 * time.Second)
	for got.Frames() < n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
}

// BenchmarkVerbatim2750: the shared capture's real frames (5.4 KB on
// average) published with their seq rewritten on Zipf-picked hosts, as
// fast as they go, with 2,750 consumers reading. Run with -cpu 1 for the
// rate one core sustains (consumers included: they share the core).
func BenchmarkVerbatim2750(b *testing.B) {
	recs := captureFrames(b, sharedCapture(b))
	f, got := benchFleet(b, fakepds.Config{Hosts: 2750, AccountsPerHost: 1})
	a, err := newAlias(ZipfWeights(2750, DefaultZipfS))
	require.NoError(b, err)
	rng := rand.New(rand.NewPCG(1, 1))
	var bytes int64
	for _, r := range recs {
		bytes += int64(len(r.Frame))
	}
	b.SetBytes(bytes / int64(len(recs)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Publishing a captured frame costs far less than writing it, so
		// unpaced it outruns the consumers and the hottest host's is cut
		// off: keep at most maxInFlight frames unread, as a paced run does.
		for int64(i)-got.Frames() > maxInFlight {
			runtime.Gosched()
		}
		if _, err := f.PublishFrame(a.pick(rng), recs[i%len(recs)].Frame); err != nil {
			b.Fatal(err)
		}
	}
	waitFor(got, int64(b.N))
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
	b.ReportMetric(float64(f.Stats().SlowConsumersCut), "consumers_cut")
}

// BenchmarkRehosted2750: fresh signed commits (record, MST, signature,
// CAR) written on Zipf-picked hosts with 2,750 consumers reading; the
// accounts' first #sync frames are written before the timer starts.
func BenchmarkRehosted2750(b *testing.B) {
	f, got := benchFleet(b, fakepds.Config{Hosts: 2750, AccountsPerHost: 1})
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 1))
	for i := 0; i < 2750; i++ {
		_, err := f.Perform(ctx, fakepds.EventCommit, i, rng) // each account's #sync and first commit
		require.NoError(b, err)
	}
	waitFor(got, 5500)
	a, err := newAlias(ZipfWeights(2750, DefaultZipfS))
	require.NoError(b, err)
	base := got.Frames()
	b.ResetTimer()
	var frames int64
	for i := 0; i < b.N; i++ {
		n, err := f.Perform(ctx, fakepds.EventCommit, a.pick(rng), rng)
		if err != nil {
			b.Fatal(err)
		}
		frames += int64(n)
	}
	waitFor(got, base+frames)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
	b.ReportMetric(float64(f.Stats().SlowConsumersCut), "consumers_cut")
}
