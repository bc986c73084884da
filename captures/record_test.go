package captures

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeFirehose serves frames over a real websocket on loopback, honouring
// ?cursor= (events after it, plus the cursor's own event, as some servers
// do) and dropping the first connection after dropAfter frames.
type fakeFirehose struct {
	frames    [][]byte
	seqs      []int64
	dropAfter int
	conns     atomic.Int32
	cursors   []string
	mu        sync.Mutex
}

func newFakeFirehose(t *testing.T, frames [][]byte, dropAfter int) (*fakeFirehose, *httptest.Server) {
	f := &fakeFirehose{frames: frames, dropAfter: dropAfter}
	for _, fr := range frames {
		fi, err := ParseFrame(fr)
		require.NoError(t, err)
		f.seqs = append(f.seqs, fi.Seq)
	}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeFirehose) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/xrpc/com.atproto.sync.subscribeRepos" {
		http.NotFound(w, r)
		return
	}
	up := websocket.Upgrader{}
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	n := f.conns.Add(1)
	cursor := r.URL.Query().Get("cursor")
	f.mu.Lock()
	f.cursors = append(f.cursors, cursor)
	f.mu.Unlock()
	var from int64 = -1
	if cursor != "" {
		from, _ = strconv.ParseInt(cursor, 10, 64)
	}
	sent := 0
	for i, fr := range f.frames {
		if f.seqs[i] < from {
			continue
		}
		if err := conn.WriteMessage(websocket.BinaryMessage, fr); err != nil {
			return
		}
		sent++
		if n == 1 && sent == f.dropAfter {
			// An abrupt drop, no close frame: what a crashing server or a
			// broken network looks like to the client.
			conn.UnderlyingConn().Close()
			return
		}
	}
	// Stay up, idle, until the client leaves.
	for {
		if _, _, err := conn.ReadMessage(); err != nil {
			return
		}
	}
}

func fakePLC(t *testing.T, docs map[string]json.RawMessage) (*httptest.Server, *sync.Map) {
	var hits sync.Map
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		did := strings.TrimPrefix(r.URL.Path, "/")
		c, _ := hits.LoadOrStore(did, new(atomic.Int32))
		c.(*atomic.Int32).Add(1)
		doc, ok := docs[did]
		if !ok {
			http.Error(w, `{"message":"DID not registered"}`, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/did+ld+json")
		w.Write(doc)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func TestRecordResumesAfterDropAndResolvesDIDs(t *testing.T) {
	frames := sharedFrames(t)
	docs := sharedDIDDocs(t)
	fh, srv := newFakeFirehose(t, frames, 60)
	plc, hits := fakePLC(t, docs)
	out := filepath.Join(t.TempDir(), "rec.rscap")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var logs []string
	var logMu sync.Mutex
	res, err := RecordFirehose(ctx, RecordConfig{
		URL:                "http://" + strings.TrimPrefix(srv.URL, "http://"), // a bare host: the path is added
		Out:                out,
		MaxFrames:          int64(len(frames)),
		ResolveDIDs:        true,
		PLC:                plc.URL + "/",
		ResolveConcurrency: 3,
		ReconnectMin:       20 * time.Millisecond,
		Logf: func(format string, args ...any) {
			logMu.Lock()
			defer logMu.Unlock()
			logs = append(logs, format)
		},
	})
	require.NoError(t, err)
	assert.Equal(t, "frames", res.Stopped)
	assert.Equal(t, int64(1), res.Progress.Reconnects, "one drop, one resume")
	assert.Equal(t, int64(1), res.Progress.Duplicates, "the resent cursor event is dropped")
	assert.Equal(t, int32(2), fh.conns.Load())
	assert.Equal(t, []string{"", strconv.FormatInt(fh.seqs[59], 10)}, fh.cursors, "resumed from the last seq recorded")

	// The capture holds every frame once, in order, byte for byte.
	r, err := Open(out, ReaderConfig{})
	require.NoError(t, err)
	defer r.Close()
	i := 0
	var prev time.Time
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		require.Less(t, i, len(frames))
		assert.Equal(t, frames[i], rec.Frame, "frame %d", i)
		assert.Equal(t, strings.TrimPrefix(srv.URL, "http://"), rec.Host)
		assert.False(t, rec.Time.Before(prev))
		prev = rec.Time
		i++
	}
	assert.Equal(t, len(frames), i)
	m, ok := r.Manifest()
	require.True(t, ok, "closed cleanly")
	assert.Equal(t, map[string]int64{KindCommit: 148, KindIdentity: 1, KindAccount: 1}, m.Kinds)
	assert.Equal(t, int64(len(docs)), m.DIDDocs)

	// Each DID asked once; the one without a document counted as failed.
	assert.Equal(t, int64(149), res.Progress.DIDsQueued)
	assert.Equal(t, int64(148), res.Progress.DIDsResolved)
	assert.Equal(t, int64(1), res.Progress.DIDsFailed)
	hits.Range(func(k, v any) bool {
		assert.Equal(t, int32(1), v.(*atomic.Int32).Load(), "DID %s asked more than once", k)
		return true
	})
	rep, err := Inspect(out, InspectConfig{})
	require.NoError(t, err)
	assert.Equal(t, []string{"did:plc:hqvhxrowqbemo5e4wjnj6zao"}, rep.WithoutDoc)
	assert.Zero(t, rep.Seq.Gaps)
}

func TestRecordClosesCleanlyOnCancel(t *testing.T) {
	frames := sharedFrames(t)[:10]
	_, srv := newFakeFirehose(t, frames, 0)
	out := filepath.Join(t.TempDir(), "rec.rscap")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res, err := RecordFirehose(ctx, RecordConfig{
		URL:              "ws" + strings.TrimPrefix(srv.URL, "http") + "/xrpc/com.atproto.sync.subscribeRepos",
		Out:              out,
		ProgressInterval: 10 * time.Millisecond,
		Progress: func(p RecordProgress) {
			if p.Frames == 10 {
				cancel() // what Ctrl-C does
			}
		},
	})
	require.NoError(t, err)
	assert.Equal(t, StoppedCancelled, res.Stopped)
	assert.True(t, res.Closed)
	assert.NoError(t, res.Err)
	assert.Equal(t, "stopped: interrupted; 10 frames kept, closed cleanly", res.Describe())
	m, err := ReadManifest(out) // the fast path: it needs the footer a clean close writes
	require.NoError(t, err)
	assert.Equal(t, int64(10), m.Frames)
}

func TestRecordStopsAfterDuration(t *testing.T) {
	_, srv := newFakeFirehose(t, sharedFrames(t)[:5], 0)
	out := filepath.Join(t.TempDir(), "rec.rscap")
	start := time.Now()
	res, err := RecordFirehose(context.Background(), RecordConfig{URL: "ws" + strings.TrimPrefix(srv.URL, "http"), Out: out, Duration: 300 * time.Millisecond})
	require.NoError(t, err)
	assert.Equal(t, "duration", res.Stopped)
	assert.Less(t, time.Since(start), 5*time.Second)
	m, err := ReadManifest(out)
	require.NoError(t, err)
	assert.Equal(t, int64(5), m.Frames)
}

func TestRecordFailsFastOnBadEndpoint(t *testing.T) {
	_, srv := newFakeFirehose(t, nil, 0)
	out := filepath.Join(t.TempDir(), "rec.rscap")
	res, err := RecordFirehose(context.Background(), RecordConfig{URL: "ws" + strings.TrimPrefix(srv.URL, "http") + "/wrong/path", Out: out})
	require.Error(t, err)
	assert.Equal(t, StoppedError, res.Stopped)
	assert.Equal(t, err, res.Err)
	assert.True(t, res.Closed)
	assert.Regexp(t, `^stopped: error: .*404.*; 0 frames kept, closed cleanly$`, res.Describe())
	assert.Contains(t, err.Error(), "404")
	assert.Contains(t, err.Error(), "check the URL")
	m, err := ReadManifest(out)
	require.NoError(t, err, "even a failed recording leaves a readable, closed file")
	assert.Zero(t, m.Frames)

	_, err = RecordFirehose(context.Background(), RecordConfig{URL: "ftp://x", Out: out})
	assert.ErrorContains(t, err, "want ws:// or wss://")
}

func TestRecordResultDescribe(t *testing.T) {
	r := RecordResult{Stopped: StoppedFrames, Manifest: Manifest{Frames: 1234567}, Closed: true}
	assert.Equal(t, "stopped: frame limit reached; 1,234,567 frames kept, closed cleanly", r.Describe())
	r = RecordResult{Stopped: StoppedDuration, Manifest: Manifest{Frames: 999}, CloseErr: errors.New("capture x: sync: no space left on device")}
	assert.Equal(t, "stopped: duration reached; 999 frames kept, NOT closed cleanly (capture x: sync: no space left on device)", r.Describe())
	for n, want := range map[int64]string{0: "0", 12: "12", 123: "123", 1000: "1,000", 123456: "123,456", -1234: "-1,234"} {
		assert.Equal(t, want, groupDigits(n))
	}
}
