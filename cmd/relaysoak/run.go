package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/relaysoak/relaysoak/fakepds"
	"github.com/relaysoak/relaysoak/relay"
	"github.com/relaysoak/relaysoak/replay"
	"github.com/relaysoak/relaysoak/soak"
	"github.com/relaysoak/relaysoak/soak/firehose"
	"github.com/relaysoak/relaysoak/soak/harness"
	tclog "github.com/testcontainers/testcontainers-go/log"
)

func init() {
	register(command{name: "run", summary: "run the fleet into a relay in a container; print delivery and lag", setup: setupRun})
	register(command{name: "relay-image", summary: "build the default relay image (indigo at the pinned version) unless it exists", setup: setupRelayImage})
}

func setupRun(f *flags) func([]string) int {
	hosts := f.Int("hosts", 50, 1, maxHosts, "number of PDS hosts in the fleet")
	perHost := f.Int("accounts-per-host", 2, 1, 10_000, "synthetic accounts per host")
	rate := f.Float("rate", 50, 0.01, 1e6, "frames per second written by the fleet in total")
	duration := f.Duration("duration", time.Minute, time.Second, 365*24*time.Hour, "how long the writer runs")
	image := f.String("relay-image", "", "relay image (default: indigo at the version pinned in go.mod, built when missing)")
	memLimit := f.Size("mem-limit", 2<<30, 64<<20, maxMemLimit, "memory limit of the relay container (4GiB, 4g, 4096MiB)")
	runDir := f.OutPath("run-dir", "", true, "directory of this run: CA, relay data, relay log (default runs/<time>)")
	verifyEvery := f.Int("verify-every", 10, -1, 1_000_000, "verify every Nth commit the relay emits (1: all, -1: none)")
	f.Zero("every commit, as 1")
	plcScheme := f.Choice("plc-scheme", "https", []string{"https", "http"}, "scheme of the PLC the relay resolves DIDs at (https uses the run's CA)")
	churn := churnFlags(f)
	seed := f.Int64("seed", 1, 1, math.MaxInt64, "seed for keys, DIDs and records")
	lenient := f.Bool("lenient", false, "run indigo with lenient sync validation (default strict)")
	minDelivery := minDeliveryFlag(f)
	darkAfter := darkAfterFlag(f)
	history := fleetHistoryFlag(f)
	return func([]string) int {
		if *runDir == "" {
			*runDir = filepath.Join("runs", time.Now().UTC().Format("20060102T150405Z"))
		}
		ve := *verifyEvery
		if ve == 0 {
			ve = 1
		}
		// testcontainers narrates every container step; the rig says what matters.
		tclog.SetDefault(tclog.NewNoopLogger())
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()

		setup, cancel := context.WithTimeout(ctx, 15*time.Minute) // a cold image build takes minutes
		defer cancel()
		rg, err := harness.Start(setup, harness.Config{
			RunDir:      *runDir,
			Fleet:       fakepds.Config{Hosts: *hosts, AccountsPerHost: *perHost, Seed: *seed, History: *history},
			Relay:       relay.Config{Image: *image, Memory: *memLimit, Profile: &relay.Indigo{Lenient: *lenient}},
			PLCScheme:   *plcScheme,
			VerifyEvery: ve,
			Log:         os.Stderr,
		})
		if rg != nil {
			defer func() {
				if err := rg.Close(context.Background()); err != nil {
					fmt.Fprintln(os.Stderr, "relaysoak run: cleaning up:", err)
				}
			}()
		}
		if err != nil {
			return fail("run", exitNotStarted, "%v", err)
		}
		fmt.Fprintf(os.Stderr, "relaysoak: writing %.0f frames/s for %s (Ctrl-C ends early)\n", *rate, *duration)
		const every = 10 * time.Second
		dark := newDarkWatch(rg, *darkAfter, every)
		progress := time.NewTicker(every)
		defer progress.Stop()
		wctx, wcancel := context.WithCancel(ctx)
		go func() {
			for {
				select {
				case <-wctx.Done():
					return
				case <-progress.C:
					c := rg.Counts()
					fst, fh := c.Fleet, c.Firehose
					fmt.Fprintf(os.Stderr, "relaysoak: emitted %d commits, relay delivered %d, lag p50 %s p99 %s\n",
						fst.Commits, fh.Commits, fh.Lag.P50.Round(time.Millisecond), fh.Lag.P99.Round(time.Millisecond))
					dark.observe(fh.ByHost)
				}
			}
		}()
		lctx, lcancel := rg.UntilExit(wctx)
		_, werr := rg.Load(lctx, replay.Config{Rate: *rate, Duration: *duration, Churn: churn()})
		lcancel()
		wcancel()
		rg.Drain(context.Background(), 10*time.Second, time.Minute)
		dark.observe(rg.Counts().Firehose.ByHost) // before the relay stops and drops every subscription
		rep, ferr := rg.Finish(context.Background())
		printReport(rep, *rate, *duration)
		dark.print()
		switch {
		case rep.Exit != nil && !rep.Exit.Expected:
			return fail("run", exitCrashed, "the relay died: %s", rep.Exit)
		case werr != nil:
			return fail("run", exitFailed, "writer: %v", werr)
		case ferr != nil:
			return fail("run", exitFailed, "finishing: %v", ferr)
		case rep.Delivery < *minDelivery:
			return fail("run", exitLost, "LOST: %.2f%% of the commits written were delivered, under --min-delivery's %.2f%%", 100*rep.Delivery, 100**minDelivery)
		case rep.Firehose.VerifyFailed > 0:
			return fail("run", exitInconclusive, "%d delivered commits failed verification", rep.Firehose.VerifyFailed)
		}
		return exitOK
	}
}

// darkWatch follows the hosts the relay stops reading during a run, and
// says so as it happens.
type darkWatch struct {
	rg    *harness.Harness
	after time.Duration
	mu    sync.Mutex
	hosts *soak.DarkHosts
}

func newDarkWatch(rg *harness.Harness, after, every time.Duration) *darkWatch {
	return &darkWatch{rg: rg, after: after, hosts: soak.NewDarkHosts(after, every, time.Now(), 0)}
}

// observe takes a sample of every host's reading, with the commits
// delivered by host of origin.
func (w *darkWatch) observe(byHost map[string]firehose.HostCounts) {
	ledger := w.rg.Ledger()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range w.hosts.Observe(time.Now(), ledger, byHost) {
		if c.Dark {
			fmt.Fprintf(os.Stderr, "relaysoak: %s went dark at %s (%s)\n", c.Host, c.Start.Format(time.TimeOnly), c.Reason)
		} else {
			fmt.Fprintf(os.Stderr, "relaysoak: %s read again after %s dark, %d commits lost\n", c.Host, c.For.Round(time.Second), c.Lost)
		}
	}
}

// print lists the hosts that went dark, most commits lost first.
func (w *darkWatch) print() {
	w.mu.Lock()
	defer w.mu.Unlock()
	hosts := w.hosts.Hosts(time.Now())
	if len(hosts) == 0 {
		fmt.Printf("dark hosts (not read for %s or more): none\n", w.after)
		return
	}
	fmt.Printf("dark hosts (not read for %s or more): %d\n", w.after, len(hosts))
	const show = 10
	for _, h := range hosts[:min(len(hosts), show)] {
		still := ""
		if !h.Ended {
			still = ", still at the end"
		}
		fmt.Printf("  %s: %s, %s dark in %d span(s)%s, %d commits lost\n", h.Host, h.Reason, h.Duration.Round(time.Second), h.Spans, still, h.CommitsLost)
	}
	if len(hosts) > show {
		fmt.Printf("  and %d more\n", len(hosts)-show)
	}
}

func printReport(rep harness.Report, rate float64, d time.Duration) {
	fs, fh := rep.Fleet, rep.Firehose
	fmt.Printf("run: %.0f frames/s for %s into %d fleet accounts\n", rate, d, fs.Accounts)
	fmt.Printf("delivery: %.4f  (%d commits out of the relay / %d emitted by the fleet)\n", rep.Delivery, fh.Commits, fs.Commits)
	if rep.RelayMetricsErr == "" {
		fmt.Printf("relay received: %.0f commits (its own counter, all hosts)\n", rep.RelayReceived)
	} else {
		fmt.Printf("relay received: unknown (%s)\n", rep.RelayMetricsErr)
	}
	l := fh.Lag
	fmt.Printf("lag (fleet emission -> relay emission): p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (n=%d, negative %d)\n",
		l.P50.Round(time.Millisecond), l.P90.Round(time.Millisecond), l.P99.Round(time.Millisecond),
		l.P999.Round(time.Millisecond), l.Max.Round(time.Millisecond), l.Count, l.Negative)
	fmt.Printf("emitted by kind:   commit %d  identity %d  account %d  sync %d\n", fs.Commits, fs.Identity, fs.Account, fs.Sync)
	fmt.Printf("relayed by kind:   commit %d  identity %d  account %d  sync %d  info %d  error %d  (decode errors %d, seq gaps %d, reconnects %d)\n",
		fh.Commits, fh.Identity, fh.Account, fh.Sync, fh.Info, fh.ErrorFrames, fh.DecodeErrors, fh.SeqGaps, max(0, fh.Connects-1))
	fmt.Printf("verified: %d ok, %d failed, %d skipped (sampled)\n", fh.Verified, fh.VerifyFailed, fh.VerifySkipped)
	for _, f := range fh.Failures {
		fmt.Printf("  failed: %s\n", f)
	}
	// The hosts that delivered least, at most 5: where to look first.
	type hc struct {
		host string
		n    uint64
	}
	var hs []hc
	for h, c := range fh.ByHost {
		hs = append(hs, hc{h, c.Commits})
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i].n < hs[j].n || hs[i].n == hs[j].n && hs[i].host < hs[j].host })
	if len(hs) > 0 {
		fmt.Printf("origin hosts seen: %d; fewest commits:", len(hs))
		for _, h := range hs[:min(5, len(hs))] {
			fmt.Printf(" %s=%d", h.host, h.n)
		}
		fmt.Println()
	}
	keys := make([]string, 0, len(rep.LogCounts))
	for k := range rep.LogCounts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Println("relay log:")
	for _, k := range keys {
		fmt.Printf("  %6d × %q\n", rep.LogCounts[k], k)
	}
	fmt.Printf("  complete log: %s\n", rep.LogPath)
	if rep.Exit != nil && rep.Exit.Expected {
		fmt.Printf("relay: stopped by the rig, exit code %d\n", rep.Exit.Code)
	} else {
		fmt.Printf("relay: %s\n", rep.Exit)
	}
}

func setupRelayImage(f *flags) func([]string) int {
	rebuild := f.Bool("rebuild", false, "build even when the tag exists")
	buildDir := f.OutPath("build-dir", "", true, "keep the static binary here (default: a temporary directory)")
	return func([]string) int {
		tclog.SetDefault(tclog.NewNoopLogger())
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		tag, built, err := relay.EnsureIndigoImage(ctx, relay.ImageConfig{Log: os.Stderr, Rebuild: *rebuild, BuildDir: *buildDir})
		if err != nil {
			return fail("relay-image", exitNotStarted, "%v", err)
		}
		if built {
			fmt.Fprintln(os.Stderr, "built", tag)
		} else {
			fmt.Fprintln(os.Stderr, "already present:", tag)
		}
		fmt.Println(tag)
		return exitOK
	}
}
