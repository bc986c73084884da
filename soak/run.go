package soak

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/google/pprof/profile"
	"github.com/relaysoak/relaysoak/fakepds"
	"github.com/relaysoak/relaysoak/relay"
	"github.com/relaysoak/relaysoak/replay"
	"github.com/relaysoak/relaysoak/soak/attribute"
	"github.com/relaysoak/relaysoak/soak/crowd"
	"github.com/relaysoak/relaysoak/soak/harness"
	"github.com/relaysoak/relaysoak/soak/heapdiff"
	"github.com/relaysoak/relaysoak/soak/report"
	"github.com/relaysoak/relaysoak/soak/rundir"
	"github.com/relaysoak/relaysoak/soak/verdict"
)

// DefaultMinDelivery is the share of due commits a relay must deliver.
const DefaultMinDelivery = 0.999

// Config of a soak. Zero values are the defaults `make soak` runs with.
type Config struct {
	// RunsDir holds one directory per run (default "runs"); ID names this
	// run's (default: the start time, 20260704-143914).
	RunsDir, ID string

	Hosts           int           // default 50
	AccountsPerHost int           // default 2
	Rate            float64       // frames/s in total; default 50
	Duration        time.Duration // default 30 minutes: the judge wants 20 after warm-up
	// Churn is the mix of events besides commits (nil: the realistic mix,
	// or a capture's where it holds enough; &replay.Churn{}: none).
	Churn *replay.Churn
	// The load's source and schedule (package replay decides what is
	// written when). Capture is a capture file or a raw dump directory:
	// CaptureMode rehosted (default) follows its shape for the whole run,
	// verbatim sends its real frames first, then re-hosted traffic in its
	// shape. Weights (default Zipf), RampUp, Burst and Outages shape the
	// schedule; Seed makes host picks and keys repeat (default 1).
	Capture     string
	CaptureMode replay.Mode
	Weights     replay.Weights
	RampUp      time.Duration
	Burst       replay.Burst
	Outages     replay.Outages
	Seed        int64

	// Consumers are extra firehose consumers of each relay besides the
	// measuring one (default 0), loading its downstream side:
	// ConsumerChurn is each one's mean time between reconnects (0: never
	// on purpose), ConsumerMix what it does then (resume, old cursor, read
	// too slowly, vanish, get stuck), ConsumerSlowFor how long a slow
	// reader stops. ConsumerIdentities is how many client identities they
	// present (default 1), ConsumerIdentityChurn the chance that a connect
	// comes as a never-seen one (crowd.Config).
	Consumers             int
	ConsumerChurn         time.Duration
	ConsumerMix           crowd.Mix
	ConsumerSlowFor       time.Duration
	ConsumerIdentities    int
	ConsumerIdentityChurn float64
	// PLC is the fake PLC's behaviour: latency, errors, resets… (default:
	// prompt and reliable).
	PLC fakepds.PLCBehaviour

	// Relay: Image ("" = indigo's, built here), memory limit (default 2 GiB),
	// stop grace (default: the profile's).
	RelayImage string
	MemLimit   int64
	StopGrace  time.Duration
	// Profile knows the relay's habits (default: indigo's).
	Profile relay.Profile
	// External soaks a relay the rig does not start: memory from its
	// metrics, delivery from its firehose, the fleet served at FleetAddr
	// (and FleetTLSAddr) for it to dial, the CA kept in CADir.
	External                       *harness.External
	FleetAddr, FleetTLSAddr, CADir string
	// FleetDNSAddr serves DNS for the fleet's names there (see harness.Config).
	FleetDNSAddr string
	// Harness starts each arm's harness (default: the relay in a
	// container, or External's); see Starter.
	Harness Starter

	// CPUs limits each relay container's CPU (1.5 = one and a half cores);
	// default unlimited. In an A/B soak it keeps one build from starving
	// the other.
	CPUs float64
	// Compare makes this an A/B soak: the relay above is A, this one B,
	// both fed the same frames at the same moments by one fleet.
	Compare *Compare

	// Restart starts the relay again after it dies (as Kubernetes would)
	// instead of ending the run with CRASHED.
	Restart bool

	// SampleEvery is the memory sampling interval (default 10 s).
	SampleEvery time.Duration
	// DrainQuiet ends the wait for the relay's last commits after the load
	// once none has arrived for this long (default 5 s; the wait is at
	// most six times as long).
	DrainQuiet time.Duration
	// FleetHistory is how far back the fleet's hosts serve cursors
	// (fakepds.Config.History: default 1 h on disk; negative: the
	// in-memory tail alone).
	FleetHistory time.Duration
	// DarkAfter is how long the relay must have stopped reading a host —
	// held no subscription to it, or passed on none of its commits —
	// outside a planted outage for the host to be dark (default 1 minute;
	// see DarkHosts).
	DarkAfter time.Duration
	// MinDelivery is the share of the commits due after the ramp-up the
	// relay must deliver, or the run is LOST (default 0.999; negative: not
	// judged).
	MinDelivery float64
	// Attribute, when set, makes the soak an attribution run: the load
	// factors raised one at a time on a plan (printed before the run;
	// Duration becomes its length), and memory growth regressed on what
	// the rig did, per factor (the report's attribution section and
	// attribution.json). Zero fields are the plan's defaults.
	Attribute *attribute.PlanConfig
	// VerifyEvery: verify every Nth delivered commit (default 100; 1 = all).
	VerifyEvery int
	// MetricsListen serves the rig's own Prometheus metrics ("" = off).
	MetricsListen string

	Judge verdict.Config

	// Recipe is every effective setting by its flag name, recorded in
	// run.json so the run can be repeated (the command fills it).
	Recipe map[string]string

	// Out receives progress; Terminal draws live bars instead of a line a
	// minute.
	Out      io.Writer
	Terminal bool
}

func (c Config) withDefaults() Config {
	if c.RunsDir == "" {
		c.RunsDir = "runs"
	}
	if c.ID == "" {
		c.ID = time.Now().UTC().Format("20060102-150405")
	}
	if c.Hosts == 0 {
		c.Hosts = 50
	}
	if c.AccountsPerHost == 0 {
		c.AccountsPerHost = 2
	}
	if c.Rate == 0 {
		c.Rate = 50
	}
	if c.Duration == 0 {
		c.Duration = 30 * time.Minute
	}
	if c.MemLimit == 0 {
		c.MemLimit = 2 << 30
	}
	if c.SampleEvery == 0 {
		c.SampleEvery = 10 * time.Second
	}
	if c.DarkAfter <= 0 {
		c.DarkAfter = DefaultDarkAfter
	}
	if c.MinDelivery == 0 {
		c.MinDelivery = DefaultMinDelivery
	}
	if c.DrainQuiet == 0 {
		c.DrainQuiet = 5 * time.Second
	}
	if c.VerifyEvery == 0 {
		c.VerifyEvery = 100
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.ConsumerMix == (crowd.Mix{}) {
		c.ConsumerMix = crowd.DefaultMix
	}
	if c.ConsumerSlowFor == 0 {
		c.ConsumerSlowFor = time.Minute
	}
	if c.ConsumerIdentities == 0 {
		c.ConsumerIdentities = 1
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	if c.Harness == nil {
		c.Harness = containerStarter
	}
	return c
}

// ErrNotStarted wraps every failure before the load began.
var ErrNotStarted = errors.New("soak could not start")

// Outcome is a finished soak.
type Outcome struct {
	Dir     string
	Summary report.Summary // B's, in an A/B soak
	// AB is the comparison of an A/B soak (nil otherwise).
	AB *report.AB
}

// Run performs one soak: it starts the fleet and the relay, drives the load
// for the duration, samples memory into samples.jsonl as it goes, and ends
// — at the deadline, when ctx is cancelled (Ctrl-C), or when the relay dies
// without --restart — with a verdict and a report. Files written before a
// failure are kept. With Compare set it is an A/B soak: the same start-up
// with two arms, each relay in its own container and network, fed the same
// frames at the same moments by one fleet and sampled by the same probes;
// each is judged on its own, then B against A.
func Run(ctx context.Context, cfg Config) (Outcome, error) {
	cfg = cfg.withDefaults()
	// The run directory is always inside the runs directory.
	if cfg.ID != filepath.Base(cfg.ID) || cfg.ID == "." || cfg.ID == ".." || strings.ContainsAny(cfg.ID, `/\`) {
		return Outcome{}, fmt.Errorf("%w: run ID %q must be one path element (no '/', no '..')", ErrNotStarted, cfg.ID)
	}
	cfg, plan, err := attributionPlan(cfg)
	if err != nil {
		return Outcome{}, fmt.Errorf("%w: %v", ErrNotStarted, err)
	}
	dir := filepath.Join(cfg.RunsDir, cfg.ID)
	out := Outcome{Dir: dir}
	specs, err := armSpecs(cfg, dir)
	if err != nil {
		return out, fmt.Errorf("%w: %v", ErrNotStarted, err)
	}
	ab := len(specs) > 1
	ld, err := prepareLoad(ctx, cfg, cfg.Out)
	if err != nil {
		return out, fmt.Errorf("%w: the load: %v", ErrNotStarted, err)
	}
	defer ld.cleanup()
	if plan != nil {
		if err := ld.attribute(*plan); err != nil {
			return out, fmt.Errorf("%w: %v", ErrNotStarted, err)
		}
	}
	started := time.Now()
	if ab {
		// The A/B run's own run.json, beside a/ and b/ (each has its own).
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return out, fmt.Errorf("%w: run dir: %v", ErrNotStarted, err)
		}
		if err := writeRunJSON(filepath.Join(dir, rundir.Run), cfg, ld); err != nil {
			return out, fmt.Errorf("%w: %v", ErrNotStarted, err)
		}
	}
	var arms []*arm
	for _, sp := range specs {
		a, err := newArm(sp.cfg, sp.dir, sp.name, started)
		if err != nil {
			return out, err
		}
		// Deferred closes run last first: B before A, whose fleet B shares.
		defer a.close(context.WithoutCancel(ctx))
		arms = append(arms, a)
	}
	samplers := make([]*sampler, len(arms))
	for i, a := range arms {
		var share *arm
		if i > 0 {
			share = arms[0]
		}
		if err := a.start(ctx, share, ld, started); err != nil {
			return out, err
		}
		samplers[i] = a.s
	}
	// The rig's metrics follow the first arm (the rig is one process either way).
	metricsSrv, err := serveMetrics(cfg.MetricsListen, arms[0].s)
	if err != nil {
		return out, fmt.Errorf("%w: %v", ErrNotStarted, err)
	}
	if metricsSrv != nil {
		defer metricsSrv.Close()
		fmt.Fprintf(cfg.Out, "relaysoak: rig metrics at http://%s/metrics, its profiler at /debug/pprof/\n", metricsSrv.Addr)
	}
	if ab {
		fmt.Fprintf(cfg.Out, "relaysoak: A/B: A is %s, B is %s, both fed by one fleet of %d hosts\n",
			arms[0].rig.Target().Image(), arms[1].rig.Target().Image(), cfg.Hosts)
	}

	// The load, the samplers and the progress run until the deadline, an
	// interrupt or a relay's death.
	cpu0, cpuErr := readHostCPU()
	loadCtx, stopLoad := context.WithTimeout(ctx, cfg.Duration)
	defer stopLoad()
	var wg sync.WaitGroup
	for _, a := range arms {
		wg.Add(2)
		go func() { defer wg.Done(); a.runCrowd(loadCtx) }()
		go func() { defer wg.Done(); a.s.run(loadCtx, a.ev) }()
	}
	if ld.attr != nil {
		ld.attr.started(time.Now()) // the plan's clock
	}
	wg.Add(2)
	go func() { defer wg.Done(); ld.run(loadCtx, arms[0], samplers...) }()
	con := &console{w: cfg.Out}
	go func() { defer wg.Done(); progress(loadCtx, cfg, started, con, samplers...) }()
	if ld.attr != nil {
		wg.Add(1)
		go func() { defer wg.Done(); ld.attr.checkNoise(loadCtx, arms[0].dir, con, arms[0].ev) }()
	}
	stopReason, interrupted := waitLoad(ctx, loadCtx, arms...)
	stopLoad()
	wg.Wait()
	busy := -1.0
	if cpu1, err := readHostCPU(); err == nil && cpuErr == nil {
		busy = cpu1.busySince(cpu0)
	}

	// The arms drain and stop at once, as they ran.
	sums := make([]report.Summary, len(arms))
	errs := make([]error, len(arms))
	for i, a := range arms {
		a.ev("load_stopped", stopReason)
		wg.Add(1)
		go func() { defer wg.Done(); sums[i], errs[i] = a.finish(ctx, started, stopReason, interrupted, ld) }()
	}
	wg.Wait()
	out.Summary = sums[len(sums)-1]
	if !ab {
		if errs[0] != nil {
			return out, errs[0]
		}
		fmt.Fprintf(cfg.Out, "\n%s\nreport: %s\n", report.Headline(out.Summary), filepath.Join(dir, rundir.Report))
		return out, nil
	}
	fairness := specs[0].fairness
	abr := report.NewAB(cfg.ID, sums[0], sums[1], rundir.A, rundir.B, append(fairness, fairnessWarnings(sums[0], sums[1], busy)...))
	out.AB = &abr
	if err := errors.Join(errs...); err != nil {
		return out, err
	}
	if err := report.WriteAB(dir, abr); err != nil {
		return out, err
	}
	fmt.Fprintf(cfg.Out, "\n%s\nreport: %s\n", report.HeadlineAB(abr), filepath.Join(dir, rundir.Report))
	return out, nil
}

// waitLoad waits for the end of the load: the deadline, an interrupt, or a
// relay's death (restarted instead, with cfg.Restart). It returns why the
// load stopped. One or two arms (A/B).
func waitLoad(ctx, loadCtx context.Context, arms ...*arm) (reason string, interrupted bool) {
	for {
		var exA, exB <-chan struct{} // a nil channel never fires
		exA = arms[0].rig.Target().Exited()
		if len(arms) > 1 {
			exB = arms[1].rig.Target().Exited()
		}
		var which *arm
		select {
		case <-loadCtx.Done():
			if ctx.Err() != nil {
				return "interrupted: " + context.Cause(ctx).Error(), true
			}
			return "duration reached", false
		case <-exA:
			which = arms[0]
		case <-exB:
			which = arms[1]
		}
		if stop, why := which.onExit(loadCtx); stop {
			return why, false
		}
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func exitDetail(e *relay.Exit) any {
	if e == nil {
		return nil
	}
	return map[string]any{"code": e.Code, "oom_killed": e.OOMKilled, "expected": e.Expected, "restarted": e.Restarted, "tail": e.Tail}
}

// judgeFile judges every memory signal of a samples file, and what the
// process keeps when the file holds its live heap (verdict.JudgeRun).
func judgeFile(path string, cfg verdict.Config) (verdict.Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return verdict.Report{}, err
	}
	defer f.Close()
	run, err := verdict.ReadSamples(f, path)
	if err != nil {
		return verdict.Report{}, err
	}
	return verdict.JudgeRun(run, cfg)
}

func writeRunJSON(path string, cfg Config, ld *load) error {
	info := rundir.RunInfo{Format: rundir.RunFormat, ID: cfg.ID, Started: time.Now().UTC(), GoVersion: runtime.Version(), RelayImage: cfg.RelayImage,
		Config: map[string]any{
			"hosts": cfg.Hosts, "accounts_per_host": cfg.AccountsPerHost, "rate": cfg.Rate,
			"duration": cfg.Duration.String(), "mem_limit": cfg.MemLimit, "sample_every": cfg.SampleEvery.String(),
			"restart": cfg.Restart, "stop_grace": cfg.StopGrace.String(), "plc": cfg.PLC, "seed": cfg.Seed,
			"verify_every": cfg.VerifyEvery, "cpus": cfg.CPUs,
			"consumers": cfg.Consumers, "consumer_churn": cfg.ConsumerChurn.String(), "consumer_mix": cfg.ConsumerMix,
			"consumer_slow_for": cfg.ConsumerSlowFor.String(), "consumer_identities": cfg.ConsumerIdentities,
			"consumer_identity_churn": cfg.ConsumerIdentityChurn, "dark_after": cfg.DarkAfter.String(),
			"fleet_history": cfg.FleetHistory.String(),
		},
		Load:    ld.replay,
		Capture: ld.capture,
		Recipe:  cfg.Recipe,
	}
	if cfg.Compare != nil {
		info.Config["compare_image"] = cfg.Compare.RelayImage
		info.Config["compare_mem_limit"] = cfg.Compare.MemLimit
		if cfg.Compare.Profile != nil {
			info.Config["compare_profile"] = cfg.Compare.Profile.Facts().Name
		}
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		info.Relaysoak = bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				info.Relaysoak += " " + s.Value
			}
		}
		for _, d := range bi.Deps {
			if d.Path == "github.com/bluesky-social/indigo" {
				info.Indigo = d.Version
			}
		}
	}
	return rundir.WriteRunInfo(path, info)
}

// updateRunJSONImage records the image the run really used, and its ID.
func updateRunJSONImage(path, image string) {
	info, err := rundir.ReadRunInfo(path)
	if err != nil {
		return
	}
	info.RelayImage = image
	info.ImageID = relay.ImageID(context.Background(), image)
	rundir.WriteRunInfo(path, info)
}

// heapProfiles takes a Go relay's heap profile twice and diffs them.
type heapProfiles struct {
	url, dir string
	once     sync.Once
	mu       sync.Mutex
	before   *profile.Profile
	errs     []string
}

func newHeapProfiles(r *harness.Harness, dir string) *heapProfiles {
	h := &heapProfiles{dir: dir}
	if r.Relay() != nil {
		h.url = r.Relay().PprofURL()
	}
	return h
}

func (h *heapProfiles) takeBefore() {
	if h.url == "" {
		return
	}
	h.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		p, err := heapdiff.Fetch(ctx, h.url)
		h.mu.Lock()
		defer h.mu.Unlock()
		if err != nil {
			h.errs = append(h.errs, err.Error())
			return
		}
		h.before = p
		heapdiff.Save(p, filepath.Join(h.dir, rundir.HeapWarmup))
	})
}

// takeAfter takes the second profile and returns the growth, nil when
// there is none to compare.
func (h *heapProfiles) takeAfter(ctx context.Context) *heapdiff.Growth {
	h.mu.Lock()
	before := h.before
	h.mu.Unlock()
	if before == nil {
		return nil
	}
	after, err := heapdiff.Fetch(ctx, h.url)
	if err == nil {
		heapdiff.Save(after, filepath.Join(h.dir, rundir.HeapEnd))
		var g heapdiff.Growth
		if g, err = heapdiff.Diff(before, after, 10); err == nil {
			return &g
		}
	}
	h.mu.Lock()
	h.errs = append(h.errs, err.Error())
	h.mu.Unlock()
	return nil
}

// problems says why a heap profile is missing, for the report.
func (h *heapProfiles) problems() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, e := range h.errs {
		out = append(out, "heap profile: "+e)
	}
	return out
}
