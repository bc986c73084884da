package soak

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/relaysoak/relaysoak/fakepds"
	"github.com/relaysoak/relaysoak/soak/firehose"
	"github.com/relaysoak/relaysoak/soak/report"
)

// simHost is one host of a synthetic run: its commits written and
// delivered so far, and the relay's subscription to it.
type simHost struct {
	name               string
	written, delivered uint64
	subscribed         bool
	since, downUntil   time.Time
}

// simChange is a change the watcher reported, at s seconds into the run.
type simChange struct {
	s float64
	DarkChange
}

var simStart = time.Date(2026, 7, 4, 12, 0, 0, 0, time.UTC)

func at(s float64) time.Time { return simStart.Add(time.Duration(s * float64(time.Second))) }

// simulate takes a sample every 10 s up to end seconds, step moving the
// hosts on first; it returns every change the watcher reported.
func simulate(t *testing.T, d *DarkHosts, end float64, hosts []*simHost, step func(s float64)) []simChange {
	t.Helper()
	var out []simChange
	for s := 10.0; s <= end; s += 10 {
		step(s)
		ledger := make([]fakepds.HostLedger, len(hosts))
		delivered := map[string]firehose.HostCounts{}
		for i, h := range hosts {
			ledger[i] = fakepds.HostLedger{Host: h.name, Written: [fakepds.NumWriteStates]uint64{fakepds.WhileSubscribed: h.written},
				Subscribed: h.subscribed, Since: h.since, DownUntil: h.downUntil}
			delivered[h.name] = firehose.HostCounts{Commits: h.delivered}
		}
		for _, c := range d.Observe(at(s), ledger, delivered) {
			out = append(out, simChange{s: s, DarkChange: c})
		}
	}
	return out
}

func changesOf(cs []simChange, host string) []simChange {
	var out []simChange
	for _, c := range cs {
		if c.Host == host {
			out = append(out, c)
		}
	}
	return out
}

// A host whose commits stop being delivered is dark from its last
// delivery until deliveries resume; a busy host delivered throughout and
// a quiet one (a commit every five minutes, one of them lost) are not.
func TestDarkHostsFindsAHostNoLongerDelivered(t *testing.T) {
	d := NewDarkHosts(time.Minute, 10*time.Second, simStart, 0)
	stops, busy, quiet := &simHost{name: "stops"}, &simHost{name: "busy"}, &simHost{name: "quiet"}
	hosts := []*simHost{stops, busy, quiet}
	for _, h := range hosts {
		h.subscribed, h.since = true, simStart
	}
	changes := simulate(t, d, 900, hosts, func(s float64) {
		for _, h := range []*simHost{stops, busy} {
			h.written += 5
			if h != stops || s <= 300 || s >= 600 {
				h.delivered += 5 // stops: nothing delivered from 300 s to 600 s
			}
		}
		if int(s)%300 == 0 {
			quiet.written++
		}
		if int(s)%300 == 10 && s != 610 {
			quiet.delivered++ // one sample later; the one written at 600 s is lost
		}
	})
	got := changesOf(changes, "stops")
	require.Len(t, got, 2, "%+v", changes)
	dark, lit := got[0], got[1]
	assert.True(t, dark.Dark)
	assert.Equal(t, report.DarkUndelivered, dark.Reason)
	assert.WithinDuration(t, at(300), dark.Start, 10*time.Second, "dark from its last delivery, ±1 sample")
	assert.InDelta(t, 370, dark.s, 10, "found a threshold after its last delivery, once enough commits are overdue")
	assert.False(t, lit.Dark)
	assert.Equal(t, 600.0, lit.s, "read again when deliveries resume")
	assert.InDelta(t, 300, lit.For.Seconds(), 10)
	assert.Equal(t, uint64(5*30-5), lit.Lost, "written over the span less the one delivery that ended it")
	assert.Empty(t, changesOf(changes, "busy"))
	assert.Empty(t, changesOf(changes, "quiet"), "a quiet host with one lost commit is not dark")
	assert.Equal(t, 0, d.Count())

	hs := d.Hosts(at(900))
	require.Len(t, hs, 1)
	assert.Equal(t, report.DarkHost{Host: "stops", StartS: dark.Start.Sub(simStart).Seconds(), Duration: lit.For, Ended: true,
		Reason: report.DarkUndelivered, CommitsLost: lit.Lost, Spans: 1}, hs[0])
}

// A host the relay holds no subscription to is dark from when it dropped
// it, once that is a threshold ago; one never subscribed counts from the
// end of the ramp-up. A span still open at the end runs to it.
func TestDarkHostsFindsAHostNotSubscribed(t *testing.T) {
	d := NewDarkHosts(time.Minute, 10*time.Second, simStart, 2*time.Minute)
	dropped, never := &simHost{name: "dropped", subscribed: true, since: simStart}, &simHost{name: "never"}
	changes := simulate(t, d, 600, []*simHost{dropped, never}, func(s float64) {
		dropped.written += 2
		never.written += 3
		if dropped.subscribed {
			dropped.delivered += 2
		}
		switch s {
		case 200:
			dropped.subscribed, dropped.since = false, at(195)
		case 500:
			dropped.subscribed, dropped.since = true, at(498)
		}
	})
	got := changesOf(changes, "dropped")
	require.Len(t, got, 2, "%+v", changes)
	assert.True(t, got[0].Dark)
	assert.Equal(t, report.DarkUnsubscribed, got[0].Reason)
	assert.Equal(t, at(195), got[0].Start, "dark from Since")
	assert.Equal(t, 260.0, got[0].s)
	assert.False(t, got[1].Dark)
	assert.Equal(t, 500.0, got[1].s)
	assert.Equal(t, uint64(60), got[1].Lost, "written less delivered since the last sample that saw it subscribed (at 190 s)")

	got = changesOf(changes, "never")
	require.Len(t, got, 1)
	assert.Equal(t, at(120), got[0].Start, "counted from the end of the ramp-up")
	assert.Equal(t, 180.0, got[0].s)
	assert.True(t, d.Dark("never"))
	assert.Equal(t, 1, d.Count())

	hs := d.Hosts(at(600))
	require.Len(t, hs, 2)
	assert.Equal(t, "never", hs[0].Host, "most commits lost first")
	assert.False(t, hs[0].Ended)
	assert.Equal(t, 480*time.Second, hs[0].Duration, "open to the end")
	assert.Equal(t, uint64(180), hs[0].CommitsLost, "all it wrote")
}

// A host in a planted outage, and for the threshold after it, is not dark
// however long the relay holds no subscription; past that grace, a relay
// that has not come back has let it go dark since the outage ended.
func TestDarkHostsGraceAroundAPlantedOutage(t *testing.T) {
	d := NewDarkHosts(time.Minute, 10*time.Second, simStart, 0)
	back := &simHost{name: "back", subscribed: true, since: simStart}
	gone := &simHost{name: "gone", subscribed: true, since: simStart}
	hosts := []*simHost{back, gone}
	changes := simulate(t, d, 900, hosts, func(s float64) {
		for _, h := range hosts {
			h.written += 3
			if h.subscribed {
				h.delivered = h.written // a resubscribed relay catches up at once
			}
			if s == 300 {
				h.subscribed, h.since, h.downUntil = false, at(295), at(400)
			}
		}
		if s == 450 {
			back.subscribed, back.since = true, at(445) // within the grace: 400 s + 60 s
		}
	})
	assert.Empty(t, changesOf(changes, "back"), "%+v", changes)
	got := changesOf(changes, "gone")
	require.Len(t, got, 1, "%+v", changes)
	assert.Equal(t, 460.0, got[0].s, "found when the grace after the outage ends")
	assert.Equal(t, at(400), got[0].Start, "due back when the outage ended")
	assert.Equal(t, report.DarkUnsubscribed, got[0].Reason)
}

// The watcher's state does not grow with the run: the ring holds the
// threshold's samples and a column per host, whatever the number of samples.
func TestDarkHostsStateIsBounded(t *testing.T) {
	d := NewDarkHosts(time.Minute, 10*time.Second, simStart, 0)
	var hosts []*simHost
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		hosts = append(hosts, &simHost{name: n, subscribed: true, since: simStart})
	}
	simulate(t, d, 10*100_000, hosts, func(s float64) {
		for i, h := range hosts {
			h.written += uint64(i)
			if i != 4 || int(s)%3600 < 1800 {
				h.delivered = h.written // e goes dark for half of every hour
			}
		}
	})
	assert.Len(t, d.ring, 8, "a minute of 10 s samples, and two to spare")
	for _, s := range d.ring {
		assert.Len(t, s.written, len(hosts))
	}
	assert.Len(t, d.hosts, len(hosts))
	hs := d.Hosts(at(1_000_000))
	require.Len(t, hs, 1)
	assert.Equal(t, "e", hs[0].Host)
	assert.Equal(t, 278, hs[0].Spans, "one span a dark half hour")
}
