package soak

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	"github.com/relaysoak/relaysoak/fakepds"
	"github.com/relaysoak/relaysoak/relay"
	"github.com/relaysoak/relaysoak/replay"
	"github.com/relaysoak/relaysoak/soak/attribute"
	"github.com/relaysoak/relaysoak/soak/crowd"
	"github.com/relaysoak/relaysoak/soak/harness"
	"github.com/relaysoak/relaysoak/soak/leaks"
	"github.com/relaysoak/relaysoak/soak/report"
	"github.com/relaysoak/relaysoak/soak/rundir"
	"github.com/relaysoak/relaysoak/soak/verdict"
)

// arm is one relay under test and everything that watches it: its rig (the
// fleet, or a share of another arm's), sampler, heap profiles and files. A
// soak has one; an A/B soak two, in a/ and b/ of the run directory, each a
// complete run directory of its own.
type arm struct {
	cfg    Config
	dir    string
	name   string // "" for a single soak, "A" or "B"
	events *rundir.Appender
	ev     func(kind string, detail any)
	rig    *harness.Harness
	s      *sampler
	heap   *heapProfiles
	timer  *time.Timer
	crowd  *crowd.Crowd // extra consumers of this arm's relay; nil without
	// seriesIdentities is how many new identities the crowd had presented
	// when the relay's series were first counted from.
	seriesIdentities atomic.Uint64
}

// newArm makes the arm's directory and events file; nothing runs yet.
func newArm(cfg Config, dir, name string, started time.Time) (*arm, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("%w: run dir: %v", ErrNotStarted, err)
	}
	events, err := rundir.OpenAppender(filepath.Join(dir, rundir.Events))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotStarted, err)
	}
	a := &arm{cfg: cfg, dir: dir, name: name, events: events}
	a.ev = func(kind string, detail any) {
		events.Write(rundir.Event{T: time.Now().UTC(), ElapsedS: time.Since(started).Seconds(), Event: kind, Detail: detail})
	}
	return a, nil
}

// start starts the arm's relay (on share's fleet when share is set), its
// sampler and its heap profiling.
func (a *arm) start(ctx context.Context, share *arm, ld *load, started time.Time) error {
	cfg := a.cfg
	runID := cfg.ID
	if a.name != "" {
		runID = cfg.ID + "-" + a.name
	}
	rc := harness.Config{
		RunDir:      a.dir,
		Fleet:       fakepds.Config{Hosts: cfg.Hosts, AccountsPerHost: cfg.AccountsPerHost, Seed: cfg.Seed, PLC: cfg.PLC, Shape: ld.shape, History: cfg.FleetHistory},
		Relay:       relay.Config{Image: cfg.RelayImage, Memory: cfg.MemLimit, NanoCPUs: int64(cfg.CPUs * 1e9), Profile: cfg.Profile, RunID: runID},
		VerifyEvery: cfg.VerifyEvery,
		Log:         cfg.Out,
		External:    cfg.External, FleetAddr: cfg.FleetAddr, FleetTLSAddr: cfg.FleetTLSAddr, CADir: cfg.CADir, FleetDNSAddr: cfg.FleetDNSAddr,
	}
	if share != nil {
		rc.Share = share.rig
	}
	if err := writeRunJSON(filepath.Join(a.dir, rundir.Run), cfg, ld); err != nil {
		return fmt.Errorf("%w: %v", ErrNotStarted, err)
	}
	a.ev("start", map[string]any{"hosts": cfg.Hosts, "rate": cfg.Rate, "duration_s": cfg.Duration.Seconds(), "arm": a.name})
	r, err := cfg.Harness.Start(ctx, rc)
	if err != nil {
		a.ev("start_failed", err.Error())
		if a.name != "" {
			err = fmt.Errorf("relay %s (%s): %w", a.name, orDefault(cfg.RelayImage), err)
		}
		return fmt.Errorf("%w: %v", ErrNotStarted, err)
	}
	a.rig = r
	a.ev("relay_ready", map[string]any{"image": r.Target().Image(), "firehose": r.Target().FirehoseURL()})
	if r.Relay() != nil {
		updateRunJSONImage(filepath.Join(a.dir, rundir.Run), r.Relay().Image())
	}
	if cfg.Consumers > 0 {
		cc := crowd.Config{URL: r.Target().FirehoseURL(), Consumers: cfg.Consumers, Churn: cfg.ConsumerChurn,
			Mix: cfg.ConsumerMix, SlowFor: cfg.ConsumerSlowFor, Seed: cfg.Seed,
			Identities: cfg.ConsumerIdentities, IdentityChurn: cfg.ConsumerIdentityChurn}
		if ld.attr != nil {
			cc.ChurnScale = ld.attr.scale(attribute.ConsumerReconnects)
			cc.IdentityChurnScale = ld.attr.scale(attribute.NewIdentities)
		}
		a.crowd, err = crowd.New(cc)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrNotStarted, err)
		}
	}
	a.s, err = newSampler(a.dir, cfg, r, a.crowd, started)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNotStarted, err)
	}
	// A Go relay's heap is profiled at the end of warm-up (or a quarter
	// into the run, if warm-up is not seen by then) and at the end; the
	// relay's series are counted from then too.
	a.heap = newHeapProfiles(r, a.dir)
	warmedUp := func() {
		if a.s.series != nil && a.s.series.Rebase() {
			a.seriesIdentities.Store(a.crowd.Counts().NewIdentities)
		}
		a.heap.takeBefore()
	}
	a.s.onWarmup = warmedUp
	a.s.ev = a.ev
	a.timer = time.AfterFunc(cfg.Duration/4, warmedUp)
	return nil
}

func orDefault(image string) string {
	if image == "" {
		return "indigo, built here"
	}
	return image
}

// runCrowd runs the arm's extra consumers until loadCtx ends: they
// reconnect by themselves when the relay restarts.
func (a *arm) runCrowd(loadCtx context.Context) {
	if a.crowd != nil {
		a.crowd.Run(loadCtx)
	}
}

// onExit handles the relay's death during the load: as Kubernetes would,
// start it again and go on (cfg.Restart), or stop the run.
func (a *arm) onExit(loadCtx context.Context) (stop bool, reason string) {
	e := a.rig.Target().Exit()
	a.s.noteExit(e)
	a.ev("relay_exit", exitDetail(e))
	who := "relay"
	if a.name != "" {
		who = "relay " + a.name
	}
	if !a.cfg.Restart {
		return true, who + " died"
	}
	if err := a.rig.Target().Restart(loadCtx); err != nil {
		a.ev("relay_restart_failed", err.Error())
		return true, who + " died and could not be restarted: " + err.Error()
	}
	a.s.noteRestart()
	a.ev("relay_restart", map[string]any{"restarts": a.s.restartCount()})
	return false, ""
}

// finish stops the relay gracefully (its shutdown output lands in
// relay.log), judges what was collected and writes the arm's report.
func (a *arm) finish(ctx context.Context, started time.Time, stopReason string, interrupted bool, ld *load) (report.Summary, error) {
	cfg, r, s, dir := a.cfg, a.rig, a.s, a.dir
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute+cfg.StopGrace)
	defer cancel()
	r.Drain(fctx, cfg.DrainQuiet, 6*cfg.DrainQuiet)
	s.sampleOnce(fctx) // a last sample, before the relay stops
	// The fleet's account as the run left it: the relay's subscriptions
	// end with it.
	ledger := r.Ledger()
	heapGrowth := a.heap.takeAfter(fctx)
	rep, finErr := r.Finish(fctx)
	a.ev("relay_stopped", exitDetail(rep.Exit))

	id := cfg.ID
	if a.name != "" {
		id = cfg.ID + "/" + a.name
	}
	sum := report.Summary{
		RunID: id, Relay: r.Target().Image(), Started: started, Duration: time.Since(started),
		Interrupted: interrupted, StopReason: stopReason, Hosts: cfg.Hosts, Rate: cfg.Rate,
		FramesSent:  rep.Fleet.Frames(),
		CommitsSent: rep.Fleet.Commits, CommitsOut: rep.Firehose.Commits, Delivery: rep.Delivery,
		RelayReceived: rep.RelayReceived, PastHistory: rep.Fleet.PastHistory, LagP50Ms: ms(rep.Firehose.Lag.P50), LagP99Ms: ms(rep.Firehose.Lag.P99),
		PLCRequests: rep.Fleet.PLCRequests, Restarts: s.restartCount(), Exits: s.exitTexts(), LogWarnings: rep.LogCounts,
		ProbeErrors: s.probeErrors(), WorstInterval: s.worstInterval(), Delivered: s.judgedDelivery(),
		HostsShort: hostsShort(r.Fleet().CommitsByHost(), rep.Firehose.ByHost),
		Measured: &report.MeasureEvidence{SeqGaps: rep.Firehose.SeqGaps, Connects: rep.Firehose.Connects,
			ErrorFrames: rep.Firehose.ErrorFrames, DecodeErrors: rep.Firehose.DecodeErrors, LastError: rep.Firehose.LastError},
	}
	if finErr != nil {
		sum.Notes = append(sum.Notes, "finishing the run: "+finErr.Error())
	}
	sum.Notes = append(sum.Notes, a.accountCommits(&sum, ledger, rep)...)
	sum.Notes = append(sum.Notes, a.darkHosts(&sum, rep, ld)...)
	sum.Notes = append(sum.Notes, a.heap.problems()...)
	sum.Findings.HeapGrowth = heapGrowth
	// A diagnostic build prints its allocator's leak report at shutdown;
	// relay.log holds the whole of it.
	if rep.LogPath != "" {
		if lr, err := leaks.FromLog(rep.LogPath); err != nil {
			sum.Notes = append(sum.Notes, "reading the relay's leak report: "+err.Error())
		} else if lr.Leaks > 0 {
			sum.Findings.LeakSites = &lr
		}
	}
	lf := ld.finding()
	sum.Findings.Load = &lf
	_, loadWarnings := report.LoadSection(lf)
	if a.crowd != nil {
		sum.Findings.Consumers = &report.ConsumerLoad{Consumers: cfg.Consumers, Churn: cfg.ConsumerChurn,
			Mix: cfg.ConsumerMix, SlowFor: cfg.ConsumerSlowFor, Counts: a.crowd.Counts(),
			Identities: cfg.ConsumerIdentities, IdentityChurn: cfg.ConsumerIdentityChurn}
		if s := a.s.series; s != nil {
			first, last, grown := s.Grown()
			sum.Findings.Consumers.Series = &report.MetricSeries{First: first, Last: last, Grown: grown,
				NewIdentities: sum.Findings.Consumers.Counts.NewIdentities - a.seriesIdentities.Load()}
		}
	}
	sum.Warnings = append(sum.Warnings, loadWarnings...)
	if fh := rep.Firehose; fh.CapturedCommits > 0 || ld.capture != nil && ld.capture.Mode == replay.Verbatim {
		sum.Captured = &report.Captured{Delivered: fh.CapturedCommits, Verified: fh.CapturedVerified, Failed: fh.CapturedFailed}
	}
	if rep.Firehose.VerifyFailed > 0 {
		sum.Notes = append(sum.Notes, fmt.Sprintf("%d delivered commits failed verification (first: %v)", rep.Firehose.VerifyFailed, rep.Firehose.Failures))
	}
	var err error
	sum.Judged, err = judgeFile(filepath.Join(dir, rundir.Samples), cfg.Judge)
	if err != nil {
		sum.Judged = verdict.Report{Result: verdict.Result{Verdict: verdict.Inconclusive, Reason: "no memory could be judged: " + err.Error()}}
	}
	if sum.Findings.RetainedPer, sum.Findings.GoroutinesPer, err = grewPer(dir, sum.Judged); err != nil {
		sum.Notes = append(sum.Notes, "growth per event: "+err.Error())
	}
	if ld.attr != nil {
		if found, err := ld.attr.finding(dir, sum.Judged); err != nil {
			sum.Notes = append(sum.Notes, "attribution: "+err.Error())
		} else {
			sum.Findings.Attribution = &found
		}
	}
	consumerFindings(dir, &sum)
	if rc, err := readOwnCost(filepath.Join(dir, rundir.RigSamples), max(cfg.RampUp, 2*time.Minute), cfg.Judge); err == nil {
		sum.Findings.OwnCost = &rc
		_, warnings := report.OwnCostSection(rc)
		sum.Warnings = append(sum.Warnings, warnings...)
	} else {
		sum.Notes = append(sum.Notes, "the rig's own cost: "+err.Error())
	}
	if err := report.Write(dir, sum); err != nil {
		return sum, err
	}
	a.ev("report_written", sum.Judged.Verdict)
	return sum, nil
}

// accountCommits puts every commit the fleet wrote in one bucket of the
// report's accounting, from the fleet's ledger at the end of the load and
// the measuring consumer's last counts, and writes hosts.csv a last time;
// it returns notes on what could not be done.
func (a *arm) accountCommits(sum *report.Summary, ledger []fakepds.HostLedger, rep harness.Report) []string {
	if ledger == nil {
		return []string{"no accounting of the commits written: the fleet cannot tell which of its readers is this relay (it subscribed to no host, or several relays share the fleet)"}
	}
	fh := rep.Firehose
	acc := account(countCommits(ledger, fh.ByHost, fh.SeqGaps, a.s.inFlight()))
	sum.Findings.Accounting = &acc
	if sum.Delivered != nil {
		sum.Delivered.Excuse(float64(awaitingRedial(ledger, time.Now(), a.cfg.DarkAfter, a.s.isDark)))
	}
	if err := a.s.writeHosts(ledger, fh.ByHost); err != nil {
		return []string{"writing " + rundir.HostsCSV + ": " + err.Error()}
	}
	return nil
}

// darkHosts gives the report the hosts the relay stopped reading, those
// the schedule abandoned on purpose marked planned, with the relay's own
// log lines about the others; it returns notes on what could not be done.
func (a *arm) darkHosts(sum *report.Summary, rep harness.Report, ld *load) []string {
	sum.DarkAfter = a.cfg.DarkAfter
	sum.DarkHosts = a.s.darkHosts(ld.finding().Report.Abandoned)
	if !slices.ContainsFunc(sum.DarkHosts, func(h report.DarkHost) bool { return !h.Planned }) {
		return nil
	}
	patterns := a.relayFacts().DarkLogPatterns
	switch {
	case rep.LogPath == "":
		sum.DarkLogNote = "the rig did not start this relay and has no log of it"
	case len(patterns) == 0:
		sum.DarkLogNote = "the relay's profile names no dark_log_patterns to look for"
	default:
		if err := quoteDarkLog(rep.LogPath, patterns, sum.DarkHosts, sum.Started, a.cfg.DarkAfter); err != nil {
			sum.DarkLogNote = "none quoted"
			return []string{"the relay's log about its dark hosts: " + err.Error()}
		}
	}
	return nil
}

// relayFacts are the relay's profile's facts: the container's, or the
// configured profile's for a relay the rig did not start (none without).
func (a *arm) relayFacts() relay.Facts {
	if r := a.rig.Relay(); r != nil && r.Profile() != nil {
		return r.Profile().Facts()
	}
	if a.cfg.Profile != nil {
		return a.cfg.Profile.Facts()
	}
	return relay.Facts{}
}

// close releases what start made; safe after a failed start.
func (a *arm) close(ctx context.Context) {
	if a.timer != nil {
		a.timer.Stop()
	}
	if a.s != nil {
		a.s.close()
	}
	if a.rig != nil {
		a.rig.Close(ctx)
	}
	a.events.Close()
}
