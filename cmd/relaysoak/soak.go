package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/relaysoak/relaysoak/fakepds"
	"github.com/relaysoak/relaysoak/relay"
	"github.com/relaysoak/relaysoak/soak"
	"github.com/relaysoak/relaysoak/soak/report"
	"github.com/relaysoak/relaysoak/soak/rig"
	"github.com/relaysoak/relaysoak/soak/trend"
	tclog "github.com/testcontainers/testcontainers-go/log"
)

// exitNotStarted: the soak could not start (no Docker, no image, a port in
// use); the other statuses are analyze's.
const exitNotStarted = 6

func init() {
	register(command{name: "soak", summary: "soak a relay: load for a duration, memory sampled, a verdict and a report", run: runSoak})
	register(command{name: "report", summary: "rebuild a run's report, plot and verdict from its files", run: runReport})
}

func runSoak(args []string) int {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	hosts := fs.Int("hosts", 50, "PDS hosts in the fleet (production shape: 2750)")
	perHost := fs.Int("accounts-per-host", 2, "synthetic accounts per host")
	rate := fs.Float64("rate", 50, "frames per second in total (production shape: 700)")
	duration := fs.Duration("duration", 30*time.Minute, "how long the load runs (the verdict wants 20 minutes after warm-up)")
	memLimit := fs.String("mem-limit", "2GiB", "the relay container's memory limit (bytes, or with KiB/MiB/GiB)")
	image := fs.String("relay-image", "", "relay image (default: indigo at the version pinned in go.mod, built here when missing)")
	profile := fs.String("relay-profile", "indigo", "relay profile: indigo, zlay, rsky, or a generic profile file (.yaml/.json)")
	capture := fs.String("capture", "", "capture whose shape the load follows (default: the built-in synthetic mix)")
	sampleEvery := fs.Duration("sample-every", 10*time.Second, "memory sampling interval")
	stopGrace := fs.Duration("stop-grace", 0, "how long the relay may take to stop (default: the profile's)")
	restart := fs.Bool("restart", false, "start the relay again when it dies, counting restarts, instead of ending with CRASHED")
	metricsListen := fs.String("metrics-listen", "", "serve the rig's own Prometheus metrics here, e.g. 127.0.0.1:9470")
	runsDir := fs.String("runs-dir", "runs", "directory holding one directory per run")
	id := fs.String("id", "", "run ID (default: the start time)")
	noChurn := fs.Bool("no-churn", false, "turn identity churn off (the relay's resolver then goes quiet after warm-up)")
	plc := plcFlags(fs)
	verifyEvery := fs.Int("verify-every", 100, "verify every Nth commit the relay emits (1: all)")
	targetURL := fs.String("target-url", "", "soak a relay the rig does not start: its subscribeRepos URL (ws://host:port/xrpc/com.atproto.sync.subscribeRepos)")
	targetMetrics := fs.String("target-metrics", "", "with --target-url: its Prometheus endpoint (http://host:port/metrics)")
	targetMemory := fs.String("target-memory-metrics", "process_resident_memory_bytes,go_memstats_heap_inuse_bytes", "with --target-url: the gauges that carry its memory")
	fleetListen := fs.String("fleet-listen", "", "with --target-url: where the fleet serves ws/http for the relay to dial (e.g. 10.0.0.5:80)")
	fleetTLSListen := fs.String("fleet-tls-listen", "", "with --target-url: where the fleet serves https/wss (PLC over TLS), e.g. 10.0.0.5:443")
	fleetDNSListen := fs.String("fleet-dns-listen", "", "with --target-url: serve DNS (udp) here, answering every fleet name with --fleet-listen's IP (for docker-compose's dns: setting)")
	compare := fs.String("compare", "", "A/B soak: this relay image is B, --relay-image is A (\"indigo\": indigo built here); both fed the same frames by one fleet")
	compareProfile := fs.String("compare-profile", "", "B's relay profile (default: --relay-profile's)")
	compareMemLimit := fs.String("compare-mem-limit", "", "B's container memory limit (default: --mem-limit)")
	cpus := fs.Float64("cpus", 0, "CPU limit of each relay container, in cores (default: unlimited); in an A/B soak it keeps one build from starving the other")
	caDir := fs.String("ca-dir", "", "with --target-url: keep the CA the relay trusts here, reused across runs (default: the run directory)")
	if err := parseFlags(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "relaysoak soak:", err)
		return exitUsage
	}
	limit, err := parseBytes(*memLimit)
	if err != nil {
		fmt.Fprintf(os.Stderr, "relaysoak soak: --mem-limit (MEM_LIMIT): %v\n", err)
		return exitUsage
	}
	prof, err := profileByName(*profile)
	if err != nil {
		fmt.Fprintf(os.Stderr, "relaysoak soak: --relay-profile (RELAY_PROFILE): %v\n", err)
		return exitUsage
	}
	if prof.Name() != "indigo" && *image == "" && *targetURL == "" {
		fmt.Fprintf(os.Stderr, "relaysoak soak: the %s profile needs --relay-image (RELAY_IMAGE): only indigo's relay is built here\n", prof.Name())
		return exitUsage
	}
	if *capture != "" {
		if _, err := os.Stat(*capture); err != nil {
			fmt.Fprintf(os.Stderr, "relaysoak soak: --capture (CAPTURE): %v\n", err)
			return exitUsage
		}
		fmt.Fprintln(os.Stderr, "relaysoak soak: note: --capture is recorded in run.json; the load uses the synthetic mix until the replay engine drives soaks")
	}
	var cmp *soak.Compare
	if *compare != "" {
		if *targetURL != "" {
			fmt.Fprintln(os.Stderr, "relaysoak soak: --compare starts both relays itself; it cannot be used with --target-url")
			return exitUsage
		}
		cmp = &soak.Compare{RelayImage: *compare}
		if *compare == "indigo" {
			cmp.RelayImage = ""
		}
		if *compareProfile != "" {
			if cmp.Profile, err = profileByName(*compareProfile); err != nil {
				fmt.Fprintf(os.Stderr, "relaysoak soak: --compare-profile (COMPARE_PROFILE): %v\n", err)
				return exitUsage
			}
		}
		if *compareMemLimit != "" {
			if cmp.MemLimit, err = parseBytes(*compareMemLimit); err != nil {
				fmt.Fprintf(os.Stderr, "relaysoak soak: --compare-mem-limit (COMPARE_MEM_LIMIT): %v\n", err)
				return exitUsage
			}
		}
	}
	if *cpus < 0 {
		fmt.Fprintf(os.Stderr, "relaysoak soak: --cpus (CPUS) must be positive, not %g\n", *cpus)
		return exitUsage
	}
	var external *rig.External
	if *targetURL != "" {
		if *targetMetrics == "" {
			fmt.Fprintln(os.Stderr, "relaysoak soak: --target-url needs --target-metrics: the relay's memory is read from its metrics")
			return exitUsage
		}
		external = &rig.External{Firehose: *targetURL, Metrics: *targetMetrics, Memory: strings.Split(*targetMemory, ",")}
	}
	tclog.SetDefault(tclog.NewNoopLogger())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	term := isTerminal(os.Stdout) && os.Getenv("CI") == ""
	out, err := soak.Run(ctx, soak.Config{
		RunsDir: *runsDir, ID: *id, Hosts: *hosts, AccountsPerHost: *perHost, Rate: *rate, Duration: *duration,
		Churn: fakepds.Churn{Off: *noChurn}, RelayImage: *image, Profile: prof, MemLimit: limit, StopGrace: *stopGrace, Restart: *restart,
		SampleEvery: *sampleEvery, VerifyEvery: *verifyEvery, MetricsListen: *metricsListen, Out: os.Stdout, Terminal: term,
		Compare: cmp, CPUs: *cpus,
		PLC: plc(), External: external, FleetAddr: *fleetListen, FleetTLSAddr: *fleetTLSListen, CADir: *caDir, FleetDNSAddr: *fleetDNSListen,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "relaysoak soak:", err)
		if errors.Is(err, soak.ErrNotStarted) {
			fmt.Fprintln(os.Stderr, "relaysoak soak: is Docker running (docker info)? files so far are in", out.Dir)
			return exitNotStarted
		}
		return exitBadInput
	}
	if out.AB != nil {
		return verdictStatus(out.AB.Verdict)
	}
	return verdictStatus(out.Summary.Judged.Verdict)
}

func verdictStatus(v trend.Verdict) int {
	switch v {
	case trend.Pass:
		return exitPass
	case trend.Leak:
		return exitLeak
	case trend.Crashed:
		return exitCrashed
	default:
		return exitInconclusive
	}
}

// runReport rebuilds report.md, the plot, verdict.json and junit.xml of a
// run from its samples and its last verdict.json (or the samples alone);
// with --baseline it also compares the run with an earlier one.
func runReport(args []string) int {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	baseline := fs.String("baseline", "", "an earlier run's directory (runs/<old>) to compare this run with")
	if err := parseFlags(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return exitUsage
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: relaysoak report [--baseline runs/<old>] runs/<id>")
		return exitUsage
	}
	dir := fs.Arg(0)
	sum, err := loadRun(dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "relaysoak report: %v\n", err)
		return exitBadInput
	}
	if *baseline != "" {
		base, err := loadRun(*baseline)
		if err != nil {
			fmt.Fprintf(os.Stderr, "relaysoak report: --baseline: %v\n", err)
			return exitBadInput
		}
		c := report.Compare(base, sum)
		sum.Comparison = &c
	}
	if err := report.Write(dir, sum); err != nil {
		fmt.Fprintf(os.Stderr, "relaysoak report: %v\n", err)
		return exitBadInput
	}
	fmt.Println(report.Headline(sum))
	if sum.Comparison != nil && *baseline != "" {
		fmt.Println(sum.Comparison.Sentence)
	}
	fmt.Println("report:", filepath.Join(dir, report.ReportFile))
	return verdictStatus(sum.Judged.Verdict)
}

// loadRun reads a run's last verdict.json (or starts from nothing when the
// run ended before writing it) and judges its samples afresh.
func loadRun(dir string) (report.Summary, error) {
	var sum report.Summary
	path := filepath.Join(dir, report.VerdictFile)
	if b, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(b, &sum); err != nil {
			return sum, fmt.Errorf("%s: %w", path, err)
		}
	} else {
		sum.RunID = filepath.Base(filepath.Clean(dir))
		sum.Notes = append(sum.Notes, "rebuilt from samples alone: the run ended before it wrote verdict.json")
	}
	judged, err := soak.JudgeRunDir(dir, trend.Config{})
	if err != nil {
		return sum, err
	}
	sum.Judged = judged
	return sum, nil
}

// parseBytes reads 2GiB, 512MiB, 64KiB or a plain byte count.
func parseBytes(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a size (try 2GiB or 512MiB)", s)
	}
	return int64(n * float64(mult)), nil
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
