package harness

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/relaysoak/relaysoak/fakepds"
	"github.com/relaysoak/relaysoak/internal/testkit"
	"github.com/relaysoak/relaysoak/replay"
	"github.com/relaysoak/relaysoak/soak/firehose"
	"github.com/relaysoak/relaysoak/soak/probe"
)

// The rig's own cost is measured with the rig in a child process (this
// test binary, re-executed): the fleet, the replay's pacer and the
// measuring consumer, as a soak runs them. The parent plays the relay — it
// subscribes to every host and re-emits each frame, seq rewritten, on one
// firehose the child's consumer reads — so the child's CPU and memory are
// the rig's alone. No container: the relay is not what is measured here.

func TestMain(m *testing.M) { testkit.MainOrChild(m, "RIG_BENCH_CHILD", rigChild) }

// rigChild serves a fleet of RIG_HOSTS hosts, prints its address, waits
// for the firehose URL on stdin, then consumes it and writes RIG_RATE
// frames/s until killed.
func rigChild() error {
	hosts, _ := strconv.Atoi(os.Getenv("RIG_HOSTS"))
	rate, _ := strconv.ParseFloat(os.Getenv("RIG_RATE"), 64)
	var err error
	var history time.Duration // the fleet's default: an hour on disk
	if v := os.Getenv("RIG_HISTORY"); v != "" {
		if history, err = time.ParseDuration(v); err != nil {
			return fmt.Errorf("RIG_HISTORY: %w", err)
		}
	}
	f, err := fakepds.New(fakepds.Config{Hosts: hosts, AccountsPerHost: 2, History: history})
	if err != nil {
		return err
	}
	if err := testkit.ServeForParent(f); err != nil {
		return err
	}
	url, err := testkit.FromParent()
	if err != nil {
		return err
	}
	c, err := firehose.New(firehose.Config{URL: url, Origin: f.HostOfDID, Directory: f.Directory(),
		VerifyEvery: 100, Captured: f.IsImported})
	if err != nil {
		return err
	}
	go c.Run(context.Background())
	if path := os.Getenv("RIG_CPUPROFILE"); path != "" {
		go testkit.ProfileCPU(path, 60*time.Second, 30*time.Second)
	}
	if path := os.Getenv("RIG_HEAPPROFILE"); path != "" {
		go func() {
			time.Sleep(90 * time.Second)
			if fh, err := os.Create(path); err == nil {
				pprof.Lookup("heap").WriteTo(fh, 0)
				fh.Close()
			}
		}()
	}
	// Report the consumer's count each second: the parent reads delivery.
	go func() {
		for range time.Tick(time.Second) {
			st := c.Stats()
			fmt.Printf("delivered %d verified %d failed %d\n", st.Commits, st.Verified, st.VerifyFailed)
		}
	}()
	rp, err := replay.New(f, replay.Config{Rate: rate})
	if err != nil {
		return err
	}
	rp.Run(context.Background())
	return nil
}

// BenchmarkRigCost runs the whole rig at production shape (2,750 hosts ×
// 700 frames/s) and reports its CPU per 1,000 frames, its share of a core,
// and its RssAnon: at its peak, and its rise over the second half of the
// window (near 0 once memory has levelled off). RIG_BENCH_SECONDS
// lengthens the window (default 60; the first 60 s are warm-up, not
// measured); RIG_HOSTS and RIG_RATE change the shape (15,000 hosts fit in
// one process: see the README); RIG_HISTORY sets the fleet's history
// (negative: the in-memory tail only, no disk).
func BenchmarkRigCost(b *testing.B) {
	hosts, rate, window := 2750, 700.0, 60*time.Second
	if s := os.Getenv("RIG_HOSTS"); s != "" {
		n, err := strconv.Atoi(s)
		require.NoError(b, err)
		hosts = n
	}
	if s := os.Getenv("RIG_RATE"); s != "" {
		v, err := strconv.ParseFloat(s, 64)
		require.NoError(b, err)
		rate = v
	}
	if s := os.Getenv("RIG_BENCH_SECONDS"); s != "" {
		n, err := strconv.Atoi(s)
		require.NoError(b, err)
		window = time.Duration(n) * time.Second
	}
	for range b.N {
		child := testkit.StartChild(b, "RIG_BENCH_CHILD=1", fmt.Sprintf("RIG_HOSTS=%d", hosts), fmt.Sprintf("RIG_RATE=%g", rate))
		addr := child.ReadLine(b)
		names := make([]string, hosts)
		for j := range names {
			names[j] = fakepds.HostName(j, "test")
		}
		relay := startFanIn(b, addr, names)
		child.Tell(relay.url)
		var delivered atomic.Int64
		go func() {
			for {
				line, err := child.Stdout.ReadString('\n')
				if err != nil {
					return
				}
				var d, v, f int64
				if _, err := fmt.Sscanf(line, "delivered %d verified %d failed %d", &d, &v, &f); err == nil {
					delivered.Store(d)
				}
			}
		}()
		pid := child.PID
		read := func() (cpu, rss float64) {
			c, err := probe.CPU{PID: pid}.Read(context.Background())
			require.NoError(b, err)
			m, err := probe.Proc{PID: pid}.Read(context.Background())
			require.NoError(b, err)
			return c["cpu_seconds"], m["rss_anon"]
		}
		time.Sleep(60 * time.Second) // warm-up: every account's first #sync, repositories filling
		cpu0, _ := read()
		sent0, got0 := relay.frames.Load(), delivered.Load()
		t0 := time.Now()
		var peak, midRSS float64
		for time.Since(t0) < window {
			time.Sleep(time.Second)
			_, rss := read()
			peak = max(peak, rss)
			if midRSS == 0 && time.Since(t0) >= window/2 {
				midRSS = rss
			}
		}
		cpu1, endRSS := read()
		el := time.Since(t0).Seconds()
		frames := float64(relay.frames.Load() - sent0)
		b.ReportMetric((cpu1-cpu0)/el*100, "rig_cpu_%core")
		b.ReportMetric((cpu1-cpu0)*1e3/frames*1000, "rig_cpu_ms/1000frames")
		b.ReportMetric(peak/(1<<20), "rig_rss_peak_MiB")
		b.ReportMetric((endRSS-midRSS)/(1<<20), "rig_rss_rise_2nd_half_MiB")
		b.ReportMetric(frames/el, "frames/s")
		b.ReportMetric(float64(delivered.Load()-got0)/frames*100, "delivered_%")
		b.ReportMetric(float64(relay.conns.Load()), "hosts_connected")
		child.Stop()
		relay.close()
	}
}

// fanIn plays the relay: one subscriber per host, every frame re-emitted
// with the next seq of its own on a single firehose.
type fanIn struct {
	url    string
	frames atomic.Int64
	conns  atomic.Int64
	close  func()
}

func startFanIn(b *testing.B, fleetAddr string, names []string) *fanIn {
	fi := &fanIn{}
	out := make(chan []byte, 4096) // bounded: a consumer that falls behind slows the hosts' readers, as a relay's outbox would
	var seq int64
	var seqMu sync.Mutex
	srvLn, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	up := websocket.Upgrader{}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for data := range out {
			if err := c.WriteMessage(websocket.BinaryMessage, data); err != nil {
				return
			}
		}
	})}
	go srv.Serve(srvLn)
	fi.url = "ws://" + srvLn.Addr().String() + firehose.Path

	d := testkit.DialerAt(fleetAddr)
	var conns []*websocket.Conn
	var wg sync.WaitGroup
	for _, h := range names {
		c, _, err := d.Dial("ws://"+h+firehose.Path, nil)
		require.NoError(b, err, "subscribing to %s", h)
		conns = append(conns, c)
		fi.conns.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				_, data, err := c.ReadMessage()
				if err != nil {
					return
				}
				slot, err := fakepds.LocateSeq(data)
				if err != nil {
					continue
				}
				seqMu.Lock()
				seq++
				data = fakepds.RewriteSeq(data, slot, seq)
				out <- data
				seqMu.Unlock()
				fi.frames.Add(1)
			}
		}()
	}
	fi.close = func() {
		for _, c := range conns {
			c.Close()
		}
		wg.Wait()
		close(out)
		srv.Close()
	}
	return fi
}
