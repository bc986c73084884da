// Package report writes what a soak concluded, for people and for CI:
// report.md (verdict first, then the numbers), verdict.json, junit.xml and
// a plot of memory over time with the warm-up and the fitted trend marked.
//
// It also renders the sections of a heap diff (soak/heapdiff), of an
// allocator's leak report (soak/leaks) and of the extra consumers' counts
// (soak/crowd) from their results.
//
// It must not know how the numbers were measured: it renders a Summary,
// the samples file and those results, nothing else.
package report

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/relaysoak/relaysoak/internal/atomicfile"
	"github.com/relaysoak/relaysoak/internal/bytesize"
	"github.com/relaysoak/relaysoak/soak/heapdiff"
	"github.com/relaysoak/relaysoak/soak/leaks"
	"github.com/relaysoak/relaysoak/soak/rundir"
	"github.com/relaysoak/relaysoak/soak/verdict"
)

// Summary is everything a report says. Judged is required; the rest is
// shown when known.
type Summary struct {
	RunID    string        `json:"run_id"`
	Relay    string        `json:"relay"` // image (and profile)
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration_ns"`
	// Interrupted says the run was stopped early (Ctrl-C, SIGTERM).
	Interrupted bool   `json:"interrupted,omitempty"`
	StopReason  string `json:"stop_reason,omitempty"`

	Hosts int     `json:"hosts,omitempty"`
	Rate  float64 `json:"rate,omitempty"` // frames/s asked for

	Judged verdict.Report `json:"verdict"`

	FramesSent    uint64  `json:"frames_sent"`
	CommitsSent   uint64  `json:"commits_sent"`
	CommitsOut    uint64  `json:"commits_delivered"`
	Delivery      float64 `json:"delivery"`
	RelayReceived float64 `json:"relay_commits_received,omitempty"`
	// PastHistory: frames the relay never saw because its cursor, on
	// reconnecting to a host, was older than the host's kept history.
	PastHistory uint64  `json:"frames_past_history,omitempty"`
	LagP50Ms    float64 `json:"lag_p50_ms,omitempty"`
	LagP99Ms    float64 `json:"lag_p99_ms,omitempty"`
	// Delivered is delivery over the judged window, against its bar; nil
	// when it was not judged.
	Delivered *JudgedDelivery `json:"delivered_judged,omitempty"`
	// HostsShort are the hosts whose commits the measuring consumer
	// received fewer of than they wrote, most missing first.
	HostsShort []HostLoss `json:"hosts_short,omitempty"`
	// DarkHosts are the hosts the relay stopped reading for DarkAfter or
	// longer, most commits lost first; DarkLogNote says why no log lines
	// were looked for about them, when none were.
	DarkHosts   []DarkHost    `json:"dark_hosts,omitempty"`
	DarkAfter   time.Duration `json:"dark_after_ns,omitempty"`
	DarkLogNote string        `json:"dark_log_note,omitempty"`
	// WorstInterval is the sample interval after the ramp-up with the
	// lowest delivery ratio; nil when none was measured.
	WorstInterval *Interval `json:"worst_interval,omitempty"`
	// Measured is what the measuring consumer saw go wrong on its side.
	Measured    *MeasureEvidence `json:"measured,omitempty"`
	PLCRequests uint64           `json:"plc_requests,omitempty"`
	Restarts    int              `json:"restarts,omitempty"`
	Exits       []string         `json:"exits,omitempty"` // how the relay died, each time
	LogWarnings map[string]int   `json:"log_warnings,omitempty"`
	Notes       []string         `json:"notes,omitempty"` // extra findings (leak sites, heap growth…)
	// Warnings say, at the top, why the verdict may be less trustworthy
	// (the rig fell short of the rate asked…).
	Warnings []string `json:"warnings,omitempty"`
	// Captured counts a replayed capture's real commits, verified apart.
	Captured    *Captured         `json:"captured,omitempty"`
	ProbeErrors map[string]string `json:"probe_errors,omitempty"`

	// Findings are what the run found beyond memory's verdict, as data;
	// report.md renders each as a section of its own.
	Findings Findings `json:"findings,omitzero"`
	// Sections are sections rendered when the run was written: a run
	// directory from before findings were kept as data. They follow the
	// findings' sections, as given.
	Sections []Section `json:"sections,omitempty"`
	// Comparison with an earlier run (relaysoak report --baseline).
	Comparison *Comparison `json:"comparison,omitempty"`
}

// Lost is the outcome of a run whose relay did not pass on what it was
// given: delivery over the judged window under its bar.
const Lost verdict.Verdict = "LOST"

// JudgedDelivery is delivery over the judged window: the run after the
// ramp-up, without the commits still in flight at its end (written within
// the lag p99 before it).
type JudgedDelivery struct {
	Ratio     float64 `json:"ratio"`
	Min       float64 `json:"min"` // the bar; 0: not judged
	Due       float64 `json:"due"` // commits written in the window, less those in flight
	Delivered float64 `json:"delivered"`
	InFlight  float64 `json:"in_flight"`
	// AwaitingRedial were written during a planted outage, or the grace
	// after it, on hosts the relay had not come back to by the end: not
	// due yet, so taken off Due.
	AwaitingRedial float64 `json:"awaiting_redial,omitempty"`
	FromS          float64 `json:"from_s"`
}

// Excuse takes n commits awaiting the relay's redial off what was due
// (never below what was delivered) and judges again.
func (d *JudgedDelivery) Excuse(n float64) {
	n = min(n, max(d.Due-d.Delivered, 0))
	if n <= 0 {
		return
	}
	d.AwaitingRedial += n
	d.Due -= n
	d.Ratio = 1
	if d.Due > 0 {
		d.Ratio = min(d.Delivered/d.Due, 1)
	}
}

// Lost says delivery fell under its bar.
func (d *JudgedDelivery) Lost() bool { return d != nil && d.Min > 0 && d.Ratio < d.Min }

// Outcome is the run's one answer, for its exit status and title, when
// several hold: CRASHED, then LEAK, then LOST, then RETAINED, then
// INCONCLUSIVE, then PASS.
func Outcome(s Summary) verdict.Verdict {
	v := s.Judged.Verdict
	if s.Delivered.Lost() && v != verdict.Crashed && v != verdict.Leak {
		return Lost
	}
	return v
}

// HostLoss is one host's commits written and delivered over the run.
type HostLoss struct {
	Host      string `json:"host"`
	Written   uint64 `json:"written"`
	Delivered uint64 `json:"delivered"`
}

// Missing is what the host wrote and the relay did not deliver.
func (h HostLoss) Missing() uint64 { return h.Written - min(h.Delivered, h.Written) }

// Interval is one sample interval's delivery: commits delivered in it over
// commits due in it (those younger than its lag p99 in flight).
type Interval struct {
	Delivery float64 `json:"delivery"`
	EndS     float64 `json:"end_s"` // when it ended, seconds into the run
	LagP99Ms float64 `json:"lag_p99_ms"`
}

// MeasureEvidence is what the measuring consumer counted besides
// deliveries: events missing between consecutive seqs, its connections to
// the relay, error frames the relay sent, frames it could not decode.
type MeasureEvidence struct {
	SeqGaps      uint64 `json:"seq_gaps"`
	Connects     int    `json:"connects"`
	ErrorFrames  uint64 `json:"error_frames"`
	DecodeErrors uint64 `json:"decode_errors"`
	LastError    string `json:"last_error,omitempty"`
}

// Findings are a run's findings that each need a section of the report,
// in the report's order; nil when the run did not find it.
type Findings struct {
	// Accounting is where every commit written went, for this relay.
	Accounting  *Accounting      `json:"accounting,omitzero"`
	Load        *Load            `json:"load,omitempty"`
	HeapGrowth  *heapdiff.Growth `json:"heap_growth,omitempty"`
	LeakSites   *leaks.Report    `json:"leak_sites,omitempty"`
	Consumers   *ConsumerLoad    `json:"consumers,omitempty"`
	Attribution *Attribution     `json:"attribution,omitempty"`
	OwnCost     *OwnCost         `json:"own_cost,omitempty"`
	// RetainedPer is memory's growth over the judged window per event of
	// each load factor that happened in it, for a run that grew;
	// GoroutinesPer the goroutines', for a run whose goroutines grew.
	RetainedPer   []Ratio `json:"retained_per,omitempty"`
	GoroutinesPer []Ratio `json:"goroutines_per,omitempty"`
}

// Ratio is a series' growth over its judged window divided by the events
// of one load factor over it.
type Ratio struct {
	Per    string  `json:"per"` // the event: frame, resolution, consumer reconnect…
	Events float64 `json:"events"`
	// Each is the growth per event: bytes for memory, goroutines for
	// goroutines.
	Each float64 `json:"each"`
}

// sections renders f in the report's order.
func (f Findings) sections() []Section {
	var out []Section
	if f.Accounting != nil {
		out = append(out, AccountingSection(*f.Accounting))
	}
	if f.Load != nil {
		sec, _ := LoadSection(*f.Load)
		out = append(out, sec)
	}
	if f.HeapGrowth != nil {
		out = append(out, HeapGrowth(*f.HeapGrowth))
	}
	if f.LeakSites != nil {
		if sec, ok := LeakSites(*f.LeakSites); ok {
			out = append(out, sec)
		}
	}
	if f.Consumers != nil {
		out = append(out, Consumers(*f.Consumers))
	}
	if f.Attribution != nil {
		out = append(out, AttributionSection(*f.Attribution))
	}
	if f.OwnCost != nil {
		sec, _ := OwnCostSection(*f.OwnCost)
		out = append(out, sec)
	}
	return out
}

// Captured is the delivery and verification of a capture's real commits.
type Captured struct {
	Delivered uint64 `json:"delivered"`
	Verified  uint64 `json:"verified"`
	Failed    uint64 `json:"failed"`
}

// Section is a titled block of markdown in report.md.
type Section struct {
	Title    string `json:"title"`
	Markdown string `json:"markdown"`
}

// Write renders every file into dir. The plot reads dir/samples.jsonl; a
// plot that cannot be drawn is noted in the report, not fatal. The files are
// replaced together once all are rendered and written: a failure leaves the
// previous report's files as they were.
func Write(dir string, s Summary) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	png, err := renderPlot(filepath.Join(dir, rundir.Samples), s.Judged)
	if err != nil {
		s.Notes = append(s.Notes, "no plot: "+err.Error())
	}
	j, err := JUnit(s)
	if err != nil {
		return err
	}
	return writeRunFiles(dir, s, Markdown(s), j, png)
}

// writeRunFiles writes a run's verdict.json (v), report.md, junit.xml and
// plot.
func writeRunFiles(dir string, v any, md string, junit, png []byte) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("report: encode %s: %w", rundir.Verdict, err)
	}
	return writeFiles(dir, []outFile{
		{rundir.Verdict, append(b, '\n')},
		{rundir.Report, []byte(md)},
		{rundir.JUnit, junit},
		{rundir.Plot, png},
	})
}

// outFile is one rendered report file; a nil data is a file not written.
type outFile struct {
	name string
	data []byte
}

// writeFiles writes each file beside its target and then renames them all
// into place, so a report is replaced as a whole or not at all.
func writeFiles(dir string, files []outFile) error {
	var staged []*atomicfile.File
	abort := func() {
		for _, f := range staged {
			f.Abort()
		}
	}
	for _, of := range files {
		if of.data == nil {
			continue
		}
		f, err := atomicfile.Create(filepath.Join(dir, of.name), 0o644)
		if err != nil {
			abort()
			return fmt.Errorf("report: %w", err)
		}
		staged = append(staged, f)
		if _, err := f.Write(of.data); err != nil {
			abort()
			return fmt.Errorf("report: write %s: %w", f.Path(), err)
		}
	}
	if err := atomicfile.CommitAll(staged...); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

// Headline is the one sentence a CI job summary shows: every outcome that
// holds, the one that decides the exit status first.
func Headline(s Summary) string {
	mem := memoryHeadline(s.Judged)
	d := s.Delivered
	if !d.Lost() {
		if dark := darkHeadline(s.DarkHosts); dark != "" {
			return mem + " · " + dark
		}
		return mem
	}
	lost := fmt.Sprintf("LOST: %.2f%% of the commits due after the ramp-up were delivered (%.0f of %.0f; bar %.2f%%)", 100*d.Ratio, d.Delivered, d.Due, 100*d.Min)
	if w := s.WorstInterval; w != nil {
		lost += fmt.Sprintf(", %.1f%% in the worst sample interval (ending at minute %.1f)", 100*w.Delivery, w.EndS/60)
	}
	if n := len(unplannedDark(s.DarkHosts)); n > 0 {
		lost += fmt.Sprintf(", %d host%s dark", n, plural(n))
	}
	if len(s.HostsShort) > 0 {
		h := s.HostsShort[0]
		lost += fmt.Sprintf("; most missing from %s (%d of its %d commits)", h.Host, h.Missing(), h.Written)
	}
	if Outcome(s) == Lost {
		return lost + " · " + mem
	}
	return mem + " · " + lost
}

// memoryHeadline is what memory's verdict says in a sentence.
func memoryHeadline(r verdict.Report) string {
	if g := r.Goroutines; g != nil && r.MemoryVerdict != "" {
		mem := r
		mem.Verdict, mem.Reason = r.MemoryVerdict, r.MemoryReason
		mem.MemoryVerdict, mem.MemoryReason = "", ""
		return fmt.Sprintf("LEAK: the relay's goroutines grow %+.0f an hour (%.0f to %.0f), %.0f at the end · memory: %s", g.SlopeMiBPerHour, g.SlopeCIMiBPerHour[0], g.SlopeCIMiBPerHour[1], g.LevelMiB, memoryHeadline(mem))
	}
	if h, ok := keptHeadline(r); ok {
		return h
	}
	switch r.Verdict {
	case verdict.Leak:
		return fmt.Sprintf("LEAK: %s grows %.0f MiB/h (%.0f to %.0f) after warm-up — %s", r.CarriedBy, r.SlopeMiBPerHour, r.SlopeCIMiBPerHour[0], r.SlopeCIMiBPerHour[1], r.Reason)
	case verdict.Pass:
		return fmt.Sprintf("PASS: %s flat after warm-up (%.1f MiB/h, %.0f to %.0f) — %s", r.CarriedBy, r.SlopeMiBPerHour, r.SlopeCIMiBPerHour[0], r.SlopeCIMiBPerHour[1], r.Reason)
	case verdict.Crashed:
		return fmt.Sprintf("CRASHED: the relay exited during the run — %s", r.Reason)
	default:
		more := ""
		if r.NeedMoreMinutes != nil {
			more = fmt.Sprintf(" (about %.0f more minutes needed)", *r.NeedMoreMinutes)
		}
		return fmt.Sprintf("INCONCLUSIVE: %s%s", r.Reason, more)
	}
}

// keptHeadline is memoryHeadline for a verdict on what the relay keeps
// (the live heap's floors, with the OS's view beside them) that is LEAK,
// RETAINED or PASS; ok is false for any other (said as without floors).
func keptHeadline(r verdict.Report) (h string, ok bool) {
	if r.Kept == nil || r.Kept.NotYet != "" {
		return "", false
	}
	sys := r.OSView()
	floors := fmt.Sprintf("the live heap's floors %+.1f MiB/h (%.1f to %.1f)", r.SlopeMiBPerHour, r.SlopeCIMiBPerHour[0], r.SlopeCIMiBPerHour[1])
	osText := notYet
	if sys != nil && sys.JudgedPoints > 0 {
		osText = fmt.Sprintf("%+.1f MiB/h (%.0f to %.0f)", sys.SlopeMiBPerHour, sys.SlopeCIMiBPerHour[0], sys.SlopeCIMiBPerHour[1])
	}
	osName := r.Kept.OSView
	switch r.Verdict {
	case verdict.Leak:
		return fmt.Sprintf("LEAK: what the relay keeps grows — %s; %s %s", floors, osName, osText), true
	case verdict.Retained:
		return fmt.Sprintf("RETAINED: %s grows %s while what the relay keeps is flat — %s: the allocator or runtime holds freed pages, or memory outside the heap grows", osName, osText, floors), true
	case verdict.Pass:
		return fmt.Sprintf("PASS: what the relay keeps is flat — %s; %s %s", floors, osName, osText), true
	}
	return "", false
}

// Markdown is report.md: the verdict first, then the numbers.
func Markdown(s Summary) string {
	var b strings.Builder
	r := s.Judged
	fmt.Fprintf(&b, "# relaysoak %s — %s\n\n", s.RunID, Outcome(s))
	fmt.Fprintf(&b, "**%s**\n\n", Headline(s))
	if s.Interrupted {
		fmt.Fprintf(&b, "The run was stopped early (%s); this verdict judges what was collected.\n\n", s.StopReason)
	}
	for _, w := range s.Warnings {
		fmt.Fprintf(&b, "> **Warning:** %s\n\n", w)
	}
	fmt.Fprintf(&b, "![memory over time](%s)\n\n", rundir.Plot)
	b.WriteString("## Memory\n\n| | |\n|---|---|\n")
	row := func(k, v string) { fmt.Fprintf(&b, "| %s | %s |\n", k, v) }
	row("signal carrying the verdict", r.CarriedBy)
	row("slope", slopeText(r.Result))
	if k := r.Kept; k != nil {
		if k.NotYet != "" {
			row("what the relay keeps", fmt.Sprintf("%s; the verdict rests on %s alone", k.NotYet, k.OSView))
		} else {
			row("what the relay keeps", fmt.Sprintf("the floors of %s: the lowest sample of each %.0f s (1.5 teeth of %.0f s, %.0f MiB deep), %d floors", k.Signal, k.Teeth.WindowS, k.Teeth.PeriodS, k.Teeth.DepthMiB, k.Floors))
			if sys := r.OSView(); sys != nil {
				row("the OS's view", fmt.Sprintf("%s %s: %s", sys.Signal, sys.Verdict, slopeText(*sys)))
			}
		}
	}
	if g := r.Goroutines; g != nil {
		row(rundir.Goroutines, goroutinesText(*g))
	}
	if per := s.Findings.GoroutinesPer; len(per) > 0 {
		row("goroutines per event", perEvent(per, func(each float64) string { return fmt.Sprintf("%+.2f goroutines", each) }))
	}
	if r.FloorSlopeMiBPerHour != nil && r.PeakSlopeMiBPerHour != nil {
		row("slow flush cycles", fmt.Sprintf("%d drops every %.0f min; floors %.1f MiB/h, peaks %.1f MiB/h", r.FlushDrops, r.FlushPeriodS/60, *r.FloorSlopeMiBPerHour, *r.PeakSlopeMiBPerHour))
	}
	late := notYet
	if r.JudgedPoints > 0 && !r.Provisional {
		late = fmt.Sprintf("%.1f MiB/h", r.LateSlopeMiBPerHour)
	}
	row("late-window slope", late)
	row("effect-size gate", fmt.Sprintf("%.1f MiB/h", r.GateMiBPerHour))
	switch per := s.Findings.RetainedPer; {
	case len(per) > 0:
		row("growth per event", perEvent(per, func(each float64) string { return bytesize.IEC(int64(each)) }))
	case r.BytesPerFrame != nil && (r.Verdict == verdict.Leak || r.Verdict == verdict.Retained):
		row("retained per frame", fmt.Sprintf("%.0f bytes", *r.BytesPerFrame))
	}
	row("warm-up ended", warmupText(r.Result))
	row("judged window", minutes(r.WindowStartS)+" → "+minutes(r.WindowEndS))
	growth := notYet
	if r.JudgedPoints > 0 {
		growth = fmt.Sprintf("%.1f MiB", r.GrowthMiB)
	}
	row("growth over the window", growth)
	row("level at the end", fmt.Sprintf("%.0f MiB", r.LevelMiB))
	if r.PlateauMiB != nil {
		row("plateau", fmt.Sprintf("%.0f MiB", *r.PlateauMiB))
	}
	if r.TimeToLimitHours != nil {
		row("projected time to the memory limit", fmt.Sprintf("%.1f h", *r.TimeToLimitHours))
	}
	if r.JudgedPoints > 0 {
		row("Mann–Kendall", fmt.Sprintf("Z = %.2f, p = %.3g (Hamed–Rao, effective n %.0f of %d)", r.MannKendallZ, r.PValue, r.EffectiveN, r.JudgedPoints))
	}
	if r.LevelShifts > 0 || r.Restarts > 0 {
		row("steps / restarts seen", fmt.Sprintf("%d / %d", r.LevelShifts, r.Restarts))
	}
	if len(r.Disagreements) > 0 {
		b.WriteString("\n**Signals disagree:**\n\n")
		for _, d := range r.Disagreements {
			fmt.Fprintf(&b, "- %s\n", d)
		}
	}
	b.WriteString("\n| signal | verdict | slope MiB/h | level MiB |\n|---|---|---|---|\n")
	for _, sig := range r.Signals {
		sl := notYet
		if sig.JudgedPoints > 0 {
			sl = fmt.Sprintf("%.1f", sig.SlopeMiBPerHour)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %.0f |\n", sig.Signal, sig.Verdict, sl, sig.LevelMiB)
	}

	if c := s.Comparison; c != nil {
		fmt.Fprintf(&b, "\n## Compared with %s\n\n%s", c.A.RunID, c.Markdown())
	}

	b.WriteString("\n## Load and delivery\n\n| | |\n|---|---|\n")
	row("relay", s.Relay)
	row("started", s.Started.UTC().Format(time.RFC3339))
	row("duration", s.Duration.Round(time.Second).String())
	if s.Hosts > 0 {
		row("hosts × rate asked", fmt.Sprintf("%d × %.0f frames/s", s.Hosts, s.Rate))
	}
	if secs := s.Duration.Seconds(); secs > 0 {
		row("frames sent", fmt.Sprintf("%d (%.0f/s achieved)", s.FramesSent, float64(s.FramesSent)/secs))
	}
	row("commits delivered", fmt.Sprintf("%d of %d (%.2f%%)", s.CommitsOut, s.CommitsSent, s.Delivery*100))
	if d := s.Delivered; d != nil {
		awaiting := ""
		if d.AwaitingRedial > 0 {
			awaiting = fmt.Sprintf(", %.0f written during a planted outage (or its grace) on hosts the relay had not redialled by the end", d.AwaitingRedial)
		}
		row("delivery judged (after the ramp-up, in-flight excluded)", fmt.Sprintf("%.0f of %.0f due from minute %.1f (%.3f%%; bar %.2f%%), %.0f in flight at the end%s", d.Delivered, d.Due, d.FromS/60, 100*d.Ratio, 100*d.Min, d.InFlight, awaiting))
	}
	if s.RelayReceived > 0 {
		row("relay's own count of commits received", fmt.Sprintf("%.0f", s.RelayReceived))
	}
	if s.PastHistory > 0 && s.FramesSent > 0 {
		row("frames the relay never saw", fmt.Sprintf("%d (%.2f%% of frames sent): on reconnecting, its cursor was older than the host's kept history; they count against delivery", s.PastHistory, 100*float64(s.PastHistory)/float64(s.FramesSent)))
	}
	if c := s.Captured; c != nil {
		row("captured commits (real frames)", fmt.Sprintf("%d delivered, %d verified, %d failed (every one checked)", c.Delivered, c.Verified, c.Failed))
	}
	if s.LagP99Ms > 0 {
		row("end-to-end lag", fmt.Sprintf("p50 %.0f ms, p99 %.0f ms", s.LagP50Ms, s.LagP99Ms))
	}
	if len(s.HostsShort) > 0 {
		var hs []string
		for _, h := range s.HostsShort {
			hs = append(hs, fmt.Sprintf("%s %d of %d", h.Host, h.Missing(), h.Written))
		}
		row("hosts with commits missing (most first)", strings.Join(hs, ", "))
	}
	if w := s.WorstInterval; w != nil {
		row("worst sample interval", fmt.Sprintf("%.2f%% delivered, ending at minute %.1f (lag p99 %.0f ms then)", 100*w.Delivery, w.EndS/60, w.LagP99Ms))
	}
	if m := s.Measured; m != nil {
		v := fmt.Sprintf("%d sequence gaps, %d connections, %d error frames, %d undecodable frames", m.SeqGaps, m.Connects, m.ErrorFrames, m.DecodeErrors)
		if m.LastError != "" {
			v += "; last error: " + m.LastError
		}
		row("measuring consumer", v)
	}
	if s.PLCRequests > 0 {
		row("DID documents served by the fake PLC", fmt.Sprintf("%d", s.PLCRequests))
	}
	if s.Restarts > 0 {
		row("relay restarts", fmt.Sprintf("%d", s.Restarts))
	}
	secs := s.Findings.sections()
	if dark, ok := DarkHostsSection(s.DarkHosts, s.DarkAfter, s.DarkLogNote); ok {
		// Beside the accounting, before the load's own sections.
		at := 0
		if s.Findings.Accounting != nil {
			at = 1
		}
		secs = slices.Insert(secs, at, dark)
	}
	for _, sec := range append(secs, s.Sections...) {
		if strings.TrimSpace(sec.Markdown) == "" {
			continue
		}
		fmt.Fprintf(&b, "\n## %s\n\n%s", sec.Title, strings.TrimRight(sec.Markdown, "\n")+"\n")
	}
	if len(s.Exits) > 0 {
		b.WriteString("\n## Relay exits\n\n")
		for _, e := range s.Exits {
			fmt.Fprintf(&b, "```\n%s\n```\n", e)
		}
	}
	if len(s.LogWarnings) > 0 {
		b.WriteString("\n## Relay log\n\n| line containing | count |\n|---|---|\n")
		keys := make([]string, 0, len(s.LogWarnings))
		for k := range s.LogWarnings {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "| `%s` | %d |\n", k, s.LogWarnings[k])
		}
	}
	if len(s.ProbeErrors) > 0 {
		b.WriteString("\n## Probes that failed\n\n")
		for k, v := range s.ProbeErrors {
			fmt.Fprintf(&b, "- %s: %s\n", k, v)
		}
	}
	if len(s.Notes) > 0 {
		b.WriteString("\n## Notes\n\n")
		for _, n := range s.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	return b.String()
}

func minutes(s float64) string { return fmt.Sprintf("%.1f min", s/60) }

// notYet stands for a number that was never computed: a zero would read as
// a finding.
const notYet = "not yet"

// slopeText is the slope with its interval, "not yet" when none was
// computed, marked when it is only an estimate from too little data.
func slopeText(r verdict.Result) string {
	if r.JudgedPoints == 0 {
		return notYet + " (too little data)"
	}
	t := fmt.Sprintf("%.1f MiB/h (%.0f%% CI %.1f to %.1f)", r.SlopeMiBPerHour, r.CILevel*100, r.SlopeCIMiBPerHour[0], r.SlopeCIMiBPerHour[1])
	if r.Provisional {
		t += ", provisional: too little data to judge"
	}
	return t
}

// perEvent is the growth per event of each load factor, each growth said
// by say, and what would tell which is the cause.
func perEvent(per []Ratio, say func(each float64) string) string {
	parts := make([]string, len(per))
	for i, p := range per {
		parts[i] = fmt.Sprintf("%s per %s (%.0f of them)", say(p.Each), p.Per, p.Events)
	}
	return strings.Join(parts, " · ") + "; a steady run cannot tell which is the cause: `make soak-attribute` can"
}

// goroutinesText is the goroutines' verdict with its numbers, which are
// goroutines, not MiB.
func goroutinesText(g verdict.Result) string {
	if g.JudgedPoints == 0 || g.Provisional {
		return fmt.Sprintf("%s: %.0f at the end; slope not yet judged (%s)", g.Verdict, g.LevelMiB, g.Reason)
	}
	return fmt.Sprintf("%s: %+.0f an hour (%.0f%% CI %.0f to %.0f; gate %.0f an hour), %.0f at the end", g.Verdict, g.SlopeMiBPerHour, g.CILevel*100, g.SlopeCIMiBPerHour[0], g.SlopeCIMiBPerHour[1], g.GateMiBPerHour, g.LevelMiB)
}

// warmupText is when the warm-up ended, or why that is not known yet.
func warmupText(r verdict.Result) string {
	switch r.WarmupState {
	case verdict.WarmupUnknown:
		return notYet + " (too few samples to tell)"
	case verdict.WarmingUp:
		return notYet + " (still warming up)"
	case verdict.WarmupNone:
		return "no warm-up seen"
	}
	return minutes(r.WarmupEndS)
}

type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Time     float64     `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      float64       `xml:"time,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Body    string `xml:",chardata"`
}

// JUnit renders the verdict as one test case per signal plus the run's,
// and delivery's when it was judged: a LEAK, CRASHED, LOST or RETAINED fails,
// INCONCLUSIVE is skipped (CI warns), PASS passes.
func JUnit(s Summary) ([]byte, error) {
	suite := junitSuite{Name: "relaysoak " + s.RunID, Time: s.Duration.Seconds()}
	add := func(name string, v verdict.Verdict, msg string) {
		c := junitCase{Name: name, Classname: "relaysoak.soak", Time: s.Duration.Seconds(), SystemOut: msg}
		switch v {
		case verdict.Leak, verdict.Crashed, Lost, verdict.Retained:
			c.Failure = &junitMessage{Message: string(v), Body: msg}
			suite.Failures++
		case verdict.Inconclusive:
			c.Skipped = &junitMessage{Message: msg}
			suite.Skipped++
		}
		suite.Cases = append(suite.Cases, c)
		suite.Tests++
	}
	add("verdict", s.Judged.Verdict, Headline(s))
	if d := s.Delivered; d != nil && d.Min > 0 {
		v, msg := verdict.Pass, fmt.Sprintf("%.3f%% of the commits due were delivered (bar %.2f%%)", 100*d.Ratio, 100*d.Min)
		if d.Lost() {
			v, msg = Lost, Headline(s)
		}
		add("delivery", v, msg)
	}
	if g := s.Judged.Goroutines; g != nil {
		add(rundir.Goroutines, g.Verdict, goroutinesText(*g))
	}
	for _, sig := range s.Judged.Signals {
		add("memory/"+sig.Signal, sig.Verdict, fmt.Sprintf("%s: %s — %s", sig.Verdict, slopeText(sig), sig.Reason))
	}
	b, err := xml.MarshalIndent(junitSuites{Suites: []junitSuite{suite}}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("report: junit: %w", err)
	}
	return append([]byte(xml.Header), append(b, '\n')...), nil
}
