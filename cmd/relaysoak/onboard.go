package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/relaysoak/relaysoak/fakepds"
	"github.com/relaysoak/relaysoak/relay"
)

func init() {
	register(command{name: "onboard-indigo", summary: "make an indigo relay's database with the fleet's hosts, before the relay's first start (docker-compose)", run: runOnboardIndigo})
}

// runOnboardIndigo is the docker-compose route to onboarding: the one-shot
// service runs it on the relay's volume before the relay starts, where the
// rig would stop and restart the relay instead.
func runOnboardIndigo(args []string) int {
	fs := flag.NewFlagSet("onboard-indigo", flag.ContinueOnError)
	db := fs.String("db", "/data/relay.sqlite", "the relay's sqlite database (its DATABASE_URL without sqlite://)")
	hosts := fs.Int("hosts", 50, "number of fleet hosts to add as trusted ws:// rows (pds0001 …)")
	domain := fs.String("domain", "test", "DNS suffix of the fleet's host names")
	limit := fs.Int64("account-limit", 1_000_000, "account limit of each host row")
	if err := parseFlags(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "relaysoak onboard-indigo:", err)
		return exitUsage
	}
	if *hosts < 1 {
		fmt.Fprintf(os.Stderr, "relaysoak onboard-indigo: --hosts (HOSTS) must be at least 1, not %d\n", *hosts)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hs := make([]relay.Host, *hosts)
	for i := range hs {
		hs[i] = relay.Host{Name: fakepds.HostName(i, *domain)}
	}
	if err := (&relay.Indigo{AccountLimit: *limit}).PrepareDatabase(ctx, *db, hs); err != nil {
		fmt.Fprintln(os.Stderr, "relaysoak onboard-indigo:", err)
		return 1
	}
	fmt.Printf("relaysoak onboard-indigo: %d hosts (%s … %s) in %s\n", len(hs), hs[0].Name, hs[len(hs)-1].Name, *db)
	return 0
}
