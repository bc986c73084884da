package soak

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/relaysoak/relaysoak/fakepds"
	"github.com/relaysoak/relaysoak/soak/firehose"
	"github.com/relaysoak/relaysoak/soak/report"
	"github.com/relaysoak/relaysoak/soak/rundir"
)

type states = [fakepds.NumWriteStates]uint64

// Every commit written lands in exactly one bucket, whatever the
// consumer's counts: they add up to the commits written.
func TestAccountPutsEveryCommitInOneBucket(t *testing.T) {
	for _, c := range []struct {
		name string
		in   commitCounts
		want report.Accounting
	}{
		{name: "nothing written"},
		{
			name: "all delivered",
			in:   commitCounts{written: states{100}, sent: states{100}, delivered: 100},
			want: report.Accounting{Written: 100, Sent: 100, Delivered: 100},
		},
		{
			name: "every bucket",
			in: commitCounts{written: states{800, 120, 80}, sent: states{780, 60, 20}, trimmed: states{0, 10, 30},
				delivered: 820, gaps: 5, inFlight: 10},
			want: report.Accounting{Written: 1000, Sent: 860, Delivered: 820, MissedByConsumer: 5, InFlight: 10, LostInRelay: 25,
				NeverSentSubscribed: 20, NeverSentDown: 50, NeverSentAway: 30, Trimmed: 40},
		},
		{
			name: "in flight capped by what is left",
			in:   commitCounts{written: states{100}, sent: states{100}, delivered: 95, gaps: 2, inFlight: 10},
			want: report.Accounting{Written: 100, Sent: 100, Delivered: 95, MissedByConsumer: 2, InFlight: 3},
		},
		{
			name: "the consumer saw more than was sent: clamped, the excess named",
			in:   commitCounts{written: states{100, 0, 20}, sent: states{100}, delivered: 103, gaps: 4, inFlight: 6},
			want: report.Accounting{Written: 120, Sent: 100, Delivered: 100, Excess: 7, NeverSentAway: 20},
		},
		{
			name: "gaps past what is left",
			in:   commitCounts{written: states{100}, sent: states{100}, delivered: 98, gaps: 5},
			want: report.Accounting{Written: 100, Sent: 100, Delivered: 98, MissedByConsumer: 2, Excess: 3},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := account(c.in)
			assert.Equal(t, c.want, got)
			assert.Equal(t, got.Written, got.Sum(), "the buckets add up to the commits written")
		})
	}
}

// The ledger's counts are summed over hosts, and the consumer's deliveries
// over the fleet's hosts only.
func TestCountCommitsSumsTheLedger(t *testing.T) {
	ledger := []fakepds.HostLedger{
		{Host: "a", Written: states{10, 2, 3}, Sent: states{9, 1, 0}, Trimmed: states{0, 1, 1}},
		{Host: "b", Written: states{5}, Sent: states{5}},
	}
	byHost := map[string]firehose.HostCounts{"a": {Commits: 8}, "b": {Commits: 5}, firehose.UnknownHost: {Commits: 4}}
	c := countCommits(ledger, byHost, 1, 2.6)
	assert.Equal(t, commitCounts{written: states{15, 2, 3}, sent: states{14, 1, 0}, trimmed: states{0, 1, 1}, delivered: 13, gaps: 1, inFlight: 3}, c)
	a := account(c)
	assert.Equal(t, uint64(20), a.Sum())
	assert.Equal(t, uint64(1), a.NeverSentSubscribed)
	assert.Equal(t, uint64(2), a.NeverSentAway)
}

// hosts.csv holds a row per host of the ledger, readable by its reader,
// with the hosts dark at the time marked.
func TestHostsFileFromTheLedger(t *testing.T) {
	dir := t.TempDir()
	s := &sampler{dir: dir, dark: NewDarkHosts(time.Minute, 10*time.Second, simStart, 0)}
	ledger := []fakepds.HostLedger{
		{Host: "pds0001.test", Written: states{100, 20, 30}, Sent: states{95, 15, 10}, Trimmed: states{0, 1, 5}, Subscribed: true, Since: simStart},
		{Host: "pds0002.test", Written: states{0, 0, 40}},
	}
	byHost := map[string]firehose.HostCounts{"pds0001.test": {Commits: 117}}
	s.dark.Observe(at(70), ledger, byHost) // pds0002 was never subscribed: dark a minute in
	require.NoError(t, s.writeHosts(ledger, byHost))
	rows, err := rundir.ReadHosts(filepath.Join(dir, rundir.HostsCSV))
	require.NoError(t, err)
	assert.Equal(t, []rundir.HostRow{
		{Host: "pds0001.test", Written: 150, Sent: 120, Delivered: 117, Trimmed: 6, NeverSentSubscribed: 5, NeverSentDown: 4, NeverSentAway: 15, Subscribed: true},
		{Host: "pds0002.test", Written: 40, NeverSentAway: 40, Dark: true},
	}, rows)
}

// Commits never sent on a host in a planted outage, or its grace, are not
// due yet; on a host found dark, or past the grace, they are.
func TestAwaitingRedialExcusesOnlyHostsStillDue(t *testing.T) {
	now := time.Now()
	l := func(host string, downUntil time.Time) fakepds.HostLedger {
		return fakepds.HostLedger{Host: host, DownUntil: downUntil,
			Written: [fakepds.NumWriteStates]uint64{10, 5, 7}, Sent: [fakepds.NumWriteStates]uint64{10, 1, 2}}
	}
	ledger := []fakepds.HostLedger{
		l("down", now.Add(10*time.Second)),
		l("grace", now.Add(-30*time.Second)),
		l("past", now.Add(-2*time.Minute)),
		l("dark", now.Add(-10*time.Second)),
		l("never", time.Time{}),
	}
	dark := func(h string) bool { return h == "dark" }
	assert.EqualValues(t, 2*(4+5), awaitingRedial(ledger, now, time.Minute, dark))
}
