package verdict

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/relaysoak/relaysoak/internal/stats"
	"github.com/relaysoak/relaysoak/soak/rundir"
)

// Retained is the verdict on a run whose resident memory grows while what
// the process keeps does not: the allocator or the runtime holds pages it
// freed (fragmentation, arenas, pages never returned).
const Retained Verdict = "RETAINED"

// Kept is what a garbage-collected process keeps: the floors of its live
// heap's sawtooth (the lowest sample of each window of 1.5 teeth), which
// move only with what survives collections, where the heap's teeth and
// RSS's high-water mark swing by more than an hour's growth.
type Kept struct {
	// Signal is the series the floors were taken of (the live heap).
	Signal string `json:"signal"`
	// Teeth is the sawtooth found; Floors how many were judged.
	Teeth  stats.Teeth `json:"teeth"`
	Floors int         `json:"floors"`
	// NotYet says why the floors were not judged, when they were not: too
	// few teeth so far, or teeth too far apart to take floors of.
	NotYet string `json:"not_yet,omitempty"`
	// OSView is the signal that carries the verdict when floors are not
	// judged (rss_anon, as JudgeSignals chooses), judged beside them.
	OSView string `json:"os_view"`
}

// FloorsSignal names the judged floors of signal among a Report's Signals.
func FloorsSignal(signal string) string { return signal + "_floors" }

// Of returns the floors k judged, taken of s (the series k names): nil when
// none were.
func (k Kept) Of(s Series) Series {
	if !k.Teeth.Found() || len(s) == 0 {
		return nil
	}
	return floorsOf(s, k.Teeth)
}

// columns is s as times and values.
func (s Series) columns() (t, y []float64) {
	t, y = make([]float64, len(s)), make([]float64, len(s))
	for i, p := range s {
		t[i], y[i] = p.T, p.Bytes
	}
	return t, y
}

// floorsOf is the lowest sample of each whole window of th's width of s,
// from th's first drop on (stats.FloorIndices).
func floorsOf(s Series, th stats.Teeth) Series {
	t, y := s.columns()
	var out Series
	for _, i := range stats.FloorIndices(t, y, max(t[0], th.FirstDropS), th.WindowS) {
		out = append(out, s[i])
	}
	return out
}

// maxFloorWindow is the widest window a floor is taken from: a quarter of
// the least judged window. Teeth slower than this leave the verdict on the
// OS's view; between this and MinWindow/minFitPoint the floors are judged
// once there are minFitPoint of them after the warm-up.
func maxFloorWindow(cfg Config) float64 {
	return cfg.MinWindow.Seconds() / 4
}

// Floors returns the floors of s, a live heap: from its first drop on, the
// lowest sample of each whole window of 1.5 of its teeth. why says why
// there are none, when there are none: too few teeth, or teeth too slow
// for the windows cfg's least judged window needs.
func Floors(s Series, cfg Config) (floors Series, th stats.Teeth, why string) {
	cfg = cfg.withDefaults()
	if len(s) < 2 {
		return nil, th, "no live heap sampled yet"
	}
	t, y := s.columns()
	maxW := maxFloorWindow(cfg)
	th = stats.FindFastTeeth(t, y, t[0], t[len(t)-1], maxW)
	if why := teethWhy(th, maxW); why != "" {
		return nil, th, why
	}
	if floors = floorsOf(s, th); len(floors) < 2 {
		return nil, th, fewFloors
	}
	return floors, th, ""
}

// teethWhy says why teeth th give no floors in windows of at most maxW
// seconds; "" when they do.
func teethWhy(th stats.Teeth, maxW float64) string {
	switch {
	case th.Drops < stats.MinTeeth:
		return fmt.Sprintf("floors not yet: %d of the live heap's teeth seen, %d needed", th.Drops, stats.MinTeeth)
	case !th.Found():
		return fmt.Sprintf("floors not taken: the live heap's teeth come every %.0f s, too slow for floors %.0f s apart at most", th.PeriodS, maxW/1.5)
	}
	return ""
}

// fewFloors says why teeth found so far give no floors to judge yet.
const fewFloors = "floors not yet: fewer than two whole windows of teeth"

// JudgeRun judges a recorded run: every memory signal (JudgeSignals) and,
// when the run holds a live heap, what the process keeps (Report.WithKept).
func JudgeRun(run Run, cfg Config) (Report, error) {
	rep, err := JudgeSignals(run.Signals, run.Context, cfg)
	if err != nil {
		return rep, err
	}
	if rep, err = rep.WithKept(run.Kept, run.Context, cfg); err != nil {
		return rep, err
	}
	return rep.WithGoroutines(run.Goroutines, run.Context, cfg)
}

// WithKept judges the floors of kept, a live heap, beside the signal that
// carries r (the OS's view) and, when there are teeth enough to take
// floors, lets them carry the verdict:
//
//   - LEAK: the floors grow (or the OS's view shows an OOM sawtooth);
//   - RETAINED: the floors are flat while the OS's view grows;
//   - PASS: the floors are flat, and the OS's view is not growing;
//   - INCONCLUSIVE: the floors cannot tell yet, with the minutes they need;
//   - CRASHED: exits were recorded, as always.
//
// Without floors the OS's view carries the verdict alone, and Kept.NotYet
// says why. An empty kept leaves r as it is.
func (r Report) WithKept(kept Series, ctx Context, cfg Config) (Report, error) {
	if len(kept) == 0 {
		return r, nil
	}
	k := &Kept{Signal: rundir.SignalLiveHeap, OSView: r.CarriedBy}
	r.Kept = k
	floors, th, why := Floors(kept, cfg)
	k.Teeth = th
	if why != "" {
		k.NotYet = why
		return r, nil
	}
	k.Floors = len(floors)
	fr, err := Judge(floors, ctx, cfg)
	if err != nil {
		return Report{}, fmt.Errorf("floors of %s: %w", rundir.SignalLiveHeap, err)
	}
	fr.Signal = FloorsSignal(rundir.SignalLiveHeap)
	r.Signals = append(slices.Clip(r.Signals), fr)
	sys := r.Result
	r.Result = fr
	r.CarriedBy = fr.Signal
	r.Verdict, r.Reason = classify(fr, sys)
	return r, nil
}

// SampledSignal is the signal of samples.jsonl that carries the verdict
// beside the live heap: the OS's view when the live heap's floors carry it
// (the floors are the live heap, no column of their own), else CarriedBy.
func (r Report) SampledSignal() string {
	if k := r.Kept; k != nil && r.CarriedBy == FloorsSignal(k.Signal) {
		return k.OSView
	}
	return r.CarriedBy
}

// OSView is the judged signal a verdict on kept memory has beside it (the
// OS's view of the process's memory); nil without one.
func (r Report) OSView() *Result {
	if r.Kept == nil {
		return nil
	}
	for i := range r.Signals {
		if r.Signals[i].Signal == r.Kept.OSView {
			return &r.Signals[i]
		}
	}
	return nil
}

// classify is the verdict on kept memory k (the floors) beside the OS's
// view sys (rss_anon), and its reason. An exit or an OOM sawtooth in the
// OS's view decides as it would alone: the floors cannot see a process
// killed for memory.
func classify(k, sys Result) (Verdict, string) {
	osText := func() string {
		return fmt.Sprintf("%s %s %.1f MiB/hour (CI %.1f to %.1f)", sys.Signal, osVerb(sys), sys.SlopeMiBPerHour, sys.SlopeCIMiBPerHour[0], sys.SlopeCIMiBPerHour[1])
	}
	switch {
	case sys.Verdict == Crashed:
		return Crashed, sys.Reason
	case k.Verdict == Crashed:
		return Crashed, k.Reason
	case sys.OOMSawtooth:
		return Leak, sys.Reason
	case k.Verdict == Leak:
		return Leak, fmt.Sprintf("what it keeps grows: the live heap's floors, %s; %s", k.Reason, osText())
	case k.Verdict == Pass && sys.Verdict == Leak:
		return Retained, fmt.Sprintf("%s while the live heap's floors are flat (%.1f MiB/hour, CI %.1f to %.1f): the allocator or the runtime keeps pages the heap freed (fragmentation, arenas, pages not returned), or memory outside the heap grows (cgo, mmap, stacks)",
			osText(), k.SlopeMiBPerHour, k.SlopeCIMiBPerHour[0], k.SlopeCIMiBPerHour[1])
	case k.Verdict == Pass:
		return Pass, fmt.Sprintf("what it keeps is flat: the live heap's floors, %s; %s", k.Reason, osText())
	}
	return Inconclusive, fmt.Sprintf("the live heap's floors cannot tell yet: %s; %s", k.Reason, osText())
}

// osVerb says how the OS's view moves, by its own verdict.
func osVerb(r Result) string {
	switch r.Verdict {
	case Leak:
		return "grows"
	case Pass:
		return "is flat at"
	}
	return "is not yet clear at"
}

// LiveKept follows a live heap as it is sampled and keeps its floors for
// the live view, in bounded memory: until teeth are found it keeps the
// last maxRecent samples to look for them; then it keeps each window's
// lowest sample as the window closes, at most maxLiveFloors of them (every
// other one is dropped when they fill: floors, unlike samples, are not
// averaged). Not safe for concurrent use.
type LiveKept struct {
	cfg    Config
	recent []Point // before teeth are found: the latest samples, oldest first
	teeth  stats.Teeth
	last   float64 // the latest sample's time: older ones are dropped
	// The window being filled once teeth are found: it ends at next, its
	// lowest sample so far is low, of n samples.
	next   float64
	low    Point
	n      int
	floors Series
}

// maxRecent bounds the samples LiveKept looks for teeth in: two hours at
// 10-s samples, more than the widest floor window's four teeth.
// maxLiveFloors bounds the floors it keeps: at one a few minutes, days.
const (
	maxRecent     = 720
	maxLiveFloors = 1024
)

// NewLiveKept returns a LiveKept whose floor windows are bounded as cfg's
// judge bounds them (see Floors).
func NewLiveKept(cfg Config) *LiveKept {
	return &LiveKept{cfg: cfg.withDefaults(), last: math.Inf(-1)}
}

// keep adds a floor, halving the floors kept when they are full.
func (k *LiveKept) keep(f Point) {
	if len(k.floors) >= maxLiveFloors {
		half := k.floors[:0]
		for i, p := range k.floors {
			if i%2 == 1 {
				half = append(half, p)
			}
		}
		k.floors = half
	}
	k.floors = append(k.floors, f)
}

// Add records a live-heap sample; samples must come in time order.
func (k *LiveKept) Add(p Point) {
	if p.T <= k.last {
		return
	}
	k.last = p.T
	if k.teeth.Found() {
		k.step(p)
		return
	}
	if len(k.recent) == maxRecent {
		k.recent = append(k.recent[:0], k.recent[1:]...)
	}
	k.recent = append(k.recent, p)
	s := Series(k.recent)
	t, y := s.columns()
	th := stats.FindFastTeeth(t, y, t[0], t[len(t)-1], maxFloorWindow(k.cfg))
	if !th.Found() {
		k.teeth = th // how many drops so far, and their period when there are enough
		return
	}
	// Teeth: the floors of the whole windows so far, then one at a time.
	k.teeth = th
	for _, f := range floorsOf(s, th) {
		k.keep(f)
	}
	k.next = max(t[0], th.FirstDropS)
	for k.next <= t[len(t)-1] {
		k.next += th.WindowS
	}
	// The samples of the window still open.
	for _, q := range k.recent {
		if q.T >= k.next-th.WindowS {
			k.note(q)
		}
	}
	k.recent = nil
}

// step adds p once teeth are known: it closes every window that ended
// before p (a window of one sample is a gap, no floor) and notes p in its
// own.
func (k *LiveKept) step(p Point) {
	if p.T >= k.next {
		if k.n >= 2 {
			k.keep(k.low)
		}
		k.n = 0
		for k.next <= p.T {
			k.next += k.teeth.WindowS
		}
	}
	k.note(p)
}

func (k *LiveKept) note(p Point) {
	if k.n == 0 || p.Bytes < k.low.Bytes {
		k.low = p
	}
	k.n++
}

// KeptView is the live verdict on what the process keeps.
type KeptView struct {
	// Floors is the floors' own judgement so far (their slope and
	// interval); Verdict and Reason are the class beside the OS's view
	// (see Report.WithKept), with the minutes still needed.
	Floors          Result
	Verdict         Verdict
	Reason          string
	NeedMoreMinutes *float64
	// NotYet says why there is no verdict on the floors yet; the rest is
	// then unset.
	NotYet string
}

// Judge judges the floors so far beside sys, the OS's view's live result.
func (k *LiveKept) Judge(sys Result, ctx Context) KeptView {
	if why := teethWhy(k.teeth, maxFloorWindow(k.cfg)); why != "" {
		return KeptView{NotYet: why}
	}
	if len(k.floors) < 2 {
		return KeptView{NotYet: fewFloors}
	}
	fr, err := Judge(k.floors, ctx, k.cfg)
	if err != nil {
		return KeptView{NotYet: "floors not judged: " + err.Error()}
	}
	v := KeptView{Floors: fr}
	v.Verdict, v.Reason = classify(fr, sys)
	if v.Verdict == Inconclusive {
		v.NeedMoreMinutes = fr.NeedMoreMinutes
	}
	return v
}

// Goroutine gates: growth slower than MinGoroutinesPerHour, or than
// GoroutineLevelShare of the level an hour, is never called a leak. A
// goroutine costs a stack of a few KiB and pins what it references; a
// relay running a hundred thousand of them moves by more than 60 an hour
// with its load.
// Growth of StrongGoroutinesPerHour (or five times the gate, when that is
// more) is called early, as strong memory growth is.
const (
	MinGoroutinesPerHour    = 60
	GoroutineLevelShare     = 0.02
	StrongGoroutinesPerHour = 300
)

// WithGoroutines judges the goroutine count g (as Bytes) beside r's memory
// verdict, with the trend test memory has and the goroutine gates. The
// count has almost none of memory's noise, so a leak that keeps a
// goroutine per event shows in it long before the heap's floors move: a
// LEAK on the goroutines makes the run's verdict LEAK (a crash stays
// CRASHED, and a LEAK on memory stays one). An empty g leaves r as it is.
func (r Report) WithGoroutines(g Series, ctx Context, cfg Config) (Report, error) {
	if len(g) < 2 {
		return r, nil
	}
	ys := make([]float64, len(g))
	scaled := make(Series, len(g))
	for i, p := range g {
		ys[i] = p.Bytes
		scaled[i] = Point{T: p.T, Bytes: p.Bytes * mib} // so that the judge's MiB are goroutines
	}
	gc := cfg
	gc.MinSlopeMiBPerHour = max(MinGoroutinesPerHour, GoroutineLevelShare*stats.Median(ys))
	gc.StrongSlopeMiBPerHour = max(StrongGoroutinesPerHour, 5*gc.MinSlopeMiBPerHour)
	gr, err := Judge(scaled, Context{Exits: ctx.Exits}, gc)
	if err != nil {
		return Report{}, fmt.Errorf("goroutines: %w", err)
	}
	gr.Signal = rundir.Goroutines
	gr.Reason = strings.ReplaceAll(gr.Reason, " MiB/hour", " an hour") // the judge's MiB are goroutines
	r.Goroutines = &gr
	if gr.Verdict == Leak && r.Verdict != Leak && r.Verdict != Crashed {
		r.MemoryVerdict, r.MemoryReason = r.Verdict, r.Reason
		r.Verdict = Leak
		r.Reason = fmt.Sprintf("goroutines grow %.0f an hour (CI %.0f to %.0f, gate %.0f), %.0f at the end: %s; memory alone: %s, %s",
			gr.SlopeMiBPerHour, gr.SlopeCIMiBPerHour[0], gr.SlopeCIMiBPerHour[1], gr.GateMiBPerHour, gr.LevelMiB, gr.Reason, r.MemoryVerdict, r.Reason)
	}
	return r, nil
}
