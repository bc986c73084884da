package crowd_test

import (
	"context"
	"encoding/binary"
	"errors"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/relaysoak/relaysoak/fakepds"
	"github.com/relaysoak/relaysoak/internal/useragent"
	"github.com/relaysoak/relaysoak/soak/crowd"
)

// relay stands in for the relay under test: one fakepds host, whose
// subscribeRepos has cursors, a bounded history and a slow-consumer cut,
// served on loopback whatever Host the crowd dials.
type relay struct {
	fleet *fakepds.Fleet
	url   string

	subscribes atomic.Int64
	mu         sync.Mutex
	cursors    []int64 // the cursor of every subscribe that sent one, when recording
	agents     map[string]int
	record     bool
}

func startRelay(t testing.TB, cfg fakepds.Config, record bool) *relay {
	t.Helper()
	cfg.Hosts, cfg.AccountsPerHost = 1, 1
	f, err := fakepds.New(cfg)
	require.NoError(t, err)
	host := f.HostNames()[0]
	r := &relay{fleet: f, record: record, agents: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.subscribes.Add(1)
		r.mu.Lock()
		r.agents[req.UserAgent()]++
		r.mu.Unlock()
		if c := req.URL.Query().Get("cursor"); c != "" && r.record {
			v, err := strconv.ParseInt(c, 10, 64)
			assert.NoError(t, err)
			r.mu.Lock()
			r.cursors = append(r.cursors, v)
			r.mu.Unlock()
		}
		req.Host = host
		f.ServeHTTP(w, req)
	}))
	t.Cleanup(func() { f.Close(); srv.Close() })
	r.url = "ws" + strings.TrimPrefix(srv.URL, "http") + crowd.Path
	return r
}

// frame is a subscribeRepos #commit frame of about size bytes: header
// {op: 1, t: "#commit"}, body {seq, blocks}. The fleet rewrites its seq.
func frame(size int) []byte {
	b := []byte{0xa2, 0x62, 'o', 'p', 0x01, 0x61, 't', 0x67, '#', 'c', 'o', 'm', 'm', 'i', 't'}
	b = append(b, 0xa2, 0x63, 's', 'e', 'q', 0x01, 0x66, 'b', 'l', 'o', 'c', 'k', 's', 0x5a)
	b = binary.BigEndian.AppendUint32(b, uint32(size))
	return append(b, make([]byte, size)...)
}

// publish publishes a frame of size bytes every interval until the test ends.
func (r *relay) publish(t testing.TB, every time.Duration, size int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	fr := frame(size)
	go func() {
		defer close(done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if _, err := r.fleet.PublishFrame(0, fr); err != nil {
					t.Errorf("publishing: %v", err)
					return
				}
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// run starts c and returns a stop that ends it and checks that Run
// returned nil promptly. The test's cleanup stops it too.
func run(t testing.TB, c *crowd.Crowd) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				assert.NoError(t, err)
			case <-time.After(10 * time.Second):
				t.Error("Run did not return within 10 s of its context ending")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func newCrowd(t testing.TB, cfg crowd.Config) *crowd.Crowd {
	t.Helper()
	c, err := crowd.New(cfg)
	require.NoError(t, err)
	return c
}

func eventually(t testing.TB, c *crowd.Crowd, what string, cond func(crowd.Counts) bool) {
	t.Helper()
	require.Eventually(t, func() bool { return cond(c.Counts()) }, 20*time.Second, 10*time.Millisecond,
		"%s; counts %+v", what, c.Counts())
}

func TestNewChecksConfig(t *testing.T) {
	for name, cfg := range map[string]crowd.Config{
		"no URL":          {},
		"bad scheme":      {URL: "ftp://relay"},
		"negative count":  {URL: "ws://relay", Consumers: -1},
		"negative churn":  {URL: "ws://relay", Churn: -time.Second},
		"negative weight": {URL: "ws://relay", Mix: crowd.Mix{Resume: 1, Slow: -1}},
		"negative frames": {URL: "ws://relay", BacklogFrames: -5},
		"churn over 1":    {URL: "ws://relay", IdentityChurn: 1.5},
		"no identities":   {URL: "ws://relay", Identities: -1},
		"stuck negative":  {URL: "ws://relay", Mix: crowd.Mix{Stuck: -1}},
	} {
		_, err := crowd.New(cfg)
		assert.Error(t, err, name)
	}
	_, err := crowd.New(crowd.Config{URL: "https://relay.example"})
	assert.NoError(t, err, "http and https stand for ws and wss")
}

func TestNoConsumersReturnsAtOnce(t *testing.T) {
	c := newCrowd(t, crowd.Config{URL: "ws://127.0.0.1:1"})
	start := time.Now()
	require.NoError(t, c.Run(context.Background()))
	assert.Less(t, time.Since(start), time.Second)
	assert.Equal(t, crowd.Counts{}, c.Counts())
}

func TestResumeSendsTheLastSeqAsCursor(t *testing.T) {
	r := startRelay(t, fakepds.Config{}, true)
	r.publish(t, 5*time.Millisecond, 256)
	c := newCrowd(t, crowd.Config{URL: r.url, Consumers: 2, Churn: 100 * time.Millisecond,
		Mix: crowd.Mix{Resume: 1}, ReconnectDelay: 50 * time.Millisecond, Seed: 3})
	stop := run(t, c)
	eventually(t, c, "consumers resume", func(n crowd.Counts) bool { return n.CursorResumes >= 6 })
	stop()

	n := c.Counts()
	assert.Zero(t, n.Errors, n.LastError)
	assert.Zero(t, n.OldCursors+n.Resets+n.CutOff+n.SlowNotCut)
	assert.Zero(t, n.Replayed, "a cursor at the last seq seen replays nothing")
	assert.Positive(t, n.Frames)
	assert.Zero(t, n.Connected)
	// A dial cut short by the stop reaches the relay uncounted: one a
	// consumer at most.
	assert.InDelta(t, r.subscribes.Load(), n.Connects, 2)
	r.mu.Lock()
	defer r.mu.Unlock()
	assert.InDelta(t, len(r.cursors), n.CursorResumes, 2, "every resume sends cursor=")
	for _, cur := range r.cursors {
		assert.Positive(t, cur)
	}
	assert.Equal(t, []string{useragent.For(useragent.Crowd)}, slices.Collect(maps.Keys(r.agents)), "one User-Agent for every consumer and reconnect")
	// The relay saw every consumer leave: none is left subscribed.
	assert.Eventually(t, func() bool { return r.fleet.Stats().Connections == 0 }, 5*time.Second, 10*time.Millisecond)
}

func TestOldCursorReplaysTheBacklog(t *testing.T) {
	r := startRelay(t, fakepds.Config{TailFrames: 1024}, true)
	r.publish(t, 2*time.Millisecond, 256)
	c := newCrowd(t, crowd.Config{URL: r.url, Consumers: 1, Churn: 300 * time.Millisecond,
		Mix: crowd.Mix{OldCursor: 1}, BacklogFrames: 50, Seed: 5})
	stop := run(t, c)
	eventually(t, c, "old cursors replay", func(n crowd.Counts) bool { return n.OldCursors >= 3 && n.Replayed >= 100 })
	stop()
	n := c.Counts()
	assert.Zero(t, n.Errors, n.LastError)
	assert.Zero(t, n.CursorResumes+n.Resets+n.CutOff)
	r.mu.Lock()
	defer r.mu.Unlock()
	assert.InDelta(t, len(r.cursors), n.OldCursors, 1, "every old cursor is sent")
}

func TestSlowConsumerIsCutOff(t *testing.T) {
	// A tiny queue, and frames big enough to fill the socket buffers in a
	// fraction of a second: the fleet cuts the consumer while it stalls.
	// The history is the tail alone: a cursor behind it is not caught up
	// from disk, where live frames are not queued and so never overflow.
	r := startRelay(t, fakepds.Config{SendQueue: 4, TailFrames: 16, History: -1}, false)
	r.publish(t, time.Millisecond, 32<<10)
	c := newCrowd(t, crowd.Config{URL: r.url, Consumers: 1, Churn: 20 * time.Millisecond,
		Mix: crowd.Mix{Slow: 1}, SlowFor: time.Second, DrainFor: 5 * time.Second, Seed: 7})
	stop := run(t, c)
	eventually(t, c, "a slow consumer is cut off", func(n crowd.Counts) bool { return n.CutOff >= 2 })
	stop()
	n := c.Counts()
	assert.Zero(t, n.SlowNotCut)
	assert.Zero(t, n.Errors, n.LastError)
	assert.GreaterOrEqual(t, r.fleet.Stats().SlowConsumersCut, uint64(2), "the relay did the cutting")
	assert.GreaterOrEqual(t, n.CursorResumes, n.CutOff-1, "a consumer cut off comes back with its cursor")
}

func TestSlowConsumerNotCutGivesUp(t *testing.T) {
	// A queue far longer than the spell: the relay never cuts.
	r := startRelay(t, fakepds.Config{SendQueue: 100000}, false)
	r.publish(t, 5*time.Millisecond, 64)
	c := newCrowd(t, crowd.Config{URL: r.url, Consumers: 1, Churn: 10 * time.Millisecond,
		Mix: crowd.Mix{Slow: 1}, SlowFor: 100 * time.Millisecond, DrainFor: 100 * time.Millisecond})
	run(t, c)
	eventually(t, c, "slow spells end", func(n crowd.Counts) bool { return n.SlowNotCut >= 2 })
	n := c.Counts()
	assert.Zero(t, n.CutOff)
	assert.Zero(t, r.fleet.Stats().SlowConsumersCut)
}

func TestVanishedConsumersAreGoneFromTheRelay(t *testing.T) {
	r := startRelay(t, fakepds.Config{}, false)
	r.publish(t, 2*time.Millisecond, 256)
	c := newCrowd(t, crowd.Config{URL: r.url, Consumers: 2, Churn: 50 * time.Millisecond, Mix: crowd.Mix{Vanish: 1}})
	stop := run(t, c)
	eventually(t, c, "consumers vanish", func(n crowd.Counts) bool { return n.Resets >= 6 })
	// Each vanish ended the relay's side too: it holds no more
	// subscribers than are connected.
	assert.Eventually(t, func() bool { return r.fleet.Stats().Connections <= 2 }, 5*time.Second, 10*time.Millisecond)
	stop()
	assert.Eventually(t, func() bool { return r.fleet.Stats().Connections == 0 }, 5*time.Second, 10*time.Millisecond)
	n := c.Counts()
	assert.Zero(t, n.Errors, n.LastError)
	assert.GreaterOrEqual(t, n.Connects, n.Resets, "a consumer that vanished comes back")
	assert.Positive(t, n.CursorResumes, "with its cursor, once it has seen a seq")
}

// What the server sees when a consumer leaves: a close frame with 1000 for
// a planned reconnect; for a vanish no close frame, and a TCP reset (which
// the kernel reports once: to the read or to a write, whichever comes first).
func TestLeavingIsACloseVanishingIsAReset(t *testing.T) {
	type end struct{ read, write error }
	for _, tc := range []struct {
		mix   crowd.Mix
		check func(t *testing.T, e end)
	}{
		{crowd.Mix{Resume: 1}, func(t *testing.T, e end) {
			assert.True(t, websocket.IsCloseError(e.read, websocket.CloseNormalClosure), "want a normal close, got %v", e.read)
		}},
		{crowd.Mix{Vanish: 1}, func(t *testing.T, e end) {
			var ce *websocket.CloseError
			if errors.As(e.read, &ce) {
				assert.Equal(t, websocket.CloseAbnormalClosure, ce.Code, "a vanish sends no close frame: %v", e.read)
			}
			assert.True(t, errors.Is(e.read, syscall.ECONNRESET) || errors.Is(e.write, syscall.ECONNRESET),
				"want a reset, got read %v, write %v", e.read, e.write)
		}},
	} {
		ends := make(chan end, 100)
		up := websocket.Upgrader{}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			conn, err := up.Upgrade(w, req, nil)
			if err != nil {
				return
			}
			wrote := make(chan error, 1)
			go func() { // a live stream, so the consumer leaves mid-stream
				fr := frame(100)
				for seq := byte(1); ; seq++ {
					fr[20] = seq % 24 // the seq's one-byte head
					if err := conn.WriteMessage(websocket.BinaryMessage, fr); err != nil {
						wrote <- err
						return
					}
					time.Sleep(time.Millisecond)
				}
			}()
			var e end
			for e.read == nil {
				_, _, e.read = conn.NextReader()
			}
			conn.Close()
			e.write = <-wrote
			ends <- e
		}))
		c := newCrowd(t, crowd.Config{URL: "ws" + strings.TrimPrefix(srv.URL, "http"), Consumers: 1,
			Churn: 50 * time.Millisecond, Mix: tc.mix})
		stop := run(t, c)
		var e end
		select {
		case e = <-ends:
		case <-time.After(10 * time.Second):
			t.Fatal("the consumer never left")
		}
		stop()
		srv.Close()
		tc.check(t, e)
	}
}

func TestRunLeavesNoGoroutines(t *testing.T) {
	r := startRelay(t, fakepds.Config{SendQueue: 8, TailFrames: 64}, false)
	r.publish(t, time.Millisecond, 2048)
	time.Sleep(50 * time.Millisecond)
	before := runtime.NumGoroutine()
	c := newCrowd(t, crowd.Config{URL: r.url, Consumers: 20, Churn: 30 * time.Millisecond,
		SlowFor: 200 * time.Millisecond, DrainFor: 200 * time.Millisecond, ReconnectDelay: 20 * time.Millisecond})
	stop := run(t, c)
	eventually(t, c, "every behaviour happens", func(n crowd.Counts) bool {
		return n.CursorResumes > 0 && n.OldCursors > 0 && n.Resets > 0 && n.CutOff+n.SlowNotCut > 0
	})
	// Stopped mid-everything: some consumers stalled, some draining, some
	// closing, some dialling.
	stop()
	assert.Zero(t, c.Counts().Connected)
	// The relay's handlers end as the consumers' sockets close.
	assert.Eventually(t, func() bool { return runtime.NumGoroutine() <= before+2 }, 10*time.Second, 20*time.Millisecond,
		"goroutines: %d before, %d after", before, runtime.NumGoroutine())
}

func TestMemoryStaysBoundedUnderChurn(t *testing.T) {
	r := startRelay(t, fakepds.Config{SendQueue: 32, TailFrames: 64}, false)
	r.publish(t, time.Millisecond, 512)
	c := newCrowd(t, crowd.Config{URL: r.url, Consumers: 8, Churn: 3 * time.Millisecond,
		BacklogFrames: 40, SlowFor: 20 * time.Millisecond, DrainFor: 30 * time.Millisecond, ReconnectDelay: 5 * time.Millisecond})
	run(t, c)
	// The least of a few readings: how many connections are open, each
	// with its buffers on both sides, varies from one instant to the next.
	heap := func() uint64 {
		least := uint64(math.MaxUint64)
		for range 5 {
			runtime.GC()
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			least = min(least, m.HeapAlloc)
			time.Sleep(10 * time.Millisecond)
		}
		return least
	}
	eventually(t, c, "warm-up churn", func(n crowd.Counts) bool { return n.Connects >= 100 })
	h1, c1 := heap(), c.Counts().Connects
	eventually(t, c, "churn", func(n crowd.Counts) bool { return n.Connects >= c1+1500 })
	h2, n := heap(), c.Counts()
	t.Logf("live heap %d → %d bytes over %d connects; counts %+v", h1, h2, n.Connects-c1, n)
	// 1,500 connections that each kept a kilobyte would have grown the
	// heap by 1.5 MB; one that kept its read buffer, by 48 MB.
	assert.Less(t, int64(h2)-int64(h1), int64(512<<10), "live heap grew from %d to %d bytes", h1, h2)
	assert.Positive(t, n.CursorResumes)
	assert.Positive(t, n.OldCursors)
	assert.Positive(t, n.Resets)
}

// Every count is a column, under a name of its own.
func TestColumnsNameEveryCount(t *testing.T) {
	n := crowd.Counts{Connects: 21, CursorResumes: 2, OldCursors: 3, CutOff: 4, SlowNotCut: 5, Resets: 6,
		Frames: 7, Replayed: 8, Errors: 9, Connected: 10, NewIdentities: 12, Stuck: 13, StuckReleased: 14, LastError: "x"}
	cols := n.Columns()
	assert.Equal(t, reflect.TypeFor[crowd.Counts]().NumField(), len(cols), "every field but LastError, and disconnects")
	assert.Equal(t, 11.0, cols["crowd_disconnects"], "connects less those connected")
	seen := map[float64]bool{}
	for name, v := range cols {
		assert.True(t, strings.HasPrefix(name, "crowd_"), name)
		assert.False(t, seen[v], "%s repeats a value", name)
		seen[v] = true
	}
	assert.Len(t, seen, 14)
}

// Over wss, a vanish still resets the TCP connection under TLS, and the
// relay still sees every consumer go.
func TestWSSResumesAndVanishes(t *testing.T) {
	f, err := fakepds.New(fakepds.Config{Hosts: 1, AccountsPerHost: 1})
	require.NoError(t, err)
	host := f.HostNames()[0]
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		req.Host = host
		f.ServeHTTP(w, req)
	}))
	t.Cleanup(func() { f.Close(); srv.Close() })
	r := &relay{fleet: f}
	r.publish(t, 2*time.Millisecond, 256)

	c := newCrowd(t, crowd.Config{URL: "wss" + strings.TrimPrefix(srv.URL, "https"), TLS: srv.Client().Transport.(*http.Transport).TLSClientConfig,
		Consumers: 2, Churn: 50 * time.Millisecond, Mix: crowd.Mix{Resume: 1, Vanish: 1}})
	stop := run(t, c)
	eventually(t, c, "resumes and vanishes over TLS", func(n crowd.Counts) bool { return n.Resets >= 3 && n.CursorResumes >= 3 })
	stop()
	n := c.Counts()
	assert.Zero(t, n.Errors, n.LastError)
	assert.Positive(t, n.Frames)
	assert.Eventually(t, func() bool { return f.Stats().Connections == 0 }, 5*time.Second, 10*time.Millisecond)
}

// Identities are User-Agents: the regulars come back, a churned connect is
// a client never seen before, and the count is of distinct ones presented.
func TestIdentitiesAreUserAgentsCountedOnce(t *testing.T) {
	r := startRelay(t, fakepds.Config{}, false)
	r.publish(t, time.Millisecond, 100)
	c := newCrowd(t, crowd.Config{URL: r.url, Consumers: 4, Churn: 20 * time.Millisecond, Mix: crowd.Mix{Resume: 1}, Identities: 3})
	stop := run(t, c)
	eventually(t, c, "reconnects", func(n crowd.Counts) bool { return n.Connects >= 20 })
	stop()
	n := c.Counts()
	r.mu.Lock()
	agents := maps.Clone(r.agents)
	r.mu.Unlock()
	assert.EqualValues(t, 3, n.NewIdentities, "three regulars, each counted once")
	assert.ElementsMatch(t, []string{useragent.Client(useragent.Crowd, 0), useragent.Client(useragent.Crowd, 1), useragent.Client(useragent.Crowd, 2)},
		slices.Collect(maps.Keys(agents)))

	r = startRelay(t, fakepds.Config{}, false)
	r.publish(t, time.Millisecond, 100)
	c = newCrowd(t, crowd.Config{URL: r.url, Consumers: 2, Churn: 20 * time.Millisecond, Mix: crowd.Mix{Resume: 1}, IdentityChurn: 1})
	stop = run(t, c)
	eventually(t, c, "reconnects", func(n crowd.Counts) bool { return n.Connects >= 10 })
	stop()
	n = c.Counts()
	r.mu.Lock()
	defer r.mu.Unlock()
	for ua, k := range r.agents {
		assert.Equal(t, 1, k, "a churned identity is used for one connection: %s", ua)
	}
	assert.GreaterOrEqual(t, len(r.agents), int(n.Connects), "every connect a new client")
	assert.GreaterOrEqual(t, n.NewIdentities, n.Connects)
	assert.NotContains(t, r.agents, useragent.For(useragent.Crowd), "never the regular one")
}

// A stuck consumer finds out whether the relay let go of it without
// reading: a relay that closed the connection is told from one still
// writing to it.
func TestStuckConsumerTellsWhetherTheRelayLetGo(t *testing.T) {
	for _, letGo := range []bool{true, false} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			conn, err := (&websocket.Upgrader{}).Upgrade(w, req, nil)
			if err != nil {
				return
			}
			defer conn.Close()
			fr := frame(4 << 10)
			end := time.Now().Add(300 * time.Millisecond)
			for !letGo || time.Now().Before(end) {
				if letGo {
					conn.SetWriteDeadline(end) // then it lets go, blocked or not
				} else {
					conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
				}
				if conn.WriteMessage(websocket.BinaryMessage, fr) != nil {
					return
				}
			}
		}))
		c := newCrowd(t, crowd.Config{URL: "ws" + strings.TrimPrefix(srv.URL, "http"), Consumers: 1, Churn: time.Millisecond,
			Mix: crowd.Mix{Stuck: 1}, StuckProbe: 100 * time.Millisecond})
		stop := run(t, c)
		eventually(t, c, "stuck", func(n crowd.Counts) bool { return n.Stuck == 1 })
		time.Sleep(time.Second) // the relay lets go meanwhile, or fills its buffers
		n := c.Counts()
		assert.EqualValues(t, 1, n.Connected, "a stuck consumer stays connected")
		if letGo {
			assert.EqualValues(t, 1, n.StuckReleased, "found while the run goes on")
		}
		stop()
		n = c.Counts()
		assert.EqualValues(t, 2, n.Connects, "it reconnects once to get stuck, and never comes back")
		if letGo {
			assert.EqualValues(t, 1, n.StuckReleased, "the relay closed it")
		} else {
			assert.Zero(t, n.StuckReleased, "the relay still wrote to it")
		}
		srv.CloseClientConnections()
		srv.Close()
	}
}
