package soak

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/relaysoak/relaysoak/relay"
	"github.com/relaysoak/relaysoak/soak/report"
)

// Compare is the B side of an A/B soak. Zero values take A's settings.
type Compare struct {
	// RelayImage of B; "" is indigo's relay, built here.
	RelayImage string
	// Profile of B; default A's (the same kind of relay, another build).
	Profile relay.Profile
	// MemLimit of B's container; default A's.
	MemLimit int64
}

// Sub-directories of an A/B run: each a complete run directory.
const (
	ADir = "a"
	BDir = "b"
)

// runAB runs two relays, each in its own container and network, fed the
// same frames at the same moments by one fleet (every host serves both
// subscribers the identical stream), each sampled by the same probes; it
// judges each on its own, then B against A.
func runAB(ctx context.Context, cfg Config) (Outcome, error) {
	dir := filepath.Join(cfg.RunsDir, cfg.ID)
	out := Outcome{Dir: dir}
	if cfg.External != nil {
		return out, fmt.Errorf("%w: an A/B soak starts both relays itself; a relay at --target-url cannot be one of them", ErrNotStarted)
	}
	ca, cb := cfg, cfg
	ca.Compare, cb.Compare = nil, nil
	cb.RelayImage = cfg.Compare.RelayImage
	if cfg.Compare.Profile != nil {
		cb.Profile = cfg.Compare.Profile
	}
	if cfg.Compare.MemLimit > 0 {
		cb.MemLimit = cfg.Compare.MemLimit
	}
	ld, err := prepareLoad(ctx, cfg, cfg.Out)
	if err != nil {
		return out, fmt.Errorf("%w: the load: %v", ErrNotStarted, err)
	}
	defer ld.cleanup()
	started := time.Now()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return out, fmt.Errorf("%w: run dir: %v", ErrNotStarted, err)
	}
	if err := writeRunJSON(filepath.Join(dir, RunFile), cfg, ld); err != nil {
		return out, fmt.Errorf("%w: %v", ErrNotStarted, err)
	}
	var fairness []string
	if n := runtime.NumCPU(); cfg.CPUs > 0 && 2*cfg.CPUs > float64(n) {
		fairness = append(fairness, fmt.Sprintf("the CPU limits (2 × %.2g cores) are more than the machine's %d cores: the limits do not keep the relays apart", cfg.CPUs, n))
	}
	a, err := newArm(ca, filepath.Join(dir, ADir), "A", started)
	if err != nil {
		return out, err
	}
	defer a.close(context.WithoutCancel(ctx))
	b, err := newArm(cb, filepath.Join(dir, BDir), "B", started)
	if err != nil {
		return out, err
	}
	defer b.close(context.WithoutCancel(ctx)) // before a's: b serves a's fleet
	if err := a.start(ctx, nil, ld, started); err != nil {
		return out, err
	}
	if err := b.start(ctx, a, ld, started); err != nil {
		return out, err
	}
	// The rig's metrics follow A (the rig itself is one process either way).
	metricsSrv, err := serveMetrics(cfg.MetricsListen, a.s)
	if err != nil {
		return out, fmt.Errorf("%w: %v", ErrNotStarted, err)
	}
	if metricsSrv != nil {
		defer metricsSrv.Close()
	}
	fmt.Fprintf(cfg.Out, "relaysoak: A/B: A is %s, B is %s, both fed by one fleet of %d hosts\n", a.rig.Target().Image(), b.rig.Target().Image(), cfg.Hosts)

	cpu0, cpuErr := readHostCPU()
	loadCtx, stopLoad := context.WithTimeout(ctx, cfg.Duration)
	defer stopLoad()
	var wg sync.WaitGroup
	wg.Add(6)
	go func() { defer wg.Done(); a.runCrowd(loadCtx) }()
	go func() { defer wg.Done(); b.runCrowd(loadCtx) }()
	go func() { defer wg.Done(); ld.run(loadCtx, a, a.s, b.s) }()
	go func() { defer wg.Done(); a.s.run(loadCtx, a.ev) }()
	go func() { defer wg.Done(); b.s.run(loadCtx, b.ev) }()
	go func() { defer wg.Done(); progress(loadCtx, cfg, started, a.s, b.s) }()
	stopReason, interrupted := waitLoad(ctx, loadCtx, a, b)
	stopLoad()
	wg.Wait()
	busy := -1.0
	if cpu1, err := readHostCPU(); err == nil && cpuErr == nil {
		busy = cpu1.busySince(cpu0)
	}
	a.ev("load_stopped", stopReason)
	b.ev("load_stopped", stopReason)

	// Both drain and stop at once, as they ran.
	var sa, sb sumErr
	var fw sync.WaitGroup
	fw.Add(2)
	go func() { defer fw.Done(); sa.s, sa.err = a.finish(ctx, started, stopReason, interrupted, ld) }()
	go func() { defer fw.Done(); sb.s, sb.err = b.finish(ctx, started, stopReason, interrupted, ld) }()
	fw.Wait()
	ab := report.NewAB(cfg.ID, sa.s, sb.s, ADir, BDir, append(fairness, fairnessWarnings(sa.s, sb.s, busy)...))
	out.AB = &ab
	out.Summary = sb.s
	for _, e := range []error{sa.err, sb.err} {
		if e != nil {
			return out, e
		}
	}
	if err := report.WriteAB(dir, ab); err != nil {
		return out, err
	}
	fmt.Fprintf(cfg.Out, "\n%s\nreport: %s\n", report.HeadlineAB(ab), filepath.Join(dir, report.ReportFile))
	return out, nil
}

type sumErr struct {
	s   report.Summary
	err error
}

// fairnessWarnings say when the machine, rather than the build, may explain
// a difference: a saturated CPU, or delivery or lag diverging between two
// relays fed the identical stream.
func fairnessWarnings(a, b report.Summary, busy float64) []string {
	var out []string
	if busy >= 0.9 {
		out = append(out, fmt.Sprintf("the machine's CPUs were %.0f%% busy during the load: the relays competed for them (and with the rig); run fewer hosts or a lower rate, or set --cpus", busy*100))
	}
	for _, s := range []struct {
		name string
		s    report.Summary
	}{{"A", a}, {"B", b}} {
		if s.s.CommitsSent > 0 && s.s.Delivery < 0.99 {
			out = append(out, fmt.Sprintf("%s delivered only %.2f%% of the commits: a relay falling behind keeps less in memory, or more", s.name, s.s.Delivery*100))
		}
	}
	if d := math.Abs(a.Delivery - b.Delivery); d > 0.01 {
		out = append(out, fmt.Sprintf("delivery diverges (A %.2f%%, B %.2f%%) although both were fed the same stream", a.Delivery*100, b.Delivery*100))
	}
	lo, hi := math.Min(a.LagP99Ms, b.LagP99Ms), math.Max(a.LagP99Ms, b.LagP99Ms)
	if hi > 1000 && hi > 2*lo {
		out = append(out, fmt.Sprintf("lag diverges (p99 A %.0f ms, B %.0f ms)", a.LagP99Ms, b.LagP99Ms))
	}
	if len(out) > 0 && busy >= 0 && busy < 0.9 {
		out = append(out, fmt.Sprintf("(the machine's CPUs were %.0f%% busy: the divergence may be the build's)", busy*100))
	}
	return out
}

// hostCPU is the machine's cumulative CPU time from /proc/stat, in ticks.
type hostCPU struct{ busy, total float64 }

func readHostCPU() (hostCPU, error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return hostCPU{}, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 || fields[0] != "cpu" {
			continue
		}
		var c hostCPU
		// user nice system idle iowait irq softirq steal; guest time is
		// already counted in user and nice.
		for i, v := range fields[1:min(len(fields), 9)] {
			x, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return hostCPU{}, fmt.Errorf("/proc/stat: %q: %w", v, err)
			}
			c.total += x
			if i != 3 && i != 4 { // idle, iowait
				c.busy += x
			}
		}
		return c, nil
	}
	return hostCPU{}, fmt.Errorf("/proc/stat: no cpu line")
}

// busySince is the fraction of the machine's CPU time spent busy since c0.
func (c hostCPU) busySince(c0 hostCPU) float64 {
	if dt := c.total - c0.total; dt > 0 {
		return (c.busy - c0.busy) / dt
	}
	return 0
}
