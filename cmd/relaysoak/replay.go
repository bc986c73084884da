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
	"path/filepath"
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
	rampUp := f.Duration("ramp-up", 0, 0, 24*time.Hour, "linear ramp from 0 to --rate at the start")
	duration := f.Duration("duration", 0, time.Second, 365*24*time.Hour, "stop after this long")
	f.Zero("re-hosted runs until Ctrl-C, verbatim to the capture's end")
	speed := f.Float("speed", 0, 1e-3, 1e6, "verbatim: replay with the capture's own timing, this many times as fast")
	f.Zero("at --rate")
	weights := f.Choice("weights", "zipf", []string{"zipf", "uniform", "capture"}, "host weights")
	zipfS := f.Float("zipf-s", replay.DefaultZipfS, 0, 10, "Zipf exponent of the host weights")
	burstFactor := f.Float("burst-factor", 0, 1, 1000, "bursts of this many times the rate")
	f.Zero("none")
	burstLength := f.Duration("burst-length", 30*time.Second, time.Second, 24*time.Hour, "length of each burst")
	burstEvery := f.Duration("burst-every", 10*time.Minute, time.Second, 7*24*time.Hour, "time between bursts")
	outageEvery := f.Duration("outage-every", 0, time.Second, 7*24*time.Hour, "mean time between host outages")
	f.Zero("none")
	outageLength := f.Duration("outage-length", time.Minute, time.Second, 24*time.Hour, "length of each host outage")
	giveUp := f.Duration("relay-give-up", 3*time.Minute, time.Second, 24*time.Hour, "the relay abandons a host after failing this long; longer outages are reported as abandoned hosts")
	window := f.Duration("window", time.Minute, time.Second, 24*time.Hour, "reporting window")
	listen := f.Addr("listen", "127.0.0.1:2480", false, "address of the fleet's one listener (all faces, routed by Host header)")
	domain := f.String("domain", "test", "DNS suffix of every fleet name")
	seed := f.Int64("seed", 1, 1, math.MaxInt64, "seed for keys, DIDs, records and host picks")
	noChurn := f.Bool("no-churn", false, "re-hosted: turn identity and account churn off")
	f.Check(func() error { return checkDomain(f, *domain) })
	f.Check(func() error {
		if *capPath == "" && (*mode == string(replay.Verbatim) || *weights == "capture") {
			return usagef("%s %s and %s %s need %s", f.Where("mode"), *mode, f.Where("weights"), *weights, f.Where("capture"))
		}
		if *burstFactor > 1 && *burstLength >= *burstEvery {
			return usagef("%s (%s) must be shorter than %s (%s)", f.Where("burst-length"), *burstLength, f.Where("burst-every"), *burstEvery)
		}
		return nil
	})
	return func([]string) int {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()

		path, cleanup, err := captureFile(ctx, *capPath)
		if err != nil {
			return fail("replay", exitBadInput, "%v", err)
		}
		defer cleanup()

		fc := fakepds.Config{Hosts: *hosts, AccountsPerHost: *perHost, Domain: *domain, Seed: *seed,
			Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
		if *mode == string(replay.Verbatim) {
			fc.AccountsPerHost, fc.Churn = 1, fakepds.Churn{Off: true} // the capture's accounts do the writing
		} else if path != "" {
			p, err := replay.ProfileFromCapture(path, replay.ShapeConfig{})
			if err != nil {
				return fail("replay", exitBadInput, "%v", err)
			}
			fc.Shape, fc.Churn = &p.Shape, p.Churn
			fmt.Printf("shape from %s (%d frames, %d commits): %s\n", path, p.Frames, p.Commits, strings.Join(p.FromCapture, ", "))
			if len(p.Defaulted) > 0 {
				fmt.Printf("  defaults (capture too small): %s\n", strings.Join(p.Defaulted, ", "))
			}
		}
		if *noChurn {
			fc.Churn = fakepds.Churn{Off: true}
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

		r, err := replay.New(fleet, replay.Config{
			Mode: replay.Mode(*mode), Capture: path, Rate: *rate, RampUp: *rampUp, Duration: *duration, Speed: *speed,
			Weights: replay.Weights{Kind: *weights, S: *zipfS},
			Burst:   replay.Burst{Factor: *burstFactor, Length: *burstLength, Every: *burstEvery},
			Outages: replay.Outages{Every: *outageEvery, Length: *outageLength, GiveUp: *giveUp},
			Window:  *window, Seed: *seed,
			OnWindow: func(w replay.Window) {
				fmt.Printf("%s window %d [%s–%s]: %d frames, %.1f/s (target %.1f/s, %+.2f%%), lateness p50 %s p99 %s\n",
					time.Now().Format(time.TimeOnly), w.Index, w.Start.Round(time.Second), w.End.Round(time.Second), w.Frames, w.Rate,
					w.Target/(w.End-w.Start).Seconds(), pct(float64(w.Frames), w.Target), w.Lateness.P50.Round(time.Microsecond), w.Lateness.P99.Round(time.Microsecond))
			},
		})
		if err != nil {
			return fail("replay", exitUsage, "%v", err)
		}
		fmt.Printf("replaying (%s) at %.0f frames/s over %d hosts, %s weights; Ctrl-C ends it\n", *mode, *rate, len(names), *weights)
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

// captureFile returns a capture to read: the file given, or a raw dump
// directory imported into a temporary capture.
func captureFile(ctx context.Context, p string) (string, func(), error) {
	none := func() {}
	if p == "" {
		return "", none, nil
	}
	st, err := os.Stat(p)
	if err != nil {
		return "", none, fmt.Errorf("capture: %w", err)
	}
	if !st.IsDir() {
		return p, none, nil
	}
	find := func(base string) string {
		for _, n := range []string{base + ".zst", base} {
			if _, err := os.Stat(filepath.Join(p, n)); err == nil {
				return filepath.Join(p, n)
			}
		}
		return ""
	}
	frames := find("frames.bin")
	if frames == "" {
		return "", none, fmt.Errorf("capture: directory %s holds no frames.bin or frames.bin.zst", p)
	}
	tmp, err := os.MkdirTemp("", "relaysoak-replay-")
	if err != nil {
		return "", none, err
	}
	out := filepath.Join(tmp, "capture.rsoak")
	m, err := captures.Import(ctx, captures.ImportConfig{Frames: frames, DIDDocs: find("did_docs.json"), Out: out})
	if err != nil {
		os.RemoveAll(tmp)
		return "", none, err
	}
	fmt.Printf("imported %s: %d frames, %d DID documents\n", p, m.Frames, m.DIDDocs)
	return out, func() { os.RemoveAll(tmp) }, nil
}
