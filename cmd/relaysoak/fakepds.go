package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/relaysoak/relaysoak/fakepds"
)

func init() {
	register(command{name: "fakepds", summary: "run the fake network alone: PDS fleet, PLC directory, upstream face", run: runFakePDS})
}

func runFakePDS(args []string) int {
	fs := flag.NewFlagSet("fakepds", flag.ContinueOnError)
	hosts := fs.Int("hosts", 10, "number of PDS hosts")
	perHost := fs.Int("accounts-per-host", 2, "synthetic accounts per host")
	rate := fs.Float64("rate", 10, "frames per second written in total (0: no writer)")
	listen := fs.String("listen", "127.0.0.1:2480", "address of the fleet's one listener (all faces, routed by Host header)")
	domain := fs.String("domain", "test", "DNS suffix of every fleet name")
	seed := fs.Int64("seed", 1, "seed for keys, DIDs and records")
	stateDir := fs.String("state-dir", "", "keep seqs, repositories and keys here across restarts")
	noChurn := fs.Bool("no-churn", false, "turn identity and account churn off")
	plc := plcFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "relaysoak fakepds:", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	fleet, err := fakepds.New(fakepds.Config{
		Hosts: *hosts, AccountsPerHost: *perHost, Domain: *domain, Seed: *seed, StateDir: *stateDir,
		Churn: fakepds.Churn{Off: *noChurn}, PLC: plc(),
		Logger: log,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "relaysoak fakepds:", err)
		return 1
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "relaysoak fakepds: listen on %s: %v (choose another --listen)\n", *listen, err)
		return 1
	}
	srv := &http.Server{Handler: fleet, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)

	names := fleet.HostNames()
	addr := ln.Addr().String()
	fmt.Printf("fleet of %d hosts listening on %s (route by Host header)\n", len(names), addr)
	fmt.Printf("  PDS hosts: %s … %s\n", names[0], names[len(names)-1])
	fmt.Printf("  PLC:       http://%s/  (Host: %s)\n", addr, fleet.PLCName())
	fmt.Printf("  upstream:  http://%s/xrpc/com.atproto.sync.listHosts  (Host: %s)\n", addr, fleet.UpstreamName())
	fmt.Printf("watch frames: websocat -H 'Host: %s' ws://%s/xrpc/com.atproto.sync.subscribeRepos\n", names[0], addr)
	fmt.Printf("         or: relaysoak capture record --url ws://%s/xrpc/com.atproto.sync.subscribeRepos …\n", addr)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *rate > 0 {
		go fleet.RunWriter(ctx, *rate)
	}
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := fleet.Close(); err != nil {
				fmt.Fprintln(os.Stderr, "relaysoak fakepds:", err)
			}
			srv.Shutdown(shut)
			s := fleet.Stats()
			fmt.Printf("stopped: %d commits, %d identity, %d account, %d sync frames; %d PLC requests\n", s.Commits, s.Identity, s.Account, s.Sync, s.PLCRequests)
			return 0
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

// plcFlags registers the PLC directory's fault settings (latency, errors,
// slow answers, resets, closes, keep-alive) and returns their value.
func plcFlags(fs *flag.FlagSet) func() fakepds.PLCBehaviour {
	latency := fs.Duration("plc-latency", 0, "latency added to each DID document request")
	errRate := fs.Float64("plc-error-rate", 0, "fraction of PLC requests answered 500")
	jitter := fs.Duration("plc-jitter", 0, "median of a lognormal delay added to each PLC request on top of --plc-latency")
	slow := fs.Float64("plc-slow-rate", 0, "fraction of PLC answers trickled out over --plc-slow-for")
	slowFor := fs.Duration("plc-slow-for", 0, "how long a trickled PLC answer takes (default 2s)")
	resets := fs.Float64("plc-reset-rate", 0, "fraction of PLC requests whose connection is reset (RST, no answer)")
	closes := fs.Float64("plc-close-rate", 0, "fraction of PLC requests whose connection is closed with no answer")
	noKeepAlive := fs.Bool("plc-no-keepalive", false, "answer every PLC request with Connection: close")
	return func() fakepds.PLCBehaviour {
		return fakepds.PLCBehaviour{Latency: *latency, ErrorRate: *errRate, Jitter: *jitter, SlowRate: *slow, SlowFor: *slowFor,
			ResetRate: *resets, CloseRate: *closes, NoKeepAlive: *noKeepAlive}
	}
}
