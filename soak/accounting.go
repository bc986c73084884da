package soak

import (
	"math"
	"time"

	"github.com/relaysoak/relaysoak/fakepds"
	"github.com/relaysoak/relaysoak/soak/firehose"
	"github.com/relaysoak/relaysoak/soak/report"
	"github.com/relaysoak/relaysoak/soak/rundir"
)

// commitCounts are what the accounting splits: the fleet's ledger for the
// relay summed over hosts, by the state each commit was written in, and
// the measuring consumer's commits delivered and sequence gaps, with the
// commits in flight at the end.
type commitCounts struct {
	written, sent, trimmed [fakepds.NumWriteStates]uint64
	delivered, gaps        uint64
	inFlight               uint64
}

// countCommits sums the ledger over hosts, and the consumer's deliveries
// over the same hosts (by host of origin: commits it saw from a host the
// fleet does not have were not written by it).
func countCommits(ledger []fakepds.HostLedger, byHost map[string]firehose.HostCounts, gaps uint64, inFlight float64) commitCounts {
	c := commitCounts{gaps: gaps, inFlight: uint64(math.Round(max(inFlight, 0)))}
	for _, l := range ledger {
		for s := range fakepds.NumWriteStates {
			c.written[s] += l.Written[s]
			c.sent[s] += l.Sent[s]
			c.trimmed[s] += l.Trimmed[s]
		}
		c.delivered += byHost[l.Host].Commits
	}
	return c
}

// account puts every commit written in exactly one bucket. What reached
// the relay is taken by delivered, then the consumer's gaps, then those in
// flight (each as far as what is left allows); the rest the relay lost.
// What the consumer counted beyond what reached the relay is the excess
// (commits it saw twice, gaps that were not commits): the relay's loss is
// then 0, never negative.
func account(c commitCounts) report.Accounting {
	var a report.Accounting
	for s := range fakepds.NumWriteStates {
		a.Written += c.written[s]
		a.Sent += c.sent[s]
		a.Trimmed += c.trimmed[s]
	}
	all := fakepds.HostLedger{Written: c.written, Sent: c.sent, Trimmed: c.trimmed}
	a.NeverSentSubscribed, a.NeverSentDown, a.NeverSentAway = all.NeverSent(fakepds.WhileSubscribed), all.NeverSent(fakepds.WhileDown), all.NeverSent(fakepds.WhileAway)
	left := a.Sent
	take := func(n uint64) uint64 {
		n = min(n, left)
		left -= n
		return n
	}
	a.Delivered = take(c.delivered)
	a.MissedByConsumer = take(c.gaps)
	a.Excess = c.delivered + c.gaps - a.Delivered - a.MissedByConsumer
	a.InFlight = take(c.inFlight)
	a.LostInRelay = left
	return a
}

// hostRows are hosts.csv's rows: each host's account for the relay, its
// commits delivered, and whether it is dark at the last sample.
func hostRows(ledger []fakepds.HostLedger, byHost map[string]firehose.HostCounts, dark func(host string) bool) []rundir.HostRow {
	rows := make([]rundir.HostRow, 0, len(ledger))
	for _, l := range ledger {
		rows = append(rows, rundir.HostRow{Host: l.Host, Written: sum(l.Written), Sent: sum(l.Sent),
			Delivered: byHost[l.Host].Commits, Trimmed: sum(l.Trimmed),
			NeverSentSubscribed: l.NeverSent(fakepds.WhileSubscribed), NeverSentDown: l.NeverSent(fakepds.WhileDown), NeverSentAway: l.NeverSent(fakepds.WhileAway),
			Subscribed: l.Subscribed, Dark: dark(l.Host)})
	}
	return rows
}

// awaitingRedial is the commits never sent on hosts in a planted outage at
// at, or within grace after one: the relay is not expected to have come
// back for them yet. A host found dark is no such host: the relay had its
// chance.
func awaitingRedial(ledger []fakepds.HostLedger, at time.Time, grace time.Duration, dark func(host string) bool) uint64 {
	var n uint64
	for _, l := range ledger {
		if l.DownUntil.IsZero() || at.After(l.DownUntil.Add(grace)) || dark(l.Host) {
			continue
		}
		n += l.NeverSent(fakepds.WhileDown) + l.NeverSent(fakepds.WhileAway)
	}
	return n
}
