package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/relaysoak/relaysoak/relay"
	"github.com/relaysoak/relaysoak/replay"
	"github.com/relaysoak/relaysoak/soak"
	"github.com/relaysoak/relaysoak/soak/attribute"
	"github.com/relaysoak/relaysoak/soak/crowd"
	"github.com/relaysoak/relaysoak/soak/harness"
	"github.com/relaysoak/relaysoak/soak/report"
	"github.com/relaysoak/relaysoak/soak/rundir"
	"github.com/relaysoak/relaysoak/soak/verdict"
	tclog "github.com/testcontainers/testcontainers-go/log"
)

func init() {
	register(command{name: "soak", summary: "soak a relay: load for a duration, memory sampled, a verdict and a report", setup: setupSoak,
		about: "Starts the fake network and the relay (or attaches to one elsewhere), drives the load for --duration, samples the relay's memory, and ends with PASS, LEAK, INCONCLUSIVE or CRASHED and runs/<id>/report.md."})
	register(command{name: "report", summary: "rebuild a run's report, plot and verdict from its files", setup: setupReport})
}

// maxMemLimit bounds --mem-limit: more than any machine here has.
const maxMemLimit = 1 << 40

// soakFlags declares the flags of a soak (soak, bisect and bisect-step
// share them) and returns what makes its Config once they are parsed.
func soakFlags(f *flags) func() soak.Config {
	hosts := f.Int("hosts", 50, 1, maxHosts, "PDS hosts in the fleet (production shape: 2750)")
	perHost := f.Int("accounts-per-host", 2, 1, 10_000, "synthetic accounts per host")
	rate := f.Float("rate", 50, 0.01, 1e6, "frames per second in total (production shape: 700)")
	duration := f.Duration("duration", 30*time.Minute, time.Second, 365*24*time.Hour, "how long the load runs (the verdict wants 20 minutes after warm-up)")
	memLimit := f.Size("mem-limit", 2<<30, 64<<20, maxMemLimit, "the relay container's memory limit (4GiB, 4g, 4096MiB)")
	image := f.String("relay-image", "", "relay image (default: indigo at the version pinned in go.mod, built here when missing)")
	profile := f.String("relay-profile", "indigo", "relay profile: indigo, zlay, rsky, or a generic profile file (.yaml/.json)")
	capture := f.InFile("capture", "", true, true, "capture file, or raw dump directory, whose traffic the load replays (default: the built-in synthetic mix)")
	captureMode := f.Choice("capture-mode", "rehosted", []string{string(replay.Rehosted), string(replay.Verbatim)},
		"rehosted: the capture's shape (kinds, ops, collections, sizes) for the whole run; verbatim: its real frames first, then re-hosted traffic in its shape")
	sched := scheduleFlags(f)
	seed := f.Int64("seed", 1, 1, math.MaxInt64, "seed for keys, DIDs, records and host picks: the same seed repeats the load")
	sampleEvery := f.Duration("sample-every", 10*time.Second, time.Second, time.Hour, "memory sampling interval")
	judgeWindow := f.Duration("judge-window", verdict.DefaultMinWindow, time.Minute, 7*24*time.Hour,
		"the least data after the warm-up the verdict judges (a strong leak is called at 2/5 of it): shorter answers sooner (a bisect of a large leak), with less power against a slow one")
	stopGrace := f.Duration("stop-grace", 0, time.Second, 2*time.Hour, "how long the relay may take to stop")
	f.Zero("the profile's")
	restart := f.Bool("restart", false, "start the relay again when it dies, counting restarts, instead of ending with CRASHED")
	metricsListen := f.Addr("metrics-listen", "", true, "serve the rig's own Prometheus metrics and Go profiler (/debug/pprof/) here, e.g. 127.0.0.1:9470")
	runsDir := f.OutPath("runs-dir", "runs", false, "directory holding one directory per run")
	id := f.ID("id", "run ID: its directory's name under --runs-dir (default: the start time)")
	churn := churnFlags(f)
	consumers := f.Int("consumers", 0, 0, 10_000, "extra firehose consumers of the relay besides the measuring one (they only count frames): its consumer side under load")
	consumerChurn := f.Duration("consumer-churn", 0, time.Second, 24*time.Hour, "mean time between each extra consumer's reconnects")
	f.Zero("never on purpose")
	dm := crowd.DefaultMix
	mixResume := f.Float("consumer-resume", dm.Resume, 0, 1000, "weight of reconnecting from the last cursor")
	mixOld := f.Float("consumer-old-cursor", dm.OldCursor, 0, 1000, "weight of reconnecting with an old cursor (replayed from the relay's backlog)")
	mixSlow := f.Float("consumer-slow", dm.Slow, 0, 1000, "weight of reading too slowly, to be cut off as too slow")
	mixVanish := f.Float("consumer-vanish", dm.Vanish, 0, 1000, "weight of vanishing without a close frame (TCP reset) mid-stream")
	mixStuck := f.Float("consumer-stuck", dm.Stuck, 0, 1000, "weight of getting stuck: stop reading and keep the connection open until the run ends (a hung client); the report gives the relay's memory per stuck client")
	identities := f.Int("consumer-identities", 1, 1, crowd.MaxIdentities, "distinct client identities (User-Agents) the extra consumers present; each connect takes one at random")
	identityChurn := f.Float("consumer-identity-churn", 0, 0, 1, "chance that a consumer's connect comes as a never-seen client identity (new clients, as production has): a relay that keeps something per client grows with them")
	slowFor := f.Duration("consumer-slow-for", time.Minute, time.Second, time.Hour,
		"how long a slow consumer stops reading: long enough for the relay to cut it off (indigo's 16,384-event queue lasts about 23 s at 700 frames/s)")
	attr := f.Bool("attribute", false, "an attribution run: raise frames, DID resolutions, host reconnects, consumer reconnects and new consumer identities one at a time on a plan (printed first; it sets the duration) and report how many bytes each retains")
	attrPhase := f.Duration("attribute-phase", 0, time.Minute, 6*time.Hour, "with --attribute: each phase's length")
	f.Zero("derived from the noise the judge must see through")
	attrWarmup := f.Duration("attribute-warmup", 10*time.Minute, time.Minute, 6*time.Hour, "with --attribute: the warm-up before the first phase (not judged)")
	attrNoise := f.Float("attribute-noise", attribute.DefaultNoiseMiB, 0.1, 10_000, "with --attribute: the relay's memory noise around its trend, MiB (a previous attribution report's residual sd): it sets the phase length")
	attrDetect := f.Float("attribute-detect", attribute.DefaultMinDetectMiBPerHour, 1, 100_000, "with --attribute: the slowest growth per factor, MiB/hour at its baseline, the plan must attribute")
	attrMax := f.Duration("attribute-max", attribute.DefaultMaxTotal, 10*time.Minute, 48*time.Hour, "with --attribute: the longest the plan may take, warm-up included")
	plc := plcFlags(f)
	verifyEvery := f.Int("verify-every", 100, -1, 1_000_000, "verify every Nth commit the relay emits (1: all, -1: none)")
	f.Zero("every commit, as 1")
	targetURL := f.URL("target-url", "", []string{"ws", "wss"}, "soak a relay the rig does not start: its subscribeRepos URL (ws://host:port/xrpc/com.atproto.sync.subscribeRepos)")
	targetMetrics := f.URL("target-metrics", "", []string{"http", "https"}, "with --target-url: its Prometheus endpoint (http://host:port/metrics)")
	targetMemory := f.String("target-memory-metrics", "process_resident_memory_bytes,go_memstats_heap_inuse_bytes", "with --target-url: the gauges that carry its memory")
	fleetListen := f.Addr("fleet-listen", "", true, "with --target-url: where the fleet serves ws/http for the relay to dial (e.g. 10.0.0.5:80)")
	fleetTLSListen := f.Addr("fleet-tls-listen", "", true, "with --target-url: where the fleet serves https/wss (PLC over TLS), e.g. 10.0.0.5:443")
	fleetDNSListen := f.Addr("fleet-dns-listen", "", true, "with --target-url: serve DNS (udp) here, answering every fleet name with --fleet-listen's IP (for docker-compose's dns: setting)")
	compare := f.String("compare", "", "A/B soak: this relay image is B, --relay-image is A (\"indigo\": indigo built here); both fed the same frames by one fleet")
	compareProfile := f.String("compare-profile", "", "B's relay profile (default: --relay-profile's)")
	compareMemLimit := f.Size("compare-mem-limit", 0, 64<<20, maxMemLimit, "B's container memory limit")
	f.Zero("--mem-limit's")
	cpus := f.Float("cpus", 0, 0.01, 1024, "CPU limit of each relay container, in cores; in an A/B soak it keeps one build from starving the other")
	f.Zero("unlimited")
	minDelivery := minDeliveryFlag(f)
	darkAfter := darkAfterFlag(f)
	history := fleetHistoryFlag(f)
	caDir := f.OutPath("ca-dir", "", true, "with --target-url: keep the CA the relay trusts here, reused across runs (default: the run directory)")
	f.Repeat("repeat", "start the same run again: every setting of runs/<id> (its run.json) not given here", readRecipe, "id")

	var prof, cmpProf relay.Profile
	f.Check(func() error {
		var err error
		if prof, err = profileByName(*profile); err != nil {
			return usagef("%s: %v", f.Where("relay-profile"), err)
		}
		// A bisect builds its images: only soak needs one named.
		if name := prof.Facts().Name; f.cmd == "soak" && name != "indigo" && *image == "" && *targetURL == "" {
			return usagef("the %s profile needs %s: only indigo's relay is built here", name, f.Where("relay-image"))
		}
		if *compareProfile != "" {
			if cmpProf, err = profileByName(*compareProfile); err != nil {
				return usagef("%s: %v", f.Where("compare-profile"), err)
			}
		}
		if *consumers == 0 {
			for _, n := range []string{"consumer-churn", "consumer-resume", "consumer-old-cursor", "consumer-slow", "consumer-vanish", "consumer-stuck",
				"consumer-slow-for", "consumer-identities", "consumer-identity-churn"} {
				if f.find(n).set {
					return usagef("%s only applies with %s", f.Where(n), f.Where("consumers"))
				}
			}
		}
		if *mixResume+*mixOld+*mixSlow+*mixVanish+*mixStuck == 0 {
			return usagef("the consumer behaviour weights (%s …) are all 0", f.Where("consumer-resume"))
		}
		if *capture == "" && sched().Weights.Kind == "capture" {
			return usagef("%s capture needs %s", f.Where("weights"), f.Where("capture"))
		}
		if *capture == "" && f.find("capture-mode").set {
			return usagef("%s needs %s", f.Where("capture-mode"), f.Where("capture"))
		}
		if *compare != "" && *targetURL != "" {
			return usagef("%s starts both relays itself; it cannot be used with %s", f.Where("compare"), f.Where("target-url"))
		}
		if *targetURL != "" && *targetMetrics == "" {
			return usagef("%s needs %s: the relay's memory is read from its metrics", f.Where("target-url"), f.Where("target-metrics"))
		}
		if *targetURL == "" {
			for _, n := range []string{"target-metrics", "fleet-listen", "fleet-tls-listen", "fleet-dns-listen", "ca-dir"} {
				if f.find(n).set && f.find(n).value.String() != "" {
					return usagef("%s only applies with %s", f.Where(n), f.Where("target-url"))
				}
			}
		}
		return nil
	})
	return func() soak.Config {
		var cmp *soak.Compare
		if *compare != "" {
			cmp = &soak.Compare{RelayImage: *compare, Profile: cmpProf, MemLimit: *compareMemLimit}
			if *compare == "indigo" {
				cmp.RelayImage = ""
			}
		}
		var external *harness.External
		if *targetURL != "" {
			external = &harness.External{Firehose: *targetURL, Metrics: *targetMetrics, Memory: strings.Split(*targetMemory, ",")}
		}
		ve := *verifyEvery
		if ve == 0 {
			ve = 1
		}
		sc := sched()
		var attribution *attribute.PlanConfig
		if *attr {
			attribution = &attribute.PlanConfig{PhaseLength: *attrPhase, Warmup: *attrWarmup,
				NoiseMiB: *attrNoise, MinDetectMiBPerHour: *attrDetect, MaxTotal: *attrMax}
		}
		return soak.Config{
			RunsDir: *runsDir, ID: *id, Hosts: *hosts, AccountsPerHost: *perHost, Rate: *rate, Duration: *duration,
			Churn: churn(), Capture: *capture, CaptureMode: replay.Mode(*captureMode), Seed: *seed,
			Weights: sc.Weights, RampUp: sc.RampUp, Burst: sc.Burst, Outages: sc.Outages, Recipe: f.Given(),
			Consumers: *consumers, ConsumerChurn: *consumerChurn, ConsumerSlowFor: *slowFor,
			ConsumerMix:        crowd.Mix{Resume: *mixResume, OldCursor: *mixOld, Slow: *mixSlow, Vanish: *mixVanish, Stuck: *mixStuck},
			ConsumerIdentities: *identities, ConsumerIdentityChurn: *identityChurn,
			RelayImage: *image, Profile: prof, MemLimit: *memLimit, StopGrace: *stopGrace, Restart: *restart,
			SampleEvery: *sampleEvery, VerifyEvery: ve, MetricsListen: *metricsListen, Out: os.Stdout,
			Terminal: isTerminal(os.Stdout) && os.Getenv("CI") == "",
			Compare:  cmp, CPUs: *cpus, Attribute: attribution, MinDelivery: *minDelivery, DarkAfter: *darkAfter, FleetHistory: *history,
			PLC: plc(), External: external, FleetAddr: *fleetListen, FleetTLSAddr: *fleetTLSListen, CADir: *caDir, FleetDNSAddr: *fleetDNSListen,
			Judge: verdict.Config{MinWindow: *judgeWindow},
		}
	}
}

func setupSoak(f *flags) func([]string) int {
	config := soakFlags(f)
	return func([]string) int {
		cfg := config()
		ctx, stop := soakContext()
		defer stop()
		out, err := soak.Run(ctx, cfg)
		if err != nil {
			if errors.Is(err, soak.ErrNotStarted) {
				fail("soak", exitNotStarted, "%v", err)
				if s := strings.ToLower(err.Error()); strings.Contains(s, "docker") || strings.Contains(s, "daemon") {
					fmt.Fprintln(os.Stderr, "relaysoak soak: is Docker running (docker info)?")
				}
				if out.Dir != "" {
					fmt.Fprintln(os.Stderr, "relaysoak soak: files so far are in", out.Dir)
				}
				return exitNotStarted
			}
			fail("soak", exitFailed, "%v", err)
			fmt.Fprintln(os.Stderr, "relaysoak soak: what was collected is in", out.Dir, "('relaysoak report", out.Dir+"' rebuilds the report)")
			return exitFailed
		}
		if out.AB != nil {
			return verdictStatus(out.AB.Verdict)
		}
		return verdictStatus(report.Outcome(out.Summary))
	}
}

// minDeliveryFlag is --min-delivery, the bar of soak and run alike: 0
// (not judged) becomes soak's negative.
func minDeliveryFlag(f *flags) *float64 {
	v := f.Float("min-delivery", soak.DefaultMinDelivery, 0, 1, "delivery of the commits due after the ramp-up below this ends the run LOST (exit status 8)")
	f.Zero("not judged")
	out := new(float64)
	f.Check(func() error {
		*out = *v
		if *v == 0 {
			*out = -1
		}
		return nil
	})
	return out
}

// darkAfterFlag is --dark-after, the dark-host threshold of soak and run
// alike.
func darkAfterFlag(f *flags) *time.Duration {
	return f.Duration("dark-after", soak.DefaultDarkAfter, time.Second, 24*time.Hour,
		"a host the relay holds no subscription to, or passes on none of the commits of, this long outside a planted outage is dark, and named as such")
}

// fleetHistoryFlag is --fleet-history, how far back the fleet's hosts
// serve cursors, for soak and run alike; 0 is the in-memory tail alone.
func fleetHistoryFlag(f *flags) *time.Duration {
	v := f.Duration("fleet-history", time.Hour, 0, 7*24*time.Hour,
		"how far back each fleet host serves a relay's cursor, as a PDS does: kept on disk in the run directory (fleet-history/), a short tail in memory")
	f.Zero("the in-memory tail alone (256 frames or 30 s a host): a relay that reconnects late finds a gap a real PDS would fill")
	out := new(time.Duration)
	f.Check(func() error {
		*out = *v
		if *v == 0 {
			*out = -1
		}
		return nil
	})
	return out
}

func verdictStatus(v verdict.Verdict) int {
	switch v {
	case verdict.Pass:
		return exitOK
	case verdict.Leak:
		return exitLeak
	case verdict.Crashed:
		return exitCrashed
	case report.Lost:
		return exitLost
	case verdict.Retained:
		return exitRetained
	default:
		return exitInconclusive
	}
}

// readRecipe reads the settings of an earlier run (runs/<id>, or its
// run.json) for --repeat.
func readRecipe(path string) (map[string]string, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, rundir.Run)
	}
	info, err := rundir.ReadRunInfo(path)
	if err != nil {
		return nil, err
	}
	if info.Format < 2 || info.Recipe == nil {
		// Format 1 recorded the configuration but not the flags: take what
		// maps onto them.
		return legacyRecipe(info), nil
	}
	return info.Recipe, nil
}

// legacyRecipe maps a format-1 run.json's configuration onto flags.
func legacyRecipe(info rundir.RunInfo) map[string]string {
	out := map[string]string{}
	for key, flag := range map[string]string{"hosts": "hosts", "accounts_per_host": "accounts-per-host", "rate": "rate",
		"duration": "duration", "mem_limit": "mem-limit", "sample_every": "sample-every", "restart": "restart",
		"stop_grace": "stop-grace", "seed": "seed", "verify_every": "verify-every", "cpus": "cpus"} {
		if v, ok := info.Config[key]; ok && v != nil {
			out[flag] = fmt.Sprint(v)
		}
	}
	if info.RelayImage != "" {
		out["relay-image"] = info.RelayImage
	}
	return out
}

// setupReport rebuilds report.md, the plot, verdict.json and junit.xml of a
// run from its samples and its last verdict.json (or the samples alone);
// with --baseline it also compares the run with an earlier one.
func setupReport(f *flags) func([]string) int {
	baseline := f.InFile("baseline", "", true, true, "an earlier run's directory (runs/<old>) to compare this run with")
	attrWarmup := f.Duration("attribution-warmup", 0, time.Minute, 24*time.Hour, "an attribution run: start the fit here, when the relay settled after the plan's warm-up")
	f.Zero("the plan's warm-up")
	f.Positional(1, "RUN_DIR")
	f.PositionalInputs(true)
	return func(args []string) int {
		dir := args[0]
		sum, err := soak.Rebuild(soak.RebuildConfig{Dir: dir, Baseline: *baseline, AttributionWarmup: *attrWarmup})
		if errors.Is(err, soak.ErrNotWritten) {
			return fail("report", exitFailed, "%v", err)
		} else if err != nil {
			return fail("report", exitBadInput, "%v", err)
		}
		fmt.Println(report.Headline(sum))
		if sum.Comparison != nil && *baseline != "" {
			fmt.Println(sum.Comparison.Sentence)
		}
		fmt.Println("report:", filepath.Join(dir, rundir.Report))
		return verdictStatus(report.Outcome(sum))
	}
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// profileByName: a built-in profile, or a generic one from a file.
func profileByName(name string) (relay.Profile, error) {
	switch name {
	case "", "indigo":
		return &relay.Indigo{}, nil
	case "zlay":
		return relay.Zlay(nil), nil
	case "rsky":
		return relay.Rsky(nil), nil
	}
	if strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml") || strings.HasSuffix(name, ".json") {
		return relay.LoadGeneric(name)
	}
	return nil, fmt.Errorf("%q is not a profile: use indigo, zlay, rsky or a generic profile file (.yaml or .json)", name)
}

// soakContext is the context of a command that runs soaks (soak, bisect,
// bisect-step): testcontainers' own logging off, the rig's collector
// setting, and cancelled by Ctrl-C or SIGTERM, which ends a soak with its
// report.
func soakContext() (context.Context, context.CancelFunc) {
	tclog.SetDefault(tclog.NewNoopLogger())
	rigGC()
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// rigGC has the rig collect at half its live heap (GOGC=50) rather than
// all of it: the rig shares the machine with the relay it measures, and
// its live heap (repositories, hosts' histories, connections) is large
// while its garbage per frame is small, so the default doubles its
// resident memory for little CPU saved. A GOGC the user set wins.
func rigGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
}
