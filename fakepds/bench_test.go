package fakepds

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

// TestMain lets the production-shape benchmark run the fleet in a child
// process (this test binary, re-executed), so the fleet's CPU and memory
// are measured apart from the consumers'.
func TestMain(m *testing.M) {
	if os.Getenv("FAKEPDS_BENCH_CHILD") != "" {
		os.Exit(benchChild())
	}
	os.Exit(m.Run())
}

func benchChild() int {
	hosts, _ := strconv.Atoi(os.Getenv("FAKEPDS_HOSTS"))
	rate, _ := strconv.ParseFloat(os.Getenv("FAKEPDS_RATE"), 64)
	f, err := New(Config{Hosts: hosts, AccountsPerHost: 2})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	go http.Serve(ln, f)
	fmt.Println(ln.Addr().String())
	// Start writing once the parent says its consumers are connected.
	bufio.NewReader(os.Stdin).ReadString('\n')
	if path := os.Getenv("FAKEPDS_CPUPROFILE"); path != "" {
		// Profile the steady state, after the warm-up the parent waits out.
		go func() {
			time.Sleep(15 * time.Second)
			fh, err := os.Create(path)
			if err != nil {
				return
			}
			pprof.StartCPUProfile(fh)
			time.Sleep(20 * time.Second)
			pprof.StopCPUProfile()
			fh.Close()
		}()
	}
	f.RunWriter(context.Background(), rate)
	return 0
}

// BenchmarkSignedCommit: one commit prepared (record, MST update, diff
// blocks, signature, CAR) on an account at its steady repository size.
func BenchmarkSignedCommit(b *testing.B) {
	f, err := New(Config{Hosts: 1, AccountsPerHost: 1, Churn: Churn{Off: true}})
	require.NoError(b, err)
	a := f.hosts[0].accounts[0]
	rng := rand.New(rand.NewPCG(1, 1))
	ctx := context.Background()
	for i := 0; i < 2*f.cfg.MaxRecords; i++ {
		_, err := a.commit(ctx, a.nextOps(1, rng, f.cfg.MaxRecords), commitOptions{})
		require.NoError(b, err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := a.commit(ctx, a.nextOps(1, rng, f.cfg.MaxRecords), commitOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
}

// consumers connects one websocket reader per host and counts frames.
func consumers(b *testing.B, addr string, names []string) (*atomic.Int64, func()) {
	var got atomic.Int64
	d := &websocket.Dialer{NetDial: func(network, _ string) (net.Conn, error) { return net.Dial(network, addr) }}
	var conns []*websocket.Conn
	var wg sync.WaitGroup
	for _, h := range names {
		c, _, err := d.Dial("ws://"+h+"/xrpc/com.atproto.sync.subscribeRepos", nil)
		require.NoError(b, err)
		conns = append(conns, c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if _, _, err := c.NextReader(); err != nil {
					return
				}
				got.Add(1)
			}
		}()
	}
	return &got, func() {
		for _, c := range conns {
			c.Close()
		}
		wg.Wait()
	}
}

// BenchmarkFanout2750: frames published and written to 2,750 connected
// consumers (one per host, as a relay holds). Commits are prepared outside
// the timer: this measures sequencing, history and websocket writes.
func BenchmarkFanout2750(b *testing.B) {
	f, err := New(Config{Hosts: 2750, AccountsPerHost: 1, Churn: Churn{Off: true}})
	require.NoError(b, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	srv := &http.Server{Handler: f}
	go srv.Serve(ln)
	defer srv.Close()
	got, stop := consumers(b, ln.Addr().String(), f.HostNames())
	defer stop()
	frame := make([]byte, 1500)
	b.SetBytes(int64(len(frame)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h := f.hosts[i%len(f.hosts)]
		h.publish(time.Minute, func(int64, time.Time) ([]byte, error) { return frame, nil })
	}
	for got.Load() < int64(b.N) {
		time.Sleep(time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
}

// BenchmarkProductionShape runs the fleet at 2,750 hosts × 700 commits/s in
// a child process with 2,750 consumers attached, and reports the fleet's
// own CPU (share of one core) and resident memory over a steady window.
// Set FAKEPDS_BENCH_SECONDS to lengthen the window (default 30).
func BenchmarkProductionShape(b *testing.B) {
	window := 30 * time.Second
	if s := os.Getenv("FAKEPDS_BENCH_SECONDS"); s != "" {
		n, err := strconv.Atoi(s)
		require.NoError(b, err)
		window = time.Duration(n) * time.Second
	}
	for i := 0; i < b.N; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "FAKEPDS_BENCH_CHILD=1", "FAKEPDS_HOSTS=2750", "FAKEPDS_RATE=700")
		stdin, err := cmd.StdinPipe()
		require.NoError(b, err)
		stdout, err := cmd.StdoutPipe()
		require.NoError(b, err)
		cmd.Stderr = os.Stderr
		require.NoError(b, cmd.Start())
		defer cmd.Process.Kill()
		addr, err := bufio.NewReader(stdout).ReadString('\n')
		require.NoError(b, err)
		names := make([]string, 2750)
		for j := range names {
			names[j] = HostName(j, "test")
		}
		got, stop := consumers(b, strings.TrimSpace(addr), names)
		fmt.Fprintln(stdin, "go")
		time.Sleep(15 * time.Second) // warm-up: every account's first #sync, repositories filling
		cpu0, _ := procCPU(cmd.Process.Pid)
		n0 := got.Load()
		t0 := time.Now()
		var peakRSS int64
		for time.Since(t0) < window {
			time.Sleep(time.Second)
			peakRSS = max(peakRSS, procRSS(cmd.Process.Pid))
		}
		cpu1, _ := procCPU(cmd.Process.Pid)
		el := time.Since(t0).Seconds()
		b.ReportMetric((cpu1-cpu0)/el*100, "fleet_cpu_%core")
		b.ReportMetric(float64(peakRSS)/(1<<20), "fleet_rss_MiB")
		b.ReportMetric(float64(got.Load()-n0)/el, "frames_delivered/s")
		stop()
		cmd.Process.Kill()
		cmd.Wait()
	}
}

// procCPU is a process's user+system CPU seconds, from /proc/<pid>/stat.
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseFloat(fields[11], 64)
	st, _ := strconv.ParseFloat(fields[12], 64)
	return (ut + st) / 100, nil // USER_HZ is 100 on Linux
}

// procRSS is VmRSS in bytes.
func procRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			kb, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}
