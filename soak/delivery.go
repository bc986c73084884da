package soak

import (
	"cmp"
	"slices"
	"strings"

	"github.com/relaysoak/relaysoak/soak/firehose"
	"github.com/relaysoak/relaysoak/soak/report"
)

// maxTrack bounds the samples deliveryTrack keeps: at 10 s a sample, over
// an hour of lag, past which every commit is late anyway.
const maxTrack = 512

// deliveryTrack gives each sample its own delivery ratio: the commits
// delivered since the previous sample over the commits written in the same
// span one lag earlier, so that commits younger than the lag count as in
// flight, not lost. It keeps a bounded ring of the recent samples' commit
// counts, so it does not grow with the run.
type deliveryTrack struct {
	t, written []float64 // the ring: elapsed seconds and commits written by then
	next       int
	full       bool

	primed        bool
	lastDueBy     float64 // commits due by the last sample: written one lag before it
	lastDelivered float64
	lastT         float64
	lastDue       float64 // commits due in the last interval
}

// add records a sample at t (seconds) with the run's commits written and
// delivered so far and the lag now (seconds); ok is false for the first
// sample and for a span in which nothing was due.
func (d *deliveryTrack) add(t, written, delivered, lag float64) (ratio float64, ok bool) {
	if d.t == nil {
		d.t, d.written = make([]float64, maxTrack), make([]float64, maxTrack)
	}
	d.t[d.next], d.written[d.next] = t, written
	d.next = (d.next + 1) % maxTrack
	d.full = d.full || d.next == 0
	due := d.writtenBy(t - lag)
	if !d.primed || t <= d.lastT {
		d.primed, d.lastDueBy, d.lastDelivered, d.lastT = true, due, delivered, t
		return 0, false
	}
	dw, dd := due-d.lastDueBy, delivered-d.lastDelivered
	d.lastDueBy, d.lastDelivered, d.lastT, d.lastDue = max(due, d.lastDueBy), delivered, t, max(dw, 0)
	if dw <= 0 {
		return 0, false
	}
	return dd / dw, true
}

// commitsAt is the run's commits at t seconds: written, due (written one
// lag earlier) and delivered.
type commitsAt struct{ t, written, due, delivered float64 }

// latest is the run's commits at the last sample added.
func (d *deliveryTrack) latest() commitsAt {
	newest := (d.next - 1 + maxTrack) % maxTrack
	return commitsAt{t: d.lastT, written: d.written[newest], due: d.lastDueBy, delivered: d.lastDelivered}
}

// writtenBy is the commits written by x, interpolated between the kept
// samples (and the run's start, at 0 with none written); the oldest kept
// count before the ring's start.
func (d *deliveryTrack) writtenBy(x float64) float64 {
	n := d.next
	if d.full {
		n = maxTrack
	}
	oldest := 0
	if d.full {
		oldest = d.next
	}
	at := func(k int) int { return (oldest + k) % maxTrack }
	if x <= d.t[at(0)] {
		if d.full || d.t[at(0)] <= 0 {
			return d.written[at(0)]
		}
		// Before the first sample: the run started at 0 with nothing written.
		return d.written[at(0)] * max(x, 0) / d.t[at(0)]
	}
	for k := n - 1; k >= 0; k-- {
		i := at(k)
		if d.t[i] <= x {
			if k == n-1 {
				return d.written[i]
			}
			j := at(k + 1)
			f := (x - d.t[i]) / (d.t[j] - d.t[i])
			return d.written[i] + f*(d.written[j]-d.written[i])
		}
	}
	return 0
}

// maxHostsShort is how many hosts the report names as short.
const maxHostsShort = 10

// hostsShort are the hosts whose commits arrived fewer than they wrote,
// most missing first. Written counts by the host that sequenced each
// commit; delivered by the account's host when the commit arrived, so an
// account that moved shifts a few commits between two hosts.
func hostsShort(written map[string]uint64, delivered map[string]firehose.HostCounts) []report.HostLoss {
	var out []report.HostLoss
	for h, w := range written {
		if d := delivered[h].Commits; d < w {
			out = append(out, report.HostLoss{Host: h, Written: w, Delivered: d})
		}
	}
	slices.SortFunc(out, func(a, b report.HostLoss) int {
		if c := cmp.Compare(b.Missing(), a.Missing()); c != 0 {
			return c
		}
		return strings.Compare(a.Host, b.Host)
	})
	return out[:min(len(out), maxHostsShort)]
}
