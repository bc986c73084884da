package soak

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/relaysoak/relaysoak/soak/attribute"
	"github.com/relaysoak/relaysoak/soak/report"
	"github.com/relaysoak/relaysoak/soak/rundir"
	"github.com/relaysoak/relaysoak/soak/verdict"
)

// stuckFactor is the count memory is regressed on to price a stuck client:
// the consumers stuck so far (they never come back, so it only grows).
const stuckFactor attribute.Factor = "stuck_clients"

// stuckLead is how much of the run before the first stuck client the fit
// takes, at least: memory's level without any.
const stuckLead = 2 * 60.0

// stuckClients prices the crowd's stuck clients: memory regressed on how
// many are stuck, and time, from the judged window's start or stuckLead
// before the first got stuck, whichever is earlier. A stuck client holds
// what it holds for as long as it stays: a step per client, not a slope,
// which is why it is fitted against their number. The live heap is fitted
// when the samples hold it (floors, when it has teeth), else the verdict's
// signal. nil when no consumer got stuck.
func stuckClients(dir string, n uint64, released uint64, judged verdict.Report) (*report.StuckClients, error) {
	if n == 0 {
		return nil, nil
	}
	carried := judged.CarriedBy
	if carried == "" {
		carried = rundir.SignalRssAnon
	}
	path := filepath.Join(dir, rundir.Samples)
	cols := map[attribute.Factor]string{stuckFactor: rundir.CrowdStuck}
	signal := rundir.SignalLiveHeap
	obs, err := observationsOf(path, signal, cols)
	if err != nil || len(obs.T) == 0 {
		signal = carried
		obs, err = observationsOf(path, carried, cols)
	}
	if err != nil {
		return nil, fmt.Errorf("stuck clients: %w", err)
	}
	sc := &report.StuckClients{Stuck: n, Released: released, Signal: signal}
	counts := obs.Counts[stuckFactor]
	from := judged.WindowStartS
	for i, c := range counts {
		if c > 0 {
			from = min(from, obs.T[i]-stuckLead)
			break
		}
	}
	fc := attribute.FitConfig{WarmupEndS: max(from, 0), Floors: signal == rundir.SignalLiveHeap, MinPoints: 20}
	res, lag, err := fitLagged(obs, fc)
	if err != nil {
		return nil, fmt.Errorf("stuck clients: %w", err)
	}
	sc.LagS = lag
	term, _ := res.Term(stuckFactor)
	switch {
	case term.Dropped != "":
		sc.Reason = "the number of stuck clients cannot be told apart in the samples: " + term.Dropped
	case term.Lo == 0 && term.Hi == 0:
		sc.Reason = res.Reason // too few samples to fit
	default:
		sc.BytesPerClient, sc.Lo, sc.Hi = term.BytesPerUnit, term.Lo, term.Hi
		sc.FitFromS = res.WindowStartS
	}
	return sc, nil
}

// stuckWarning starts the verdict's warning about stuck clients.
const stuckWarning = "memory follows the stuck clients: "

// consumerFindings adds to the Consumers section what is found from the
// samples and the attribution: the stuck clients' price (with a warning by
// the verdict when they hold memory) and the cost per new identity. A
// rebuilt report finds them afresh.
func consumerFindings(dir string, sum *report.Summary) {
	cl := sum.Findings.Consumers
	if cl == nil {
		return
	}
	sum.Warnings = slices.DeleteFunc(sum.Warnings, func(w string) bool { return strings.HasPrefix(w, stuckWarning) })
	stuck, err := stuckClients(dir, cl.Counts.Stuck, cl.Counts.StuckReleased, sum.Judged)
	if err != nil {
		sum.Notes = append(sum.Notes, err.Error())
	}
	if cl.Stuck = stuck; stuck != nil && stuck.Found() {
		sum.Warnings = append(sum.Warnings, stuckWarning+stuck.Sentence()+
			". It is held per hung client for as long as it stays connected, a bound per client rather than growth with time; a slope judged while clients got stuck is theirs (CONSUMER_STUCK=0 judges the rest)")
	}
	cl.PerIdentity = nil
	if a := sum.Findings.Attribution; a != nil {
		if t, ok := a.Result.Term(attribute.NewIdentities); ok {
			cl.PerIdentity = &t
		}
	}
}

// maxStuckLag bounds how long after a client gets stuck its memory may
// show: the relay's queue for it fills behind the socket buffers first
// (indigo's 16,384 events take 23 s at 700 frames/s).
const maxStuckLag = 3 * 60.0

// fitLagged fits memory against the number stuck as it was lag seconds
// earlier, for each lag from 0 to maxStuckLag (at most 60 of them, a
// sample interval apart or more), and keeps the fit that leaves the least
// residual: a stuck client's memory shows once its queue is full, not
// when it stops reading, and the fit at the wrong lag prices it low.
func fitLagged(obs attribute.Observations, fc attribute.FitConfig) (attribute.Result, float64, error) {
	counts := obs.Counts[stuckFactor]
	n := len(obs.T)
	if n < 2 {
		res, err := attribute.Fit(obs, fc)
		return res, 0, err
	}
	first := -1.0
	for i, c := range counts {
		if c > 0 {
			first = obs.T[i]
			break
		}
	}
	span := min(maxStuckLag, (obs.T[n-1]-first)/2)
	step := max((obs.T[n-1]-obs.T[0])/float64(n-1), span/60)
	var best attribute.Result
	bestLag, found := 0.0, false
	for lag := 0.0; lag <= span || !found; lag += step {
		shifted := make([]float64, n)
		j := 0
		for i, t := range obs.T {
			for j+1 < n && obs.T[j+1] <= t-lag {
				j++
			}
			if obs.T[j] <= t-lag {
				shifted[i] = counts[j]
			}
		}
		o := attribute.Observations{T: slices.Clone(obs.T), Memory: slices.Clone(obs.Memory),
			Counts: map[attribute.Factor][]float64{stuckFactor: shifted}}
		res, err := attribute.Fit(o, fc)
		if err != nil {
			return res, 0, err
		}
		term, _ := res.Term(stuckFactor)
		usable := term.Dropped == "" && (term.Lo != 0 || term.Hi != 0)
		if !found || usable && res.ResidualSDBytes < best.ResidualSDBytes {
			best, bestLag, found = res, lag, usable
		}
		if !usable && lag > span {
			break
		}
	}
	return best, bestLag, nil
}
