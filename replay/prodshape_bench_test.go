package replay

import (
	"bufio"
	"context"
	"fmt"
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

	"github.com/relaysoak/relaysoak/fakepds"
)

// TestMain lets the production-shape benchmark run the fleet and its
// replayer in a child process (this test binary, re-executed), so their CPU
// and memory are measured apart from the consumers'.
func TestMain(m *testing.M) {
	if os.Getenv("REPLAY_BENCH_CHILD") != "" {
		os.Exit(benchChild())
	}
	os.Exit(m.Run())
}

func benchChild() int {
	hosts, _ := strconv.Atoi(os.Getenv("REPLAY_HOSTS"))
	rate, _ := strconv.ParseFloat(os.Getenv("REPLAY_RATE"), 64)
	f, err := fakepds.New(fakepds.Config{Hosts: hosts, AccountsPerHost: 2})
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
	if path := os.Getenv("REPLAY_CPUPROFILE"); path != "" {
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
	// The soak's engine: synthetic re-hosted traffic with churn, Zipf hosts.
	r, err := New(f, Config{Rate: rate})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	r.Run(context.Background())
	return 0
}

// BenchmarkProductionShape runs the fleet, driven by the replayer, at 2,750
// hosts × 700 frames/s in a child process with 2,750 consumers attached, and reports the fleet's
// own CPU (share of one core) and resident memory over a steady window.
// Set REPLAY_BENCH_SECONDS to lengthen the window (default 30).
func BenchmarkProductionShape(b *testing.B) {
	window := 30 * time.Second
	if s := os.Getenv("REPLAY_BENCH_SECONDS"); s != "" {
		n, err := strconv.Atoi(s)
		require.NoError(b, err)
		window = time.Duration(n) * time.Second
	}
	for i := 0; i < b.N; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "REPLAY_BENCH_CHILD=1", "REPLAY_HOSTS=2750", "REPLAY_RATE=700")
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
			names[j] = fakepds.HostName(j, "test")
		}
		got, stop := benchConsumers(b, strings.TrimSpace(addr), names)
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

// benchConsumers connects one websocket consumer per host name at addr,
// counting frames; stop closes them.
func benchConsumers(b *testing.B, addr string, names []string) (*atomic.Int64, func()) {
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
