package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/relaysoak/relaysoak/captures"
	"github.com/relaysoak/relaysoak/fakepds"
	"github.com/relaysoak/relaysoak/replay"
)

func init() {
	register(command{name: "replay", summary: "serve the fleet and replay a capture into it: verbatim, or re-hosted for as long as you like", setup: setupReplay})
}

func setupReplay(f *flags) func([]string) int {
	capPath := f.InFile("capture", "", true, true, "capture file, or a directory holding a raw dump (frames.bin[.zst], did_docs.json[.zst]) to import first")
	mode := f.Choice("mode", "rehosted", []string{string(replay.Rehosted), string(replay.Verbatim)}, "verbatim (the capture's frames, once) or rehosted (fresh signed commits shaped like the capture)")
	rate := f.Float("rate", 700, 0.01, 1e6, "frames per second in total across all hosts")
	hosts := f.Int("hosts", 2750, 1, maxHosts, "number of PDS hosts in the fleet")
	perHost := f.Int("accounts-per-host", 2, 1, 10_000, "synthetic accounts per host (re-hosted mode)")
	duration := f.Duration("duration", 0, time.Second, 365*24*time.Hour, "stop after this long")
	f.Zero("re-hosted runs until Ctrl-C, verbatim to the capture's end")
	speed := f.Float("speed", 0, 1e-3, 1e6, "verbatim: replay with the capture's own timing, this many times as fast")
	f.Zero("at --rate")
	sched := scheduleFlags(f)
	window := f.Duration("window", time.Minute, time.Second, 24*time.Hour, "reporting window")
	listen := f.Addr("listen", "127.0.0.1:2480", false, "address of the fleet's one listener (all faces, routed by Host header)")
	domain := f.String("domain", "test", "DNS suffix of every fleet name")
	seed := f.Int64("seed", 1, 1, math.MaxInt64, "seed for keys, DIDs, records and host picks")
	churn := churnFlags(f)
	f.Check(func() error { return checkDomain(f, *domain) })
	f.Check(func() error {
		if *capPath == "" && (*mode == string(replay.Verbatim) || sched().Weights.Kind == "capture") {
			return usagef("%s %s and %s %s need %s", f.Where("mode"), *mode, f.Where("weights"), sched().Weights.Kind, f.Where("capture"))
		}
		return nil
	})
	return func([]string) int {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()

		path, cleanup := "", func() {}
		var err error
		if *capPath != "" {
			path, cleanup, err = captures.Resolve(ctx, *capPath, func(f string, a ...any) { fmt.Printf(f+"\n", a...) })
		}
		if err != nil {
			return fail("replay", exitBadInput, "%v", err)
		}
		defer cleanup()

		fc := fakepds.Config{Hosts: *hosts, AccountsPerHost: *perHost, Domain: *domain, Seed: *seed,
			Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
		ch := churn()
		if *mode == string(replay.Verbatim) {
			fc.AccountsPerHost = 1 // the capture's accounts do the writing
		} else if path != "" {
			p, err := replay.ProfileFromCapture(path, replay.ShapeConfig{})
			if err != nil {
				return fail("replay", exitBadInput, "%v", err)
			}
			fc.Shape = &p.Shape
			if ch == nil {
				ch = &p.Churn
			}
			fmt.Printf("shape from %s (%d frames, %d commits): %s\n", path, p.Frames, p.Commits, strings.Join(p.FromCapture, ", "))
			if len(p.Defaulted) > 0 {
				fmt.Printf("  defaults (capture too small): %s\n", strings.Join(p.Defaulted, ", "))
			}
		}
		fleet, err := fakepds.New(fc)
		if err != nil {
			return fail("replay", exitNotStarted, "%v", err)
		}
		defer fleet.Close()
		ln, err := net.Listen("tcp", *listen)
		if err != nil {
			return fail("replay", exitNotStarted, "listen on %s: %v (choose another --listen)", *listen, err)
		}
		srv := &http.Server{Handler: fleet, ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
		names := fleet.HostNames()
		fmt.Printf("fleet of %d hosts (%s … %s) listening on %s; PLC %s\n", len(names), names[0], names[len(names)-1], ln.Addr(), fleet.PLCName())

		sc := sched()
		r, err := replay.New(fleet, replay.Config{
			Mode: replay.Mode(*mode), Capture: path, Rate: *rate, RampUp: sc.RampUp, Duration: *duration, Speed: *speed,
			Weights: sc.Weights, Burst: sc.Burst, Outages: sc.Outages, Churn: ch,
			Window: *window, Seed: *seed,
			OnWindow: func(w replay.Window) {
				fmt.Printf("%s window %d [%s–%s]: %d frames, %.1f/s (target %.1f/s, %+.2f%%), lateness p50 %s p99 %s\n",
					time.Now().Format(time.TimeOnly), w.Index, w.Start.Round(time.Second), w.End.Round(time.Second), w.Frames, w.Rate,
					w.Target/(w.End-w.Start).Seconds(), pct(float64(w.Frames), w.Target), w.Lateness.P50.Round(time.Microsecond), w.Lateness.P99.Round(time.Microsecond))
			},
		})
		if err != nil {
			return fail("replay", exitUsage, "%v", err)
		}
		fmt.Printf("replaying (%s) at %.0f frames/s over %d hosts, %s weights; Ctrl-C ends it\n", *mode, *rate, len(names), sc.Weights.Kind)
		rep, err := r.Run(ctx)
		printReplaySummary(rep, fleet.Stats())
		if err != nil {
			if errors.Is(err, captures.ErrCorrupt) || errors.Is(err, captures.ErrTruncated) {
				return fail("replay", exitBadInput, "%v", err)
			}
			return fail("replay", exitFailed, "%v", err)
		}
		return exitOK
	}
}

func pct(got, want float64) float64 {
	if want == 0 {
		return 0
	}
	return (got/want - 1) * 100
}

func printReplaySummary(rep replay.Report, s fakepds.Stats) {
	fmt.Printf("\nsummary: %s, %d frames in %s (%.1f/s; target %.0f/s)\n", rep.Mode, rep.Frames, rep.Elapsed.Round(time.Millisecond),
		float64(rep.Frames)/max(rep.Elapsed.Seconds(), 1e-9), rep.Rate)
	fmt.Printf("  lateness: p50 %s  p90 %s  p99 %s  max %s\n", rep.Lateness.P50, rep.Lateness.P90, rep.Lateness.P99, rep.Lateness.Max)
	if len(rep.Windows) > 0 {
		lo, hi := rep.Windows[0].Rate, rep.Windows[0].Rate
		for _, w := range rep.Windows {
			lo, hi = min(lo, w.Rate), max(hi, w.Rate)
		}
		fmt.Printf("  achieved rate per window: %d windows, min %.1f/s, max %.1f/s\n", len(rep.Windows), lo, hi)
	}
	fmt.Printf("  fleet: %d commits, %d identity, %d account, %d sync; %d subscribers now, %d cut for being slow\n",
		s.Commits, s.Identity, s.Account, s.Sync, s.Connections, s.SlowConsumersCut)
	if rep.Mode == replay.Verbatim {
		fmt.Printf("  verbatim: kinds %v; %d identities hosted, %d with a made-up document (%d frames, %d commits that cannot verify); %d frames skipped (no seq); capture ended: %v\n",
			rep.ByKind, rep.Imported, rep.MadeUp, rep.MadeUpFrames, rep.MadeUpCommits, rep.Skipped, rep.CaptureEnded)
	}
	if rep.Outages > 0 {
		fmt.Printf("  outages: %d; hosts the relay abandoned: %d %v\n", rep.Outages, len(rep.Abandoned), rep.Abandoned)
	}
	if rep.Errors > 0 {
		fmt.Printf("  errors: %d; first: %s\n", rep.Errors, strings.Join(rep.FirstErrors, "; "))
	}
}
