package soak

import (
	"context"
	"os"
	"path/filepath"
	"runtime/metrics"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/relaysoak/relaysoak/fakepds"
	"github.com/relaysoak/relaysoak/relay"
	"github.com/relaysoak/relaysoak/replay"
	"github.com/relaysoak/relaysoak/soak/crowd"
	"github.com/relaysoak/relaysoak/soak/firehose"
	"github.com/relaysoak/relaysoak/soak/harness"
	"github.com/relaysoak/relaysoak/soak/probe"
	"github.com/relaysoak/relaysoak/soak/report"
	"github.com/relaysoak/relaysoak/soak/rundir"
	"github.com/relaysoak/relaysoak/soak/verdict"
)

// memorySignals are the values judged as memory; the rest of what the
// probes read (VmHWM, RssFile, cgroup usage, OOM count, the live heap) is
// kept as context. The live heap's teeth and steps read as growth to the
// judge even when its floors are flat: attribution fits its floors instead.
var memorySignals = map[string]bool{
	rundir.SignalRssAnon: true, rundir.SignalVmRSS: true, rundir.SignalCgroupWorkingSet: true,
	rundir.SignalRSS: true, rundir.SignalHeapInuse: true,
}

// sampler reads every probe each interval and appends the line; it also
// keeps the live slope and the latest values for progress and metrics.
type sampler struct {
	cfg     Config
	rig     *harness.Harness
	crowd   *crowd.Crowd  // nil without extra consumers
	series  *probe.Series // the relay's metric series, while the crowd runs; nil without
	started time.Time
	probes  []probe.Probe
	self    []probe.Probe
	out     *rundir.Appender
	selfOut *rundir.Appender
	live    *verdict.Live

	onWarmup func() // called once, when the data first shows warm-up over
	// ev writes an event line (hosts found dark and read again); nil: none.
	ev  func(kind string, detail any)
	dir string

	mu        sync.Mutex
	last      rundir.Line
	errs      map[string]string
	exits     []string
	nExits    int
	restarts  int
	warmupHit bool

	delivery deliveryTrack    // each sample's delivery over its own interval
	worst    *report.Interval // the interval after the ramp-up that delivered least
	// judgedFrom is when the judged window opened (the first sample past the
	// ramp-up) with the commits due and delivered then; delivery.latest()
	// closes it.
	judgedFrom commitsAt
	judging    bool

	liveRes *verdict.Result // the last sample's live judgement; nil until the first
	// kept follows the live heap's floors when the relay serves one;
	// keptView is its last live verdict beside liveRes.
	kept     *verdict.LiveKept
	keptView *verdict.KeptView
	// goroutines is the relay's gauge of its goroutines ("" for none),
	// sampled as rundir.Goroutines.
	goroutines string
	// The live line's minutes still needed, on the OS's view and on what
	// the relay keeps.
	osNeed, keptNeed steadyNeed
	window           *replay.Window // the load's last closed window

	dark    *DarkHosts // the hosts the relay stopped reading
	hostsAt time.Time  // when hosts.csv was last written
}

// hostsEvery is how often hosts.csv is rewritten during the run.
const hostsEvery = time.Minute

// noteWindow keeps the load's last closed window (a minute by default):
// its achieved rate and lateness go into each sample line.
func (s *sampler) noteWindow(w replay.Window) {
	s.mu.Lock()
	s.window = &w
	s.mu.Unlock()
}

func newSampler(dir string, cfg Config, r *harness.Harness, cr *crowd.Crowd, started time.Time) (*sampler, error) {
	out, err := rundir.OpenAppender(filepath.Join(dir, rundir.Samples))
	if err != nil {
		return nil, err
	}
	selfOut, err := rundir.OpenAppender(filepath.Join(dir, rundir.RigSamples))
	if err != nil {
		out.Close()
		return nil, err
	}
	var ps []probe.Probe
	if p, ok := r.Target().(harness.PIDer); ok {
		// A relay on this host: its process, and a container's cgroup.
		pid := func() int { return p.PID(context.Background()) }
		ps = append(ps, probe.Proc{PID: pid}, probe.CPU{PID: pid})
		if r.Relay() != nil {
			ps = append(ps, probe.Cgroup{PID: pid})
		}
	}
	names := r.Target().MemoryMetrics()
	if g := r.Goroutines(); g != "" && !slices.Contains(names, g) {
		names = append(slices.Clip(names), g)
	}
	if len(names) > 0 {
		ps = append(ps, probe.Metrics{URL: r.Target().MetricsURL(), Names: names})
	}
	var series *probe.Series
	if cr != nil && r.Target().MetricsURL() != "" {
		// Clients come and go: whatever the relay labels by client shows
		// in its series.
		series = &probe.Series{URL: r.Target().MetricsURL()}
		ps = append(ps, series)
	}
	var kept *verdict.LiveKept
	if lh := r.LiveHeap(); lh.Goal != "" {
		ps = append(ps, probe.LiveHeap{URL: r.Target().MetricsURL(), Goal: lh.Goal, Percent: lh.Percent})
		kept = verdict.NewLiveKept(cfg.Judge)
	}
	return &sampler{kept: kept, goroutines: r.Goroutines(), series: series,
		cfg: cfg, rig: r, crowd: cr, started: started, probes: ps, out: out, selfOut: selfOut, dir: dir,
		self: []probe.Probe{probe.Proc{PID: os.Getpid}, probe.CPU{PID: os.Getpid}},
		live: verdict.NewLive(720), errs: map[string]string{},
		dark: NewDarkHosts(cfg.DarkAfter, cfg.SampleEvery, started, cfg.RampUp),
	}, nil
}

func (s *sampler) close() { s.out.Close(); s.selfOut.Close() }

func (s *sampler) run(ctx context.Context, ev func(string, any)) {
	t := time.NewTicker(s.cfg.SampleEvery)
	defer t.Stop()
	lastJudge := time.Now()
	for ctx.Err() == nil {
		s.sampleOnce(ctx)
		// Say when warm-up ended, once the data shows it.
		if !s.warmupHit && time.Since(lastJudge) > 5*time.Minute {
			lastJudge = time.Now()
			if res, err := s.live.Judge(s.context(), s.cfg.Judge); err == nil && res.WarmupEndS > 0 && res.WindowEndS > res.WarmupEndS {
				s.warmupHit = true
				ev("warmup_end", map[string]any{"at_s": res.WarmupEndS, "level_mib": res.LevelMiB})
				if s.onWarmup != nil {
					go s.onWarmup()
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *sampler) context() verdict.Context {
	el := time.Since(s.started).Seconds()
	st := s.rig.Counts().Fleet
	rate := 0.0
	if el > 0 {
		rate = float64(st.Commits+st.Identity+st.Account+st.Sync) / el
	}
	return verdict.Context{FrameRate: rate, MemoryLimit: float64(s.cfg.MemLimit)}
}

// sampleOnce reads every probe; each may fail alone and says so in the line.
func (s *sampler) sampleOnce(ctx context.Context) {
	now := time.Now()
	el := now.Sub(s.started).Seconds()
	line := rundir.Line{Sample: rundir.Sample{T: now.UTC(), ElapsedS: &el, Signals: map[string]float64{}, MemoryLimitBytes: float64(s.cfg.MemLimit)},
		Context: map[string]float64{}}
	pctx, cancel := context.WithTimeout(ctx, s.cfg.SampleEvery)
	defer cancel()
	for _, p := range s.probes {
		vals, err := p.Read(pctx)
		if err != nil && ctx.Err() != nil {
			continue // the run is ending; not the probe's fault
		}
		if err != nil {
			if line.Errors == nil {
				line.Errors = map[string]string{}
			}
			line.Errors[p.Name()] = err.Error()
			continue
		}
		for k, v := range vals {
			switch {
			case p.Name() == "metrics" && k == s.goroutines:
				line.Context[rundir.Goroutines] = v // judged under the one name
			case memorySignals[k] || (p.Name() == "metrics" && isMemoryGauge(k)):
				line.Signals[k] = v
			default:
				line.Context[k] = v
			}
		}
	}
	c := s.rig.Counts()
	fs, hs := c.Fleet, c.Firehose
	frames := float64(fs.Frames())
	line.FramesSent = &frames
	line.Context[rundir.CommitsSent] = float64(fs.Commits)
	line.Context[rundir.CommitsDelivered] = float64(hs.Commits)
	line.Context[rundir.LagP50Ms] = ms(hs.Lag.P50)
	line.Context[rundir.LagP99Ms] = ms(hs.Lag.P99)
	line.Context[rundir.Connections] = float64(fs.Connections)
	line.Context[rundir.PLCRequests] = float64(fs.PLCRequests)
	line.Context[rundir.HostSubscribes] = float64(fs.Subscribes)
	line.Context[rundir.FramesPastHistory] = float64(fs.PastHistory)
	line.Context[rundir.VerifyFailed] = float64(hs.VerifyFailed)
	line.Context[rundir.SeqGaps] = float64(hs.SeqGaps)
	line.Context[rundir.MeasureConnects] = float64(hs.Connects)
	line.Context[rundir.ErrorFrames] = float64(hs.ErrorFrames)
	line.Context[rundir.DecodeErrors] = float64(hs.DecodeErrors)
	s.watchHosts(now, hs.ByHost, line.Context)
	lag := s.rig.TakeLag()
	if lag.Count > 0 {
		line.Context[rundir.LagIntervalP50Ms] = ms(lag.P50)
		line.Context[rundir.LagIntervalP99Ms] = ms(lag.P99)
	} else {
		lag.P99 = hs.Lag.P99 // nothing arrived: the run's lag says what is in flight
	}
	s.mu.Lock()
	r, ok := s.delivery.add(el, float64(fs.Commits), float64(hs.Commits), lag.P99.Seconds())
	if !s.judging && el > s.cfg.RampUp.Seconds() {
		s.judging, s.judgedFrom = true, s.delivery.latest()
	}
	if ok {
		line.Context[rundir.DeliveryInterval] = r
		// The ramp-up's intervals are not judged: the relay is still dialling.
		// Nor are intervals with too few commits due to say much.
		if el > s.cfg.RampUp.Seconds() && s.delivery.lastDue >= minDueForWorst && (s.worst == nil || r < s.worst.Delivery) {
			s.worst = &report.Interval{Delivery: r, EndS: el, LagP99Ms: ms(lag.P99)}
		}
	}
	s.mu.Unlock()
	if s.crowd != nil {
		// Consumer-side load, to read memory against: connects, resumes,
		// cut-offs, resets…
		for k, v := range s.crowd.Counts().Columns() {
			line.Context[k] = v
		}
	}

	s.mu.Lock()
	if w := s.window; w != nil {
		line.Context[rundir.AchievedRate] = w.Rate
		line.Context[rundir.TargetRate] = w.Target / (w.End - w.Start).Seconds()
		line.Context[rundir.LatenessP50Ms] = ms(w.Lateness.P50)
		line.Context[rundir.LatenessP99Ms] = ms(w.Lateness.P99)
	}
	line.Exits = s.nExits
	for k, v := range line.Errors {
		s.errs[k] = v
	}
	s.last = line
	s.mu.Unlock()
	if err := s.out.Write(line); err != nil {
		s.mu.Lock()
		s.errs[rundir.Samples] = err.Error()
		s.mu.Unlock()
	}
	if v, ok := primary(line.Signals); ok {
		s.live.Add(verdict.Point{T: el, Bytes: v})
		// Judged once per sample; progress and metrics read the result.
		jctx := s.context()
		if res, err := s.live.Judge(jctx, s.cfg.Judge); err == nil {
			var kv *verdict.KeptView
			if s.kept != nil {
				if v, ok := line.Context[rundir.SignalLiveHeap]; ok {
					s.kept.Add(verdict.Point{T: el, Bytes: v})
				}
				view := s.kept.Judge(res, jctx)
				view.NeedMoreMinutes = s.keptNeed.steady(el, view.NeedMoreMinutes)
				kv = &view
			}
			res.NeedMoreMinutes = s.osNeed.steady(el, res.NeedMoreMinutes)
			s.mu.Lock()
			s.liveRes, s.keptView = &res, kv
			s.mu.Unlock()
		}
	}
	// The rig's own memory, the same way, and its CPU and heap beside it:
	// the report's Rig section reads them.
	self := rundir.Line{Sample: rundir.Sample{T: now.UTC(), ElapsedS: &el, Signals: map[string]float64{}, FramesSent: &frames},
		Context: map[string]float64{}}
	for _, p := range s.self {
		if vals, err := p.Read(pctx); err == nil {
			for k, v := range vals {
				if memorySignals[k] {
					self.Signals[k] = v
				} else {
					self.Context[k] = v
				}
			}
		}
	}
	rt := []metrics.Sample{{Name: "/sched/goroutines:goroutines"}, {Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/goal:bytes"}}
	metrics.Read(rt)
	self.Context[rundir.Goroutines] = float64(rt[0].Value.Uint64())
	self.Context[rundir.HeapObjectsBytes] = float64(rt[1].Value.Uint64())
	self.Context[rundir.HeapGoalBytes] = float64(rt[2].Value.Uint64())
	s.selfOut.Write(self)
}

// watchHosts follows every host's reading by the relay at now: it notes
// the hosts found dark or read again (as events), counts those dark into
// the sample's context values, and rewrites hosts.csv once hostsEvery.
func (s *sampler) watchHosts(now time.Time, byHost map[string]firehose.HostCounts, values map[string]float64) {
	ledger := s.rig.Ledger()
	s.mu.Lock()
	changes := s.dark.Observe(now, ledger, byHost)
	values[rundir.DarkHosts] = float64(s.dark.Count())
	due := ledger != nil && now.Sub(s.hostsAt) >= hostsEvery
	if due {
		s.hostsAt = now
	}
	s.mu.Unlock()
	for _, c := range changes {
		if s.ev == nil {
			break
		}
		if c.Dark {
			s.ev(rundir.EventHostDark, map[string]any{"host": c.Host, "start": c.Start.UTC(), "start_s": c.Start.Sub(s.started).Seconds(), "reason": c.Reason})
		} else {
			s.ev(rundir.EventHostLit, map[string]any{"host": c.Host, "dark_for_s": c.For.Seconds(), "commits_lost": c.Lost})
		}
	}
	if due {
		if err := s.writeHosts(ledger, byHost); err != nil {
			s.mu.Lock()
			s.errs[rundir.HostsCSV] = err.Error()
			s.mu.Unlock()
		}
	}
}

// writeHosts replaces hosts.csv with every host's account for the relay.
func (s *sampler) writeHosts(ledger []fakepds.HostLedger, byHost map[string]firehose.HostCounts) error {
	s.mu.Lock()
	rows := hostRows(ledger, byHost, s.dark.Dark)
	s.mu.Unlock()
	return rundir.WriteHosts(filepath.Join(s.dir, rundir.HostsCSV), rows)
}

// darkHosts are the hosts the relay stopped reading, as at the last
// sample; those in planned are marked planned.
func (s *sampler) darkHosts(planned []string) []report.DarkHost {
	s.mu.Lock()
	defer s.mu.Unlock()
	hosts := s.dark.Hosts(s.last.T)
	for i := range hosts {
		hosts[i].Planned = slices.Contains(planned, hosts[i].Host)
	}
	return hosts
}

// isDark says whether host is dark at the last sample.
func (s *sampler) isDark(host string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dark.Dark(host)
}

// inFlight is the commits written within the lag before the last sample.
func (s *sampler) inFlight() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.delivery.t == nil {
		return 0
	}
	l := s.delivery.latest()
	return max(l.written-l.due, 0)
}

// isMemoryGauge: a gauge of memory in use. Idle and released heap, and
// counts (goroutines), are context: they move for healthy reasons.
func isMemoryGauge(name string) bool {
	if strings.Contains(name, "idle") || strings.Contains(name, "released") {
		return false
	}
	return strings.HasSuffix(name, "_bytes") || strings.HasSuffix(name, "_kb")
}

// primary picks the signal the verdict will most likely rest on.
func primary(sig map[string]float64) (float64, bool) {
	k, ok := verdict.Leading(func(k string) bool { _, ok := sig[k]; return ok })
	return sig[k], ok
}

func (s *sampler) latest() rundir.Line {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

func (s *sampler) noteExit(e *relay.Exit) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nExits++
	s.exits = append(s.exits, e.String())
}

func (s *sampler) noteRestart() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.restarts++
}

func (s *sampler) restartCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.restarts
}

func (s *sampler) exitTexts() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.exits...)
}

func (s *sampler) probeErrors() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.errs) == 0 {
		return nil
	}
	out := make(map[string]string, len(s.errs))
	for k, v := range s.errs {
		out[k] = v
	}
	return out
}

// slope is the live slope of the primary signal, MiB/h (0 until judgeable).
func (s *sampler) slope() (float64, verdict.Verdict) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.liveRes == nil {
		return 0, ""
	}
	if s.liveRes.Provisional {
		return 0, s.liveRes.Verdict // an estimate for the progress line, not yet a slope to export
	}
	return s.liveRes.SlopeMiBPerHour, s.liveRes.Verdict
}

// liveResult is the last live judgement of the primary signal, nil before
// the first, and of what the relay keeps, nil when it serves no live heap.
func (s *sampler) liveResult() (*verdict.Result, *verdict.KeptView) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.liveRes, s.keptView
}

// worstInterval is the sample interval after the ramp-up that delivered
// the smallest share of what was due.
func (s *sampler) worstInterval() *report.Interval {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.worst
}

// minDueForWorst is how many commits an interval must have had due to be
// the worst interval: in a few commits, one read between the fleet's and
// the consumer's counters is a large share.
const minDueForWorst = 100

// judgedDelivery is delivery over the judged window: from the first sample
// past the ramp-up to the latest, the commits written within the lag
// before the latest sample in flight; nil before the window opened.
func (s *sampler) judgedDelivery() *report.JudgedDelivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.judging {
		return nil
	}
	from, to := s.judgedFrom, s.delivery.latest()
	d := &report.JudgedDelivery{Due: to.due - from.due, Delivered: to.delivered - from.delivered,
		InFlight: max(to.written-to.due, 0), FromS: from.t, Min: max(s.cfg.MinDelivery, 0), Ratio: 1}
	if d.Due > 0 {
		// Commits in flight that arrived in time count for none missing,
		// not for more than was due.
		d.Ratio = min(d.Delivered/d.Due, 1)
	}
	return d
}
