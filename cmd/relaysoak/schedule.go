package main

import (
	"time"

	"github.com/relaysoak/relaysoak/replay"
)

// churnFlags declares the rate of each event besides commits, per 1,000
// frames (0 turns that kind off alone) and --no-churn. The result is nil
// when none was given: the run then takes the default mix, or a capture's.
func churnFlags(f *flags) func() *replay.Churn {
	d := replay.DefaultChurn
	identity := f.Float("churn-identity", d.Identity, 0, 1000, "#identity events per 1,000 frames (each purges a relay's cached DID document)")
	rotation := f.Float("churn-key-rotation", d.KeyRotation, 0, 1, "fraction of #identity events that first rotate the signing key")
	newAccount := f.Float("churn-new-account", d.NewAccount, 0, 1000, "accounts created per 1,000 frames (the host's oldest deleted)")
	move := f.Float("churn-move", d.Move, 0, 1000, "account migrations to another host per 1,000 frames")
	status := f.Float("churn-status", d.Status, 0, 1000, "#account deactivations (or reactivations) per 1,000 frames")
	sync := f.Float("churn-sync", d.Sync, 0, 1000, "#sync events per 1,000 frames")
	noChurn := f.Bool("no-churn", false, "commits only: every churn rate 0 (a relay's resolver then goes quiet after warm-up)")
	names := []string{"churn-identity", "churn-key-rotation", "churn-new-account", "churn-move", "churn-status", "churn-sync"}
	f.Check(func() error {
		if *identity+*newAccount+*move+*status+*sync > 1000 {
			return usagef("the churn rates add up to more than 1,000 events per 1,000 frames")
		}
		if *noChurn {
			for _, n := range names {
				if f.find(n).set {
					return usagef("%s and %s contradict each other", f.Where("no-churn"), f.Where(n))
				}
			}
		}
		return nil
	})
	return func() *replay.Churn {
		if *noChurn {
			return replay.NoChurn
		}
		given := false
		for _, n := range names {
			given = given || f.find(n).set
		}
		if !given {
			return nil
		}
		return &replay.Churn{Identity: *identity, KeyRotation: *rotation, NewAccount: *newAccount, Move: *move, Status: *status, Sync: *sync}
	}
}

// schedule is the load's shape over time and hosts (package replay).
type schedule struct {
	Weights replay.Weights
	RampUp  time.Duration
	Burst   replay.Burst
	Outages replay.Outages
}

// scheduleFlags declares host weights, ramp-up, bursts and host outages.
func scheduleFlags(f *flags) func() schedule {
	weights := f.Choice("weights", "zipf", []string{"zipf", "uniform", "capture"}, "host weights: zipf (skewed like the live network), uniform, or the capture's own")
	zipfS := f.Float("zipf-s", replay.DefaultZipfS, 0.01, 10, "Zipf exponent of the host weights")
	rampUp := f.Duration("ramp-up", 0, time.Second, 24*time.Hour, "linear ramp from 0 to --rate at the start")
	f.Zero("none")
	burstFactor := f.Float("burst-factor", 0, 1, 1000, "bursts of this many times the rate")
	f.Zero("none")
	burstLength := f.Duration("burst-length", 30*time.Second, time.Second, 24*time.Hour, "length of each burst")
	burstEvery := f.Duration("burst-every", 10*time.Minute, time.Second, 7*24*time.Hour, "time between bursts")
	outageEvery := f.Duration("outage-every", 0, time.Second, 7*24*time.Hour, "mean time between host outages")
	f.Zero("none")
	outageLength := f.Duration("outage-length", time.Minute, time.Second, 24*time.Hour, "length of each host outage (default shorter than the relay's give-up time)")
	giveUp := f.Duration("relay-give-up", 3*time.Minute, time.Second, 24*time.Hour, "the relay abandons a host after failing this long; longer outages are reported as abandoned hosts")
	f.Check(func() error {
		if *burstFactor > 1 && *burstLength >= *burstEvery {
			return usagef("%s (%s) must be shorter than %s (%s)", f.Where("burst-length"), *burstLength, f.Where("burst-every"), *burstEvery)
		}
		return nil
	})
	return func() schedule {
		return schedule{
			Weights: replay.Weights{Kind: *weights, S: *zipfS},
			RampUp:  *rampUp,
			Burst:   replay.Burst{Factor: *burstFactor, Length: *burstLength, Every: *burstEvery},
			Outages: replay.Outages{Every: *outageEvery, Length: *outageLength, GiveUp: *giveUp},
		}
	}
}
