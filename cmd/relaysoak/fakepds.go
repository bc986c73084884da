package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/relaysoak/relaysoak/fakepds"
	"github.com/relaysoak/relaysoak/internal/metricsserver"
	"github.com/relaysoak/relaysoak/replay"
)

func init() {
	register(command{name: "fakepds", summary: "run the fake network alone: PDS fleet, PLC directory, upstream face", setup: setupFakePDS})
}

// maxHosts bounds --hosts: far past production (2,750) and what one
// machine's open-files limit holds.
const maxHosts = 200_000

func setupFakePDS(f *flags) func([]string) int {
	hosts := f.Int("hosts", 10, 1, maxHosts, "number of PDS hosts")
	perHost := f.Int("accounts-per-host", 2, 1, 10_000, "synthetic accounts per host")
	rate := f.Float("rate", 10, 0.01, 1e6, "frames per second written in total")
	f.Zero("no writer: the fleet only serves")
	listen := f.Addr("listen", "127.0.0.1:2480", false, "address of the fleet's one listener (all faces, routed by Host header)")
	metricsListen := f.Addr("metrics-listen", "", true, "serve the fleet's Prometheus metrics and Go profiler here, e.g. 127.0.0.1:9471")
	domain := f.String("domain", "test", "DNS suffix of every fleet name")
	seed := f.Int64("seed", 1, 1, math.MaxInt64, "seed for keys, DIDs and records")
	stateDir := f.OutPath("state-dir", "", true, "keep seqs, repositories and keys here across restarts")
	churn := churnFlags(f)
	plc := plcFlags(f)
	f.Check(func() error { return checkDomain(f, *domain) })
	return func([]string) int {
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
		fleet, err := fakepds.New(fakepds.Config{
			Hosts: *hosts, AccountsPerHost: *perHost, Domain: *domain, Seed: *seed, StateDir: *stateDir,
			PLC:    plc(),
			Logger: log,
		})
		if err != nil {
			return fail("fakepds", exitNotStarted, "%v", err)
		}
		ln, err := net.Listen("tcp", *listen)
		if err != nil {
			return fail("fakepds", exitNotStarted, "listen on %s: %v (choose another --listen)", *listen, err)
		}
		srv := &http.Server{Handler: fleet, ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		var metricsAt string
		if *metricsListen != "" {
			msrv, addr, err := metricsserver.Serve(*metricsListen, fakepds.NewMetricsRegistry(fleet.Stats))
			if err != nil {
				return fail("fakepds", exitNotStarted, "%v (choose another --metrics-listen)", err)
			}
			defer msrv.Close()
			metricsAt = addr
		}

		names := fleet.HostNames()
		addr := ln.Addr().String()
		fmt.Printf("fleet of %d hosts listening on %s (route by Host header)\n", len(names), addr)
		fmt.Printf("  PDS hosts: %s … %s\n", names[0], names[len(names)-1])
		fmt.Printf("  PLC:       http://%s/  (Host: %s)\n", addr, fleet.PLCName())
		fmt.Printf("  upstream:  http://%s/xrpc/com.atproto.sync.listHosts  (Host: %s)\n", addr, fleet.UpstreamName())
		if metricsAt != "" {
			fmt.Printf("  metrics:   http://%s/metrics  (pprof: http://%s/debug/pprof/)\n", metricsAt, metricsAt)
		}
		fmt.Printf("watch frames: websocat -H 'Host: %s' ws://%s/xrpc/com.atproto.sync.subscribeRepos\n", names[0], addr)
		fmt.Printf("         or: relaysoak capture record --url ws://%s/xrpc/com.atproto.sync.subscribeRepos …\n", addr)

		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if *rate > 0 {
			// What is written when is replay's choice: synthetic traffic,
			// Zipf-weighted hosts, the churn mix.
			r, err := replay.New(fleet, replay.Config{Rate: *rate, Churn: churn(), Seed: *seed})
			if err != nil {
				return fail("fakepds", exitUsage, "%v", err)
			}
			go r.Run(ctx)
		}
		tick := time.NewTicker(time.Minute)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				code := exitOK
				if err := fleet.Close(); err != nil {
					code = fail("fakepds", exitFailed, "saving the fleet: %v", err)
				}
				srv.Shutdown(shut)
				s := fleet.Stats()
				fmt.Printf("stopped: %d commits, %d identity, %d account, %d sync frames; %d PLC requests\n", s.Commits, s.Identity, s.Account, s.Sync, s.PLCRequests)
				return code
			case <-tick.C:
				s := fleet.Stats()
				fmt.Printf("%s commits=%d identity=%d account=%d sync=%d connections=%d plc_requests=%d\n",
					time.Now().Format(time.TimeOnly), s.Commits, s.Identity, s.Account, s.Sync, s.Connections, s.PLCRequests)
				if *stateDir != "" {
					if err := fleet.Checkpoint(); err != nil {
						fmt.Fprintln(os.Stderr, "relaysoak fakepds:", err)
					}
				}
			}
		}
	}
}

// checkDomain: the fleet's names are pds0001.<domain>, so the suffix must
// be a DNS name.
func checkDomain(f *flags, domain string) error {
	if domain == "" || len(domain) > 200 || net.ParseIP(domain) != nil {
		return usagef("%s: %q is not a DNS suffix (e.g. test)", f.Where("domain"), domain)
	}
	for _, r := range domain {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return usagef("%s: %q is not a DNS suffix (e.g. test)", f.Where("domain"), domain)
		}
	}
	return nil
}

// plcFlags declares the PLC directory's fault settings (latency, errors,
// slow answers, resets, closes, keep-alive) and returns their value.
func plcFlags(f *flags) func() fakepds.PLCBehaviour {
	latency := f.Duration("plc-latency", 0, 0, time.Minute, "latency added to each DID document request")
	errRate := f.Float("plc-error-rate", 0, 0, 1, "fraction of PLC requests answered 500")
	jitter := f.Duration("plc-jitter", 0, 0, time.Minute, "median of a lognormal delay added to each PLC request on top of --plc-latency")
	slow := f.Float("plc-slow-rate", 0, 0, 1, "fraction of PLC answers trickled out over --plc-slow-for")
	slowFor := f.Duration("plc-slow-for", 0, 10*time.Millisecond, 10*time.Minute, "how long a trickled PLC answer takes")
	f.Zero("2s")
	resets := f.Float("plc-reset-rate", 0, 0, 1, "fraction of PLC requests whose connection is reset (RST, no answer)")
	closes := f.Float("plc-close-rate", 0, 0, 1, "fraction of PLC requests whose connection is closed with no answer")
	noKeepAlive := f.Bool("plc-no-keepalive", false, "answer every PLC request with Connection: close")
	f.Check(func() error {
		if *resets+*closes > 1 {
			return usagef("%s and %s add up to more than 1", f.Where("plc-reset-rate"), f.Where("plc-close-rate"))
		}
		return nil
	})
	return func() fakepds.PLCBehaviour {
		return fakepds.PLCBehaviour{Latency: *latency, ErrorRate: *errRate, Jitter: *jitter, SlowRate: *slow, SlowFor: *slowFor,
			ResetRate: *resets, CloseRate: *closes, NoKeepAlive: *noKeepAlive}
	}
}
