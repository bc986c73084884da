package soak

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/relaysoak/relaysoak/fakepds"
	"github.com/relaysoak/relaysoak/soak/firehose"
	"github.com/relaysoak/relaysoak/soak/report"
)

// DefaultDarkAfter is how long the relay must have stopped reading a host
// for the host to be dark.
const DefaultDarkAfter = time.Minute

// minOverdue is how many of a subscribed host's commits must be overdue
// (written a threshold ago or more, none of the host's delivered since)
// for it to be dark: a quiet host with one lost commit is not.
const minOverdue = 3

// DarkHosts finds, sample by sample, the hosts the relay stopped reading
// for the threshold or longer, outside a planted outage and a grace as
// long as the threshold after it:
//
//   - undelivered: the relay has held a subscription to the host for the
//     threshold, none of the host's commits was delivered for as long,
//     and at least minOverdue commits it wrote a threshold ago or more are
//     still undelivered; dark from its last delivery (or from when its
//     commits began to go undelivered), until its deliveries resume;
//   - unsubscribed: the relay has held no subscription to the host for the
//     threshold; dark from when it dropped the last, or from the end of an
//     outage it was away through (a host never subscribed: from the end of
//     the ramp-up), until it subscribes again.
//
// Its state does not grow with the run: a few counts and times per host,
// and a ring of each host's commits written at the samples of the last
// threshold. Not safe for concurrent use.
type DarkHosts struct {
	after   time.Duration
	started time.Time
	from    time.Time // a host never subscribed is counted from here
	hosts   map[string]*hostWatch
	ring    []writtenAt
	next    int
	filled  int
	cols    int // columns of the ring: the hosts seen so far
}

// writtenAt is every host's commits written by t, by the host's column.
type writtenAt struct {
	t       time.Time
	written []uint64
}

// hostWatch is one host's state.
type hostWatch struct {
	col                  int
	written, delivered   uint64 // at the last sample
	rose                 bool   // its delivered count ever rose
	riseAt               time.Time
	riseWritten, riseDel uint64    // the host's counts when its delivered count last rose (or when first seen)
	overdueSince         time.Time // the first sample after riseAt with a commit undelivered; zero: none
	subWritten, subDel   uint64    // its counts at the last sample that saw the relay subscribed
	span                 *darkSpan // open; nil while the host is read
	sum                  *report.DarkHost
}

// darkSpan is one stretch of a host's darkness, with the host's counts at
// its start.
type darkSpan struct {
	start, letGo       time.Time // letGo: when the relay dropped its subscription (unsubscribed only)
	reason             string
	written, delivered uint64
}

// DarkChange is a host found dark (Dark) or read again.
type DarkChange struct {
	Host   string
	Dark   bool
	Start  time.Time
	Reason string // report.DarkUnsubscribed or report.DarkUndelivered
	// For and Lost, when read again: how long it was dark, and the commits
	// it wrote less those delivered over that time.
	For  time.Duration
	Lost uint64
}

// NewDarkHosts watches a run started at started whose ramp-up lasts
// rampUp, sampled about every every, with threshold after.
func NewDarkHosts(after, every time.Duration, started time.Time, rampUp time.Duration) *DarkHosts {
	n := 2
	if every > 0 {
		n = int(after/every) + 2
	}
	return &DarkHosts{after: after, started: started, from: started.Add(max(rampUp, 0)),
		hosts: map[string]*hostWatch{}, ring: make([]writtenAt, max(n, 2))}
}

// Observe takes a sample at now: every host's account for the relay and
// the commits delivered by host of origin. It returns the hosts found dark
// and those read again since the last sample.
func (d *DarkHosts) Observe(now time.Time, ledger []fakepds.HostLedger, delivered map[string]firehose.HostCounts) []DarkChange {
	slot := &d.ring[d.next]
	slot.t = now
	slot.written = slot.written[:0]
	for _, l := range ledger {
		w := d.hosts[l.Host]
		written, del := sum(l.Written), delivered[l.Host].Commits
		if w == nil {
			w = &hostWatch{col: d.cols, written: written, delivered: del, riseAt: now, riseWritten: written, riseDel: del}
			d.cols++
			d.hosts[l.Host] = w
		}
		switch {
		case del > w.delivered:
			w.rose, w.riseAt, w.riseWritten, w.riseDel, w.overdueSince = true, now, written, del, time.Time{}
		case written > w.riseWritten && w.overdueSince.IsZero():
			w.overdueSince = now
		}
		w.written, w.delivered = written, del
		if l.Subscribed {
			w.subWritten, w.subDel = written, del
		}
		for len(slot.written) <= w.col {
			slot.written = append(slot.written, 0)
		}
		slot.written[w.col] = written
	}
	d.next = (d.next + 1) % len(d.ring)
	d.filled = min(d.filled+1, len(d.ring))

	var out []DarkChange
	for _, l := range ledger {
		w := d.hosts[l.Host]
		if c, ok := d.judge(now, l, w); ok {
			out = append(out, c)
		}
	}
	return out
}

// judge opens or closes the host's dark span at now.
func (d *DarkHosts) judge(now time.Time, l fakepds.HostLedger, w *hostWatch) (DarkChange, bool) {
	if sp := w.span; sp != nil {
		back := l.Subscribed
		if sp.reason == report.DarkUndelivered {
			back = w.delivered > sp.delivered
		}
		if !back {
			return DarkChange{}, false
		}
		lost := overdue(w, sp)
		w.sum.Duration += now.Sub(sp.start)
		w.sum.CommitsLost += lost
		w.sum.Ended = true
		w.span = nil
		return DarkChange{Host: l.Host, For: now.Sub(sp.start), Lost: lost}, true
	}
	if !l.DownUntil.IsZero() && now.Before(l.DownUntil.Add(d.after)) {
		return DarkChange{}, false // in a planted outage, or just after it
	}
	var sp *darkSpan
	switch {
	case l.Subscribed:
		old, ok := d.writtenBy(now.Add(-d.after), w.col)
		if now.Sub(l.Since) < d.after || now.Sub(w.riseAt) < d.after || !ok || old < w.riseWritten+minOverdue {
			return DarkChange{}, false
		}
		start := w.riseAt
		if !w.rose && !w.overdueSince.IsZero() {
			start = w.overdueSince
		}
		sp = &darkSpan{start: start, reason: report.DarkUndelivered, written: w.riseWritten, delivered: w.riseDel}
	default:
		since := l.Since
		if since.IsZero() {
			since = d.from
		}
		letGo := since
		if l.DownUntil.After(since) {
			since = l.DownUntil // away through an outage: due back when it ended
		}
		if now.Sub(since) < d.after {
			return DarkChange{}, false
		}
		sp = &darkSpan{start: since, letGo: letGo, reason: report.DarkUnsubscribed, written: w.subWritten, delivered: w.subDel}
	}
	w.span = sp
	if w.sum == nil {
		w.sum = &report.DarkHost{Host: l.Host, StartS: sp.start.Sub(d.started).Seconds(), Reason: sp.reason}
		if !sp.letGo.IsZero() && sp.letGo.Before(sp.start) {
			w.sum.LetGoS = sp.letGo.Sub(d.started).Seconds()
		}
	}
	w.sum.Spans++
	return DarkChange{Host: l.Host, Dark: true, Start: sp.start, Reason: sp.reason}, true
}

// writtenBy is the host's commits written by t: its count at the latest
// kept sample at or before t; ok is false when the ring does not reach
// back that far or the host was not seen yet.
func (d *DarkHosts) writtenBy(t time.Time, col int) (uint64, bool) {
	for k := 1; k <= d.filled; k++ {
		s := d.ring[(d.next-k+len(d.ring))%len(d.ring)]
		if !s.t.After(t) {
			if col >= len(s.written) {
				return 0, false
			}
			return s.written[col], true
		}
	}
	return 0, false
}

// overdue is what the host wrote less what was delivered of it since the
// span's start.
func overdue(w *hostWatch, sp *darkSpan) uint64 {
	written, del := w.written-min(sp.written, w.written), w.delivered-min(sp.delivered, w.delivered)
	return written - min(del, written)
}

// Count is how many hosts are dark at the last sample.
func (d *DarkHosts) Count() int {
	n := 0
	for _, w := range d.hosts {
		if w.span != nil {
			n++
		}
	}
	return n
}

// Dark says whether host is dark at the last sample.
func (d *DarkHosts) Dark(host string) bool {
	w := d.hosts[host]
	return w != nil && w.span != nil
}

// Hosts are every host that went dark, as at now (a span still open runs
// to now), most commits lost first.
func (d *DarkHosts) Hosts(now time.Time) []report.DarkHost {
	var out []report.DarkHost
	for _, w := range d.hosts {
		if w.sum == nil {
			continue
		}
		h := *w.sum
		if sp := w.span; sp != nil {
			h.Duration += now.Sub(sp.start)
			h.CommitsLost += overdue(w, sp)
			h.Ended = false
		}
		out = append(out, h)
	}
	slices.SortFunc(out, func(a, b report.DarkHost) int {
		if c := cmp.Compare(b.CommitsLost, a.CommitsLost); c != 0 {
			return c
		}
		return strings.Compare(a.Host, b.Host)
	})
	return out
}

func sum(v [fakepds.NumWriteStates]uint64) uint64 {
	var n uint64
	for _, x := range v {
		n += x
	}
	return n
}
