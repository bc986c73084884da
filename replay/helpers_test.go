package replay

import (
	"bytes"
	"context"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/events"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
	cbg "github.com/whyrusleeping/cbor-gen"

	"github.com/relaysoak/relaysoak/captures"
	"github.com/relaysoak/relaysoak/fakepds"
	"github.com/relaysoak/relaysoak/internal/sharedfiles"
	"github.com/relaysoak/relaysoak/internal/testkit"
)

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

// captureFrames reads every frame of a capture (copies).
func captureFrames(t testing.TB, path string) []captures.Record {
	t.Helper()
	r, err := captures.Open(path, captures.ReaderConfig{})
	require.NoError(t, err)
	defer r.Close()
	var out []captures.Record
	for {
		rec, err := r.Next()
		if err != nil {
			break
		}
		rec.Frame = bytes.Clone(rec.Frame)
		out = append(out, rec)
	}
	return out
}

// testNet serves a fleet on loopback; every name resolves to it.
type testNet struct {
	fleet  *fakepds.Fleet
	client *http.Client
	dialer *websocket.Dialer
}

func startNet(t testing.TB, cfg fakepds.Config) *testNet {
	t.Helper()
	f, err := fakepds.New(cfg)
	require.NoError(t, err)
	vh := testkit.ServeVirtualHosts(t, f)
	t.Cleanup(func() { f.Close() }) // runs first: the fleet ends before its server
	return &testNet{
		fleet:  f,
		client: vh.Client,
		dialer: vh.Dialer,
	}
}

// got is a frame a subscriber received, with the host it came from.
type got struct {
	host  string
	frame []byte
}

// collector subscribes to every host and gathers frames.
type collector struct {
	mu     sync.Mutex
	frames []got
	conns  []*websocket.Conn
}

func (n *testNet) collectAll(t testing.TB) *collector {
	t.Helper()
	c := &collector{}
	for _, h := range n.fleet.HostNames() {
		conn, _, err := n.dialer.Dial("ws://"+h+"/xrpc/com.atproto.sync.subscribeRepos", nil)
		require.NoError(t, err)
		c.conns = append(c.conns, conn)
		go func(h string) {
			for {
				_, b, err := conn.ReadMessage()
				if err != nil {
					return
				}
				c.mu.Lock()
				c.frames = append(c.frames, got{h, b})
				c.mu.Unlock()
			}
		}(h)
	}
	t.Cleanup(func() {
		for _, conn := range c.conns {
			conn.Close()
		}
	})
	require.Eventually(t, func() bool { return n.fleet.Stats().Connections == len(c.conns) }, 5*time.Second, 10*time.Millisecond)
	return c
}

func (c *collector) all() []got {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]got(nil), c.frames...)
}

// decodeCommit decodes a #commit frame (nil for other kinds).
func decodeCommit(t testing.TB, b []byte) *comatproto.SyncSubscribeRepos_Commit {
	t.Helper()
	r := cbg.NewCborReader(bytes.NewReader(b))
	var h events.EventHeader
	require.NoError(t, h.UnmarshalCBOR(r))
	if h.MsgType != "#commit" {
		return nil
	}
	var c comatproto.SyncSubscribeRepos_Commit
	require.NoError(t, c.UnmarshalCBOR(r))
	return &c
}
