package fakepds

import (
	"math/rand/v2"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/relaysoak/relaysoak/internal/testkit"
)

// BenchmarkSignedCommit: one commit prepared (record, MST update, diff
// blocks, signature, CAR) and encoded as its frame, on an account at its
// steady repository size.
func BenchmarkSignedCommit(b *testing.B) {
	f, err := New(Config{Hosts: 1, AccountsPerHost: 1})
	require.NoError(b, err)
	a := f.hosts[0].accounts[0]
	rng := rand.New(rand.NewPCG(1, 1))
	one := func() error {
		sc := getScratch()
		defer putScratch(sc)
		evt, err := a.commit(a.nextOps(1, rng, f.cfg.MaxRecords), commitOptions{}, sc)
		if err != nil {
			return err
		}
		_, err = encodeFrame("#commit", evt)
		return err
	}
	for i := 0; i < 2*f.cfg.MaxRecords; i++ {
		require.NoError(b, one())
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := one(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
}

// BenchmarkFanout2750: frames published and written to 2,750 connected
// consumers (one per host, as a relay holds). Commits are prepared outside
// the timer: this measures sequencing, history and websocket writes.
func BenchmarkFanout2750(b *testing.B) {
	f, err := New(Config{Hosts: 2750, AccountsPerHost: 1})
	require.NoError(b, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	srv := &http.Server{Handler: f}
	go srv.Serve(ln)
	defer srv.Close()
	got := testkit.CountFrames(b, ln.Addr().String(), "/xrpc/com.atproto.sync.subscribeRepos", f.HostNames())
	defer got.Close()
	frame := make([]byte, 1500)
	b.SetBytes(int64(len(frame)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h := f.hosts[i%len(f.hosts)]
		h.publish(true, func(int64, time.Time) ([]byte, error) { return frame, nil })
	}
	for got.Frames() < int64(b.N) {
		time.Sleep(time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
}

// BenchmarkHistoryMemory is what an hour's history costs the fleet's
// memory per frame published (the spool's index; the frames are on disk)
// at production shape's host count, and how fast frames are spooled.
func BenchmarkHistoryMemory(b *testing.B) {
	f, err := New(Config{Hosts: 2750, AccountsPerHost: 1, StartRecords: -1, HistoryDir: b.TempDir()})
	require.NoError(b, err)
	defer f.Close()
	frame := make([]byte, 200) // the index's cost does not depend on it
	publish := func(i int) {
		if _, err := f.hosts[i%len(f.hosts)].publish(true, func(int64, time.Time) ([]byte, error) { return frame, nil }); err != nil {
			b.Fatal(err)
		}
	}
	for i := range f.cfg.TailFrames * len(f.hosts) { // every host's tail full
		publish(i)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.SetBytes(int64(len(frame)))
	b.ResetTimer()
	for i := range b.N {
		publish(i)
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(b.N), "heap_B/frame")
	runtime.KeepAlive(f)
}
