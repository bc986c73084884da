package heapdiff

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	httppprof "net/http/pprof"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) {
	// Sample every 4 KiB allocated instead of every 512 KiB, before anything
	// is allocated, so the profiles' numbers are close to the truth.
	runtime.MemProfileRate = 4096
	os.Exit(m.Run())
}

// retained keeps growTheHeap's allocations alive, as a leak would.
var retained [][]byte

// growTheHeap is the leak the profiles must find.
//
//go:noinline
func growTheHeap(total, chunk int) {
	for n := 0; n < total; n += chunk {
		b := make([]byte, chunk)
		b[0] = 1
		retained = append(retained, b)
	}
}

// heapServer serves a fresh heap profile, taken after a GC, at HeapPath.
func heapServer(t *testing.T) (*httptest.Server, *[]string) {
	t.Helper()
	var queries []string
	mux := http.NewServeMux()
	mux.HandleFunc(HeapPath, func(w http.ResponseWriter, r *http.Request) {
		queries = append(queries, r.URL.RawQuery)
		runtime.GC()
		if err := pprof.WriteHeapProfile(w); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, &queries
}

func TestGrowingFunctionIsOnTop(t *testing.T) {
	t.Cleanup(func() { retained = nil })
	srv, queries := heapServer(t)
	ctx := context.Background()

	before, err := Fetch(ctx, srv.URL)
	require.NoError(t, err)
	const grown = 48 << 20
	growTheHeap(grown, 64<<10)
	time.Sleep(10 * time.Millisecond) // so the span is not zero on a coarse clock
	after, err := Fetch(ctx, srv.URL+"/")
	require.NoError(t, err)
	assert.Equal(t, []string{"gc=1", "gc=1"}, *queries, "the base URL gets the heap path and a GC")

	g, err := Diff(before, after, 5)
	require.NoError(t, err)
	require.NotEmpty(t, g.Top)
	top := g.Top[0]
	assert.True(t, strings.HasSuffix(top.Name, "heapdiff.growTheHeap"), "top is %s; all: %+v", top.Name, g.Top)
	assert.InEpsilon(t, float64(grown), float64(top.Flat), 0.2, "flat growth")
	assert.GreaterOrEqual(t, top.Cum, top.Flat)
	assert.True(t, strings.HasSuffix(top.File, "heapdiff_test.go"), top.File)
	assert.InEpsilon(t, float64(grown), float64(g.TotalAfter-g.TotalBefore), 0.3, "total growth")
	assert.Positive(t, g.Span)
	assert.LessOrEqual(t, len(g.Top), 5)

}

func TestNothingGrewIsSaid(t *testing.T) {
	srv, _ := heapServer(t)
	p, err := Fetch(context.Background(), srv.URL)
	require.NoError(t, err)
	g, err := Diff(p, p, 0)
	require.NoError(t, err)
	assert.Empty(t, g.Top, "a profile against itself: nothing grew")
	assert.Equal(t, g.TotalBefore, g.TotalAfter)
}

func TestFetchFromNetHTTPPprof(t *testing.T) {
	// What indigo's metrics port serves: net/http/pprof's own handler.
	mux := http.NewServeMux()
	mux.Handle(HeapPath, httppprof.Handler("heap"))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	p, err := Fetch(context.Background(), srv.URL)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, index(p, SampleType), 0)
}

func TestFetchErrorsNameTheURL(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/debug/pprof/heap" {
			w.Write([]byte("# HELP go_goroutines\n"))
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	_, err := Fetch(context.Background(), srv.URL+"/metrics")
	require.Error(t, err)
	assert.Contains(t, err.Error(), srv.URL+"/metrics?gc=1")
	assert.Contains(t, err.Error(), "404")

	_, err = Fetch(context.Background(), srv.URL)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not a pprof profile")
}

func TestDiffRefusesAProfileThatIsNotAHeapProfile(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, pprof.Lookup("goroutine").WriteTo(&buf, 0))
	goroutines, err := profile.Parse(&buf)
	require.NoError(t, err)
	_, err = Diff(goroutines, goroutines, 3)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not a heap profile")
}

func TestSaveWritesAProfilePprofReads(t *testing.T) {
	srv, _ := heapServer(t)
	p, err := Fetch(context.Background(), srv.URL)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "heap-end.pb.gz")
	require.NoError(t, Save(p, path))
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	back, err := profile.Parse(f)
	require.NoError(t, err)
	assert.Equal(t, len(p.Sample), len(back.Sample))
}
