// Package probe reads a process's memory from the places it can be read:
// /proc/<pid>/status, the container's cgroup (v1 or v2) and the process's
// own Prometheus metrics. Each probe fails on its own; a sampler keeps
// whatever the others returned.
//
// It must not know what the numbers mean for a verdict, nor how the process
// was started.
package probe

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/relaysoak/relaysoak/internal/promtext"
	"github.com/relaysoak/relaysoak/soak/rundir"
)

// Probe reads one source. Names of the returned values are signal names
// (rss_anon, vm_rss, cgroup_working_set, heap_inuse…), bytes.
type Probe interface {
	Name() string
	Read(ctx context.Context) (map[string]float64, error)
}

// Proc reads VmRSS, RssAnon, RssFile and VmHWM from /proc/<pid>/status.
type Proc struct {
	// PID returns the process to read (0: not running now).
	PID func() int
	// Root is the proc mount (default /proc).
	Root string
}

func (p Proc) Name() string { return "proc" }

var procFields = map[string]string{"VmRSS": rundir.SignalVmRSS, "RssAnon": rundir.SignalRssAnon, "RssFile": rundir.RssFile, "VmHWM": rundir.VmHWM}

func (p Proc) Read(context.Context) (map[string]float64, error) {
	pid := p.PID()
	if pid <= 0 {
		return nil, fmt.Errorf("proc probe: process is not running")
	}
	path := filepath.Join(orDefault(p.Root, "/proc"), strconv.Itoa(pid), "status")
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("proc probe: %w", err)
	}
	defer f.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		name, want := procFields[k]
		if !ok || !want {
			continue
		}
		fs := strings.Fields(v)
		if len(fs) != 2 || fs[1] != "kB" {
			return nil, fmt.Errorf("proc probe: %s: unexpected %s line %q", path, k, sc.Text())
		}
		n, err := strconv.ParseFloat(fs[0], 64)
		if err != nil {
			return nil, fmt.Errorf("proc probe: %s: %s: %w", path, k, err)
		}
		out[name] = n * 1024
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("proc probe: %s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("proc probe: %s has no memory lines (a kernel thread, or not Linux?)", path)
	}
	return out, nil
}

// CPU reads a process's CPU time, user and system, in seconds
// ("cpu_seconds"; the system part alone as "cpu_system_seconds") from
// /proc/<pid>/stat: not memory, but what a run's cost
// is read against (the rig must not crowd out the relay it measures).
type CPU struct {
	PID  func() int
	Root string // the proc mount (default /proc)
}

func (c CPU) Name() string { return "cpu" }

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on
// every Linux a relay runs on.
const clockTicks = 100

func (c CPU) Read(context.Context) (map[string]float64, error) {
	pid := c.PID()
	if pid <= 0 {
		return nil, fmt.Errorf("cpu probe: process is not running")
	}
	path := filepath.Join(orDefault(c.Root, "/proc"), strconv.Itoa(pid), "stat")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cpu probe: %w", err)
	}
	// The command name may hold spaces and parentheses: fields are counted
	// from the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 > len(s) {
		return nil, fmt.Errorf("cpu probe: %s: no command name in %q", path, s)
	}
	f := strings.Fields(s[i+2:])
	if len(f) < 13 {
		return nil, fmt.Errorf("cpu probe: %s: %d fields after the command name, want at least 13", path, len(f))
	}
	utime, err1 := strconv.ParseFloat(f[11], 64)
	stime, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("cpu probe: %s: utime %q, stime %q are not numbers", path, f[11], f[12])
	}
	// The kernel's share apart: socket writes over a bridge charge part of
	// the receiving side's network stack to the writer, which the Go
	// profiler never sees.
	return map[string]float64{rundir.CPUSeconds: (utime + stime) / clockTicks, rundir.CPUSystemSeconds: stime / clockTicks}, nil
}

// Cgroup reads the memory cgroup of a process: usage, working set (usage −
// inactive_file, what docker stats and the kubelet show) and OOM kills.
// It finds the cgroup from /proc/<pid>/cgroup and handles v1 and v2.
type Cgroup struct {
	PID func() int
	// ProcRoot and SysRoot default to /proc and /sys/fs/cgroup; tests
	// point them at fixture trees.
	ProcRoot, SysRoot string
}

func (c Cgroup) Name() string { return "cgroup" }

func (c Cgroup) Read(context.Context) (map[string]float64, error) {
	pid := c.PID()
	if pid <= 0 {
		return nil, fmt.Errorf("cgroup probe: process is not running")
	}
	sys := orDefault(c.SysRoot, "/sys/fs/cgroup")
	cgFile := filepath.Join(orDefault(c.ProcRoot, "/proc"), strconv.Itoa(pid), "cgroup")
	b, err := os.ReadFile(cgFile)
	if err != nil {
		return nil, fmt.Errorf("cgroup probe: %w", err)
	}
	var v1Path, v2Path string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			v2Path = parts[2]
		}
		for _, ctl := range strings.Split(parts[1], ",") {
			if ctl == "memory" {
				v1Path = parts[2]
			}
		}
	}
	switch {
	case v1Path != "":
		return readCgroupMemory(cgroupFiles{version: "v1", dir: filepath.Join(sys, "memory", v1Path),
			usage: "memory.usage_in_bytes", inactive: "total_inactive_file", oom: "memory.oom_control"})
	case v2Path != "":
		return readCgroupMemory(cgroupFiles{version: "v2", dir: filepath.Join(sys, v2Path),
			usage: "memory.current", inactive: "inactive_file", oom: "memory.events"})
	}
	return nil, fmt.Errorf("cgroup probe: %s names no memory cgroup", cgFile)
}

// cgroupFiles names where one cgroup version keeps the memory figures.
type cgroupFiles struct {
	version, dir string
	usage, oom   string // files: the usage in bytes; the one counting oom_kill
	inactive     string // memory.stat's key for inactive file pages
}

// readCgroupMemory reads usage, working set (usage less inactive file
// pages, as the kubelet counts it) and OOM kills (when the file is there).
func readCgroupMemory(f cgroupFiles) (map[string]float64, error) {
	usage, err := readNumber(filepath.Join(f.dir, f.usage))
	if err != nil {
		return nil, fmt.Errorf("cgroup probe (%s): %w", f.version, err)
	}
	stat, err := readKV(filepath.Join(f.dir, "memory.stat"))
	if err != nil {
		return nil, fmt.Errorf("cgroup probe (%s): %w", f.version, err)
	}
	out := map[string]float64{rundir.CgroupUsage: usage, rundir.SignalCgroupWorkingSet: max(0, usage-stat[f.inactive])}
	if oc, err := readKV(filepath.Join(f.dir, f.oom)); err == nil {
		out[rundir.CgroupOOMKills] = oc["oom_kill"]
	}
	return out, nil
}

// Metrics reads gauges from a Prometheus endpoint and renames them to
// signal names (process_resident_memory_bytes is the profile's RSS gauge,
// "rss"; go_memstats_heap_inuse_bytes is "heap_inuse"; others keep their
// metric name).
type Metrics struct {
	URL   string
	Names []string
}

func (m Metrics) Name() string { return "metrics" }

// SignalName maps a memory metric to the signal it stands for.
func SignalName(metric string) string {
	switch metric {
	case "process_resident_memory_bytes", "relay_process_rss_bytes":
		return rundir.SignalRSS
	case "go_memstats_heap_inuse_bytes":
		return rundir.SignalHeapInuse
	}
	return metric
}

func (m Metrics) Read(ctx context.Context) (map[string]float64, error) {
	got, err := promtext.Scrape(ctx, m.URL, m.Names...)
	if err != nil {
		return nil, fmt.Errorf("metrics probe: %w", err)
	}
	// A relay may not serve every gauge a profile lists: keep those it does.
	out := map[string]float64{}
	for _, n := range m.Names {
		v, ok := got.Sum(n, nil)
		if !ok {
			continue
		}
		if strings.HasSuffix(n, "_kb") {
			v *= 1024
		}
		out[SignalName(n)] = v
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("metrics probe: %s serves none of %v", m.URL, m.Names)
	}
	return out, nil
}

// LiveHeap reads a garbage-collected process's live heap from its
// collector's next goal: goal / (1 + GOGC/100). The goal moves only at a
// collection, so it has none of the collector's sawtooth.
type LiveHeap struct {
	URL string
	// Goal and Percent name the gauges (see relay.LiveHeap); a process
	// that does not serve Percent runs at GOGC=100.
	Goal, Percent string
}

func (l LiveHeap) Name() string { return rundir.SignalLiveHeap }

func (l LiveHeap) Read(ctx context.Context) (map[string]float64, error) {
	names := []string{l.Goal}
	if l.Percent != "" {
		names = append(names, l.Percent)
	}
	got, err := promtext.Scrape(ctx, l.URL, names...)
	if err != nil {
		return nil, fmt.Errorf("live heap probe: %w", err)
	}
	goal, ok := got.Sum(l.Goal, nil)
	if !ok {
		return nil, fmt.Errorf("live heap probe: %s does not serve %s", l.URL, l.Goal)
	}
	pct := 100.0
	if v, ok := got.Sum(l.Percent, nil); l.Percent != "" && ok {
		pct = v
	}
	if pct <= 0 {
		// GOGC=off: the goal is the memory limit's, not the live heap's.
		return nil, fmt.Errorf("live heap probe: %s is %g (collection off), so %s does not follow the live heap", l.Percent, pct, l.Goal)
	}
	return map[string]float64{rundir.SignalLiveHeap: goal / (1 + pct/100)}, nil
}

func readNumber(path string) (float64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// readKV reads "key value" lines (memory.stat, memory.events, oom_control).
func readKV(path string) (map[string]float64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		if v, err := strconv.ParseFloat(f[1], 64); err == nil {
			out[f[0]] = v
		}
	}
	return out, nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// Series counts the series a Prometheus endpoint serves, by family: a
// relay that labels a metric by client and never forgets a label set
// grows them with every new client. It keeps a baseline count per family
// (the first scrape's, until Rebase) and the latest, a number per family
// however long it runs.
type Series struct {
	URL string

	mu          sync.Mutex
	first, last map[string]int
	rebased     bool
}

// Rebase makes the latest scrape the baseline, once: the end of warm-up,
// when the relay has learnt its hosts and its per-host series are there.
// It says whether this call set the baseline.
func (s *Series) Rebase() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rebased || s.last == nil {
		return false
	}
	s.first, s.rebased = s.last, true
	return true
}

func (s *Series) Name() string { return "series" }

// Read scrapes every family and returns the number of series in all
// (rundir.MetricSeries).
func (s *Series) Read(ctx context.Context) (map[string]float64, error) {
	got, err := promtext.Scrape(ctx, s.URL)
	if err != nil {
		return nil, fmt.Errorf("series probe: %w", err)
	}
	counts, total := make(map[string]int, len(got)), 0
	for name, f := range got {
		counts[name] = len(f.GetMetric())
		total += len(f.GetMetric())
	}
	s.mu.Lock()
	if s.first == nil {
		s.first = counts
	}
	s.last = counts
	s.mu.Unlock()
	return map[string]float64{rundir.MetricSeries: float64(total)}, nil
}

// FamilySeries is one metric family's series at the first scrape and the
// latest.
type FamilySeries struct {
	Family        string
	First, Latest int
}

// Grown returns the series in all at the baseline and the latest, and the
// families whose series grew, most grown first.
func (s *Series) Grown() (first, latest int, grown []FamilySeries) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, n := range s.last {
		latest += n
		if n > s.first[name] {
			grown = append(grown, FamilySeries{Family: name, First: s.first[name], Latest: n})
		}
	}
	for _, n := range s.first {
		first += n
	}
	slices.SortFunc(grown, func(a, b FamilySeries) int {
		if d := (b.Latest - b.First) - (a.Latest - a.First); d != 0 {
			return d
		}
		return strings.Compare(a.Family, b.Family)
	})
	return first, latest, grown
}
