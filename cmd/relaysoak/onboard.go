package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/signal"
	"syscall"

	"github.com/relaysoak/relaysoak/fakepds"
	"github.com/relaysoak/relaysoak/relay"
)

func init() {
	register(command{name: "onboard-indigo", summary: "make an indigo relay's database with the fleet's hosts, before the relay's first start (docker-compose)", setup: setupOnboardIndigo})
}

// setupOnboardIndigo is the docker-compose route to onboarding: the one-shot
// service runs it on the relay's volume before the relay starts, where the
// rig would stop and restart the relay instead.
func setupOnboardIndigo(f *flags) func([]string) int {
	db := f.OutPath("db", "/data/relay.sqlite", false, "the relay's sqlite database (its DATABASE_URL without sqlite://)")
	hosts := f.Int("hosts", 50, 1, maxHosts, "number of fleet hosts to add as trusted ws:// rows (pds0001 …)")
	domain := f.String("domain", "test", "DNS suffix of the fleet's host names")
	limit := f.Int64("account-limit", 1_000_000, 1, math.MaxInt64, "account limit of each host row")
	f.Check(func() error { return checkDomain(f, *domain) })
	return func([]string) int {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		hs := make([]relay.Host, *hosts)
		for i := range hs {
			hs[i] = relay.Host{Name: fakepds.HostName(i, *domain)}
		}
		if err := (&relay.Indigo{AccountLimit: *limit}).PrepareDatabase(ctx, *db, hs); err != nil {
			return fail("onboard-indigo", exitFailed, "%v", err)
		}
		fmt.Printf("relaysoak onboard-indigo: %d hosts (%s … %s) in %s\n", len(hs), hs[0].Name, hs[len(hs)-1].Name, *db)
		return exitOK
	}
}
