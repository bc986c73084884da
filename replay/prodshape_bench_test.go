package replay

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/relaysoak/relaysoak/fakepds"
	"github.com/relaysoak/relaysoak/internal/testkit"
)

// TestMain lets the production-shape benchmark run the fleet and its
// replayer in a child process (this test binary, re-executed), so their CPU
// and memory are measured apart from the consumers'.
func TestMain(m *testing.M) { testkit.MainOrChild(m, "REPLAY_BENCH_CHILD", benchChild) }

func benchChild() error {
	hosts, _ := strconv.Atoi(os.Getenv("REPLAY_HOSTS"))
	rate, _ := strconv.ParseFloat(os.Getenv("REPLAY_RATE"), 64)
	f, err := fakepds.New(fakepds.Config{Hosts: hosts, AccountsPerHost: 2})
	if err != nil {
		return err
	}
	if err := testkit.ServeForParent(f); err != nil {
		return err
	}
	// Start writing once the parent says its consumers are connected.
	testkit.FromParent()
	if path := os.Getenv("REPLAY_CPUPROFILE"); path != "" {
		// Profile the steady state, after the warm-up the parent waits out.
		go testkit.ProfileCPU(path, 15*time.Second, 20*time.Second)
	}
	// The soak's engine: synthetic re-hosted traffic with churn, Zipf hosts.
	r, err := New(f, Config{Rate: rate})
	if err != nil {
		return err
	}
	r.Run(context.Background())
	return nil
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
		child := testkit.StartChild(b, "REPLAY_BENCH_CHILD=1", "REPLAY_HOSTS=2750", "REPLAY_RATE=700")
		addr := child.ReadLine(b)
		names := make([]string, 2750)
		for j := range names {
			names[j] = fakepds.HostName(j, "test")
		}
		got := testkit.CountFrames(b, addr, "/xrpc/com.atproto.sync.subscribeRepos", names)
		child.Tell("go")
		time.Sleep(15 * time.Second) // warm-up: every account's first #sync, repositories filling
		cpu0, _ := procCPU(child.PID())
		n0 := got.Frames()
		t0 := time.Now()
		var peakRSS int64
		for time.Since(t0) < window {
			time.Sleep(time.Second)
			peakRSS = max(peakRSS, procRSS(child.PID()))
		}
		cpu1, _ := procCPU(child.PID())
		el := time.Since(t0).Seconds()
		b.ReportMetric((cpu1-cpu0)/el*100, "fleet_cpu_%core")
		b.ReportMetric(float64(peakRSS)/(1<<20), "fleet_rss_MiB")
		b.ReportMetric(float64(got.Frames()-n0)/el, "frames_delivered/s")
		got.Close()
		child.Stop()
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
