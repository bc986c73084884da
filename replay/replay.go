package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"net/url"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relaysoak/relaysoak/captures"
	"github.com/relaysoak/relaysoak/fakepds"
)

// Fleet is what a replay needs of the fake network (*fakepds.Fleet).
type Fleet interface {
	HostNames() []string
	// Perform does one event (a fresh signed commit on host i, or a churn
	// event) and says how many frames it emitted.
	Perform(ctx context.Context, ev fakepds.Event, i int, rng *rand.Rand) (int, error)
	// PublishFrame publishes a captured frame on host i, seq rewritten.
	PublishFrame(i int, frame []byte) (int64, error)
	// HostImported hosts a captured identity on host i (doc nil: made up).
	HostImported(did string, doc []byte, i int) (madeUp bool, err error)
	// Outage takes host i down for d; HostDown says whether it is down.
	Outage(i int, d time.Duration) error
	HostDown(i int) bool
}

// Mode is what a replay sends.
type Mode string

const (
	// Rehosted: the fleet's own accounts write fresh, validly signed
	// commits for as long as the run lasts (the capture, if any, gave the
	// fleet its Shape beforehand: see ProfileFromCapture).
	Rehosted Mode = "rehosted"
	// Verbatim: the capture's frames as recorded, seq rewritten, each
	// account's frames always from the same fleet host, which hosts its
	// identity. Plays the capture once (then goes on re-hosted with
	// Config.ThenRehosted).
	Verbatim Mode = "verbatim"
)

// Config of a replay. Zero values are the defaults documented per field.
type Config struct {
	// Mode (default Rehosted).
	Mode Mode
	// Capture is the capture file; required in verbatim mode, and for
	// capture host weights. (A run's record names the capture as given,
	// not this file, which may be a temporary import.)
	Capture string `json:"-"`
	// Rate is the target in frames/s across all hosts (default 700, the
	// live network's commit rate at the time of the shared capture).
	Rate float64
	// RampUp is a linear ramp from 0 to Rate at the start (default none).
	RampUp time.Duration
	// Duration ends the run (default: rehosted runs until ctx ends;
	// verbatim runs to the capture's end).
	Duration time.Duration
	// ThenRehosted, in verbatim mode, goes on with re-hosted traffic once
	// the capture is played, on the same clock and schedule, until
	// Duration: the real frames first, then as long a run as asked.
	ThenRehosted bool
	// Churn is the rate of each event besides commits in re-hosted
	// traffic (nil: DefaultChurn; NoChurn: commits only).
	Churn *Churn
	// ChurnPerSecond reads Churn's rates as events per second, paced on a
	// clock of their own, instead of per 1,000 frames: raising the frame
	// rate then leaves DID resolutions where they were, as an attribution
	// plan needs.
	ChurnPerSecond bool `json:",omitempty"`
	// Stages vary frames, churn and outages over the run (an attribution
	// plan's phases); none is the baseline throughout.
	Stages []Stage `json:",omitempty"`
	// Speed > 0 plays a verbatim capture with its own timing, Speed times
	// as fast (2: twice as fast), instead of at Rate.
	Speed float64
	// Weights spread the frames over the hosts (default Zipf, DefaultZipfS).
	Weights Weights
	// Burst injects K× rate spikes (default none).
	Burst Burst
	// Outages injects host churn (default none).
	Outages Outages
	// Window is the reporting window (default 60 s); MaxWindows bounds the
	// windows kept in the report (default 1,440: a day of minutes).
	Window     time.Duration
	MaxWindows int
	// Workers write in parallel in re-hosted mode (default GOMAXPROCS).
	Workers int
	// Seed makes host picks repeatable (default 1).
	Seed int64
	// OnWindow, when set, receives each window as it closes (progress).
	OnWindow func(Window) `json:"-"`
}

// Outages are host churn: now and then a host goes down for Length
// (subscribers dropped, subscribeRepos refused). A relay gives a host up
// after failing to dial it for GiveUp; outages at least that long are
// reported as abandoned hosts, and the schedule stops writing to them
// (what it wrote would be lost).
type Outages struct {
	// Every is the mean time between outages (exponentially distributed);
	// 0 means none.
	Every time.Duration
	// Length of each outage (default 60 s).
	Length time.Duration
	// GiveUp is the relay's give-up time (default 3 min, indigo's ~16
	// failed dials).
	GiveUp time.Duration
}

// Window is the frames sent in one reporting window.
type Window struct {
	Index      int
	Start, End time.Duration // from the start of the run
	Frames     int64
	Target     float64 // frames the schedule made due in the window
	Rate       float64 // achieved, frames/s
	Lateness   Lateness
}

// Report is what a replay did.
type Report struct {
	Mode    Mode
	Rate    float64 // the target
	Elapsed time.Duration
	Frames  int64 // frames published
	// ByKind counts verbatim frames by kind (re-hosted: see the fleet's Stats).
	ByKind map[string]int64
	// Windows are the last MaxWindows windows; WindowsDropped the older ones.
	Windows        []Window
	WindowsDropped int
	Lateness       Lateness
	// Imported identities hosted; MadeUp of them had no document in the
	// capture and got one made up: their commits cannot verify, so they
	// are counted apart (MadeUpFrames, MadeUpCommits).
	Imported, MadeUp            int
	MadeUpFrames, MadeUpCommits int64
	// Skipped frames the fleet cannot publish (no seq: #info, error frames).
	Skipped int64
	// Outages injected; Abandoned hosts (outages ≥ GiveUp).
	Outages   int
	Abandoned []string
	// Errors from writes; the first few verbatim.
	Errors      int64
	FirstErrors []string
	// CaptureEnded: a verbatim run played the whole capture.
	CaptureEnded bool
}

// Replayer runs one replay. Create with New, then Run once.
type Replayer struct {
	cfg   Config
	fleet Fleet
	hosts []string
	sched Pacer // frames: the Schedule, staged
	churn Pacer // churn events per second, staged; nil unless ChurnPerSecond
	pick  *alias

	start time.Time
	win   *windows
	sent  atomic.Int64 // frames published on the frames' schedule
	extra atomic.Int64 // frames of churn paced on its own clock
	late  lateness

	mu        sync.Mutex
	rep       Report
	abandoned map[int]bool
}

// Normalize checks cfg and fills in its defaults, as New does, without a
// fleet: a run's settings are known good, and can be recorded, before
// anything starts.
func (cfg Config) Normalize() (Config, error) {
	if cfg.Mode == "" {
		cfg.Mode = Rehosted
	}
	if cfg.Mode != Rehosted && cfg.Mode != Verbatim {
		return cfg, fmt.Errorf("replay: mode must be %q or %q, got %q", Rehosted, Verbatim, cfg.Mode)
	}
	if cfg.Mode == Verbatim && cfg.Capture == "" {
		return cfg, errors.New("replay: verbatim mode needs a capture")
	}
	if cfg.Rate == 0 {
		cfg.Rate = 700
	}
	if cfg.Speed < 0 {
		return cfg, fmt.Errorf("replay: speed must be positive, got %g", cfg.Speed)
	}
	var err error
	if cfg.Weights, err = cfg.Weights.withDefaults(); err != nil {
		return cfg, err
	}
	if cfg.Weights.Kind == "capture" && cfg.Capture == "" {
		return cfg, errors.New("replay: capture host weights need a capture")
	}
	if cfg.Burst, err = cfg.Burst.withDefaults(); err != nil {
		return cfg, err
	}
	if cfg.Outages.Length <= 0 {
		cfg.Outages.Length = time.Minute
	}
	if cfg.Outages.GiveUp <= 0 {
		cfg.Outages.GiveUp = 3 * time.Minute
	}
	if cfg.Window <= 0 {
		cfg.Window = time.Minute
	}
	if cfg.MaxWindows <= 0 {
		cfg.MaxWindows = 1440
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	if cfg.Churn == nil {
		c := DefaultChurn
		cfg.Churn = &c
	}
	if err := cfg.Churn.validate(cfg.ChurnPerSecond); err != nil {
		return cfg, err
	}
	if err := validateStages(cfg.Stages); err != nil {
		return cfg, err
	}
	if cfg.ThenRehosted && (cfg.Mode != Verbatim || cfg.Speed > 0) {
		return cfg, errors.New("replay: ThenRehosted follows a verbatim capture played at Rate (Mode verbatim, Speed 0), so the schedule runs on unbroken")
	}
	if err := (Schedule{Target: cfg.Rate, RampUp: cfg.RampUp, Burst: cfg.Burst}).validate(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// New checks cfg (Normalize) and prepares its replay on fleet.
func New(fleet Fleet, cfg Config) (*Replayer, error) {
	cfg, err := cfg.Normalize()
	if err != nil {
		return nil, err
	}
	r := &Replayer{cfg: cfg, fleet: fleet, hosts: fleet.HostNames(), late: newLateness(), abandoned: map[int]bool{}}
	if len(r.hosts) == 0 {
		return nil, errors.New("replay: the fleet has no hosts")
	}
	r.sched = staged{base: Schedule{Target: cfg.Rate, RampUp: cfg.RampUp, Burst: cfg.Burst}, stages: cfg.Stages, of: stageFrames}
	if total := cfg.Churn.total(); cfg.ChurnPerSecond && total > 0 {
		r.churn = staged{base: Schedule{Target: total, RampUp: cfg.RampUp}, stages: cfg.Stages, of: stageChurn}
	}
	r.rep = Report{Mode: cfg.Mode, Rate: cfg.Rate, ByKind: map[string]int64{}}
	r.win = &windows{r: r, next: cfg.Window}
	return r, nil
}

// Run replays until the capture ends (verbatim), Duration passes or ctx
// ends, and reports. Setting up (hosting a capture's identities) happens
// before the clock starts.
func (r *Replayer) Run(ctx context.Context) (Report, error) {
	var weights []float64
	var byPDS map[string]int // capture weights: real PDS host → fleet host
	switch r.cfg.Weights.Kind {
	case "uniform":
		weights = UniformWeights(len(r.hosts))
	case "zipf":
		weights = ZipfWeights(len(r.hosts), r.cfg.Weights.S)
	case "capture":
		var err error
		if weights, byPDS, err = captureWeights(r.cfg.Capture, len(r.hosts)); err != nil {
			return r.Report(), err
		}
	}
	var err error
	if r.pick, err = newAlias(weights); err != nil {
		return r.Report(), err
	}
	if r.cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.cfg.Duration)
		defer cancel()
	}
	switch r.cfg.Mode {
	case Verbatim:
		err = r.runVerbatim(ctx, byPDS)
		if err == nil && r.cfg.ThenRehosted && ctx.Err() == nil {
			err = r.runRehosted(ctx)
		}
	default:
		err = r.runRehosted(ctx)
	}
	if r.started() {
		r.win.tick(r.clock(), true)
	}
	return r.Report(), err
}

// Config is the replay's configuration with every default filled in: what
// a run's record must hold to repeat it.
func (r *Replayer) Config() Config { return r.cfg }

// Report is a snapshot; Run returns the final one.
func (r *Replayer) Report() Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep := r.rep
	rep.Frames = r.sent.Load() + r.extra.Load()
	if !r.start.IsZero() {
		rep.Elapsed = time.Since(r.start)
	}
	rep.Lateness = r.late.run.Summary()
	rep.Windows = append([]Window(nil), r.rep.Windows...)
	rep.Abandoned = append([]string(nil), r.rep.Abandoned...)
	rep.FirstErrors = append([]string(nil), r.rep.FirstErrors...)
	rep.ByKind = make(map[string]int64, len(r.rep.ByKind))
	for k, v := range r.rep.ByKind {
		rep.ByKind[k] = v
	}
	return rep
}

func (r *Replayer) noteError(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rep.Errors++
	if len(r.rep.FirstErrors) < 10 {
		r.rep.FirstErrors = append(r.rep.FirstErrors, err.Error())
	}
}

// windows closes reporting windows on time; call it often from the pacing
// loop with the elapsed time.
type windows struct {
	r        *Replayer
	next     time.Duration
	index    int
	lastSent int64
}

func (w *windows) tick(el time.Duration, final bool) {
	for el >= w.next || final {
		end := min(w.next, el)
		start := w.next - w.r.cfg.Window
		if end <= start {
			return
		}
		sent := w.r.sent.Load()
		win := Window{Index: w.index, Start: start, End: end, Frames: sent - w.lastSent,
			Target: w.r.sched.Due(end) - w.r.sched.Due(start), Lateness: w.r.late.window.Take()}
		win.Rate = float64(win.Frames) / (end - start).Seconds()
		w.lastSent = sent
		w.index++
		w.next += w.r.cfg.Window
		w.r.mu.Lock()
		w.r.rep.Windows = append(w.r.rep.Windows, win)
		if len(w.r.rep.Windows) > w.r.cfg.MaxWindows {
			w.r.rep.Windows = append(w.r.rep.Windows[:0], w.r.rep.Windows[1:]...)
			w.r.rep.WindowsDropped++
		}
		w.r.mu.Unlock()
		if w.r.cfg.OnWindow != nil {
			w.r.cfg.OnWindow(win)
		}
		if final {
			return
		}
	}
}

// pickHost picks a host by weight, avoiding hosts that are down or
// abandoned while there is another to take.
func (r *Replayer) pickHost(rng *rand.Rand) int {
	var hi int
	for try := 0; try < 8; try++ {
		hi = r.pick.pick(rng)
		if !r.fleet.HostDown(hi) && !r.isAbandoned(hi) {
			return hi
		}
	}
	return hi
}

func (r *Replayer) isAbandoned(hi int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.abandoned[hi]
}

// runOutages injects host churn until ctx ends.
func (r *Replayer) runOutages(ctx context.Context, rng *rand.Rand) {
	o := r.cfg.Outages
	if o.Every <= 0 {
		return
	}
	for {
		// The stage in force when the wait starts sets its mean: close
		// enough when stages are long against Every.
		m := stageMultiplier(r.cfg.Stages, stageOutages, r.clock())
		wait := time.Duration(rng.ExpFloat64() * float64(o.Every) / m)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		hi := r.pick.pick(rng) // busy hosts fail too, in proportion
		if r.isAbandoned(hi) {
			continue
		}
		if err := r.fleet.Outage(hi, o.Length); err != nil {
			r.noteError(err)
			continue
		}
		r.mu.Lock()
		r.rep.Outages++
		if o.Length >= o.GiveUp {
			r.abandoned[hi] = true
			r.rep.Abandoned = append(r.rep.Abandoned, r.hosts[hi])
		}
		r.mu.Unlock()
	}
}

type ticket struct {
	ev   fakepds.Event
	host int
	due  time.Time
	own  bool // churn on its own clock: its frames are not the frames' schedule's
}

// runRehosted hands host picks to writers at the schedule's pace.
func (r *Replayer) runRehosted(ctx context.Context) error {
	workers := r.cfg.Workers
	tickets := make(chan ticket, 4*workers)
	var inflight atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(r.cfg.Seed), uint64(w)+100))
			for t := range tickets {
				n, err := r.fleet.Perform(ctx, t.ev, t.host, rng)
				if err != nil && ctx.Err() == nil {
					r.noteError(err)
				}
				now := time.Now()
				for i := 0; i < n; i++ {
					r.late.observe(now.Sub(t.due))
				}
				if t.own {
					r.extra.Add(int64(n))
					continue
				}
				r.sent.Add(int64(n))
				inflight.Add(-1)
			}
		}(w)
	}
	defer wg.Wait()
	defer close(tickets)

	rng := rand.New(rand.NewPCG(uint64(r.cfg.Seed), 1))
	if !r.started() {
		r.startClock()
	}
	octx, ocancel := context.WithCancel(ctx)
	defer ocancel()
	go r.runOutages(octx, rand.New(rand.NewPCG(uint64(r.cfg.Seed), 2)))
	win := r.win
	var churned int64 // churn events handed out on their own clock
	for {
		el := r.clock()
		win.tick(el, false)
		due, rate := r.sched.Due(el), r.sched.Rate(el)
		// Frames still being written count as one each; a write that emits
		// more (a first #sync) is paid back by the next due frames.
		for n := r.sent.Load() + inflight.Load(); float64(n) < due; n++ {
			inflight.Add(1)
			ev := fakepds.EventCommit
			if r.churn == nil {
				ev = r.cfg.Churn.pick(rng)
			}
			t := ticket{ev: ev, host: r.pickHost(rng), due: r.start.Add(scheduledAt(n, el, due, rate))}
			select {
			case tickets <- t:
			case <-ctx.Done():
				inflight.Add(-1)
				return nil
			}
		}
		if r.churn != nil {
			cdue, crate := r.churn.Due(el), r.churn.Rate(el)
			for ; float64(churned) < cdue; churned++ {
				t := ticket{ev: r.cfg.Churn.pickChurn(rng), host: r.pickHost(rng), due: r.start.Add(scheduledAt(churned, el, cdue, crate)), own: true}
				select {
				case tickets <- t:
				case <-ctx.Done():
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(nextWake(r.sched, el, r.sent.Load()+inflight.Load())):
		}
	}
}

// clock is the run's elapsed time, held at Duration once it has passed:
// the context's deadline fires a moment late, and nothing is due, and no
// window opens, after the end of a timed run.
func (r *Replayer) clock() time.Duration {
	el := time.Since(r.start)
	if r.cfg.Duration > 0 && el > r.cfg.Duration {
		return r.cfg.Duration
	}
	return el
}

func (r *Replayer) startClock() {
	r.mu.Lock()
	r.start = time.Now()
	r.mu.Unlock()
}

func (r *Replayer) started() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.start.IsZero()
}

// runVerbatim hosts the capture's identities, then publishes its frames.
func (r *Replayer) runVerbatim(ctx context.Context, byPDS map[string]int) error {
	// Hosts of accounts, decided once: an account's frames always come from
	// the same host, the one its document names.
	hostOf := map[string]int{}
	madeUp := map[string]bool{}
	assign := func(did string) int {
		h := fnv.New64a()
		h.Write([]byte(did))
		return r.pick.pick(rand.New(rand.NewPCG(h.Sum64(), uint64(r.cfg.Seed))))
	}
	err := captures.ReadDIDDocs(r.cfg.Capture, func(did string, doc []byte) error {
		hi := -1
		if byPDS != nil {
			if i, ok := byPDS[pdsHost(doc)]; ok {
				hi = i
			}
		}
		if hi < 0 {
			hi = assign(did)
		}
		if _, err := r.fleet.HostImported(did, doc, hi); err != nil {
			return fmt.Errorf("replay: capture %s: %w", r.cfg.Capture, err)
		}
		hostOf[did] = hi
		return nil
	})
	if err != nil {
		return err
	}
	rd, err := captures.Open(r.cfg.Capture, captures.ReaderConfig{})
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	defer rd.Close()
	r.mu.Lock()
	r.rep.Imported = len(hostOf)
	r.mu.Unlock()

	r.startClock()
	octx, ocancel := context.WithCancel(ctx)
	defer ocancel()
	go r.runOutages(octx, rand.New(rand.NewPCG(uint64(r.cfg.Seed), 2)))
	win := r.win
	var first time.Time
	var n int64
	for {
		rec, err := rd.Next()
		if err == io.EOF {
			r.mu.Lock()
			r.rep.CaptureEnded = true
			r.mu.Unlock()
			return nil
		}
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		slot, err := fakepds.LocateSeq(rec.Frame)
		if err != nil {
			r.mu.Lock()
			r.rep.Skipped++
			r.mu.Unlock()
			continue
		}
		hi, ok := hostOf[slot.DID]
		if !ok {
			hi = assign(slot.DID)
			if _, err := r.fleet.HostImported(slot.DID, nil, hi); err != nil {
				return fmt.Errorf("replay: capture %s frame %d: %w", r.cfg.Capture, rd.Frames(), err)
			}
			hostOf[slot.DID] = hi
			madeUp[slot.DID] = true
			r.mu.Lock()
			r.rep.Imported++
			r.rep.MadeUp++
			r.mu.Unlock()
		}
		// When is this frame due?
		var due time.Duration
		if r.cfg.Speed > 0 {
			if first.IsZero() {
				first = rec.Time
			}
			due = time.Duration(float64(rec.Time.Sub(first)) / r.cfg.Speed)
		} else {
			due = r.dueOf(n)
		}
		for {
			el := time.Since(r.start)
			win.tick(el, false)
			if el >= due {
				break
			}
			wait := min(due-el, 10*time.Millisecond)
			if wait < 200*time.Microsecond && el+wait >= due {
				break // close enough: batching beats sleeping so short
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		if _, err := r.fleet.PublishFrame(hi, rec.Frame); err != nil {
			r.noteError(fmt.Errorf("capture %s frame %d: %w", r.cfg.Capture, rd.Frames(), err))
			continue
		}
		r.late.observe(time.Since(r.start) - due)
		r.sent.Add(1)
		n++
		r.mu.Lock()
		r.rep.ByKind[slot.Kind]++
		if madeUp[slot.DID] {
			r.rep.MadeUpFrames++
			if slot.Kind == captures.KindCommit {
				r.rep.MadeUpCommits++
			}
		}
		r.mu.Unlock()
	}
}

// dueOf is when the schedule makes frame n (0-based) due: the inverse of
// Due, by bisection (Due is monotone).
func (r *Replayer) dueOf(n int64) time.Duration {
	target := float64(n + 1)
	lo, hi := time.Duration(0), time.Second
	for r.sched.Due(hi) < target {
		lo, hi = hi, 2*hi
	}
	for hi-lo > time.Microsecond {
		mid := lo + (hi-lo)/2
		if r.sched.Due(mid) < target {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi
}

// pdsHost is the host of a DID document's #atproto_pds endpoint.
func pdsHost(doc []byte) string {
	var d struct {
		Service []struct {
			ID              string `json:"id"`
			ServiceEndpoint string `json:"serviceEndpoint"`
		} `json:"service"`
	}
	if json.Unmarshal(doc, &d) != nil {
		return ""
	}
	for _, s := range d.Service {
		if strings.HasSuffix(s.ID, "#atproto_pds") {
			if u, err := url.Parse(s.ServiceEndpoint); err == nil {
				return u.Hostname()
			}
		}
	}
	return ""
}

// captureWeights weighs fleet host i by the frames of the capture's i-th
// busiest PDS (by its accounts' documents; frames of accounts without one
// count for the host they were recorded from). It returns the map from the
// capture's PDS hosts to fleet hosts, for verbatim mode to keep each
// account with its PDS's stand-in.
func captureWeights(path string, hosts int) ([]float64, map[string]int, error) {
	pdsOf := map[string]string{}
	if err := captures.ReadDIDDocs(path, func(did string, doc []byte) error {
		pdsOf[did] = pdsHost(doc)
		return nil
	}); err != nil {
		return nil, nil, fmt.Errorf("replay: capture weights: %w", err)
	}
	rd, err := captures.Open(path, captures.ReaderConfig{})
	if err != nil {
		return nil, nil, fmt.Errorf("replay: capture weights: %w", err)
	}
	defer rd.Close()
	count := map[string]int64{}
	for {
		rec, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("replay: capture weights: %w", err)
		}
		slot, err := fakepds.LocateSeq(rec.Frame)
		if err != nil {
			continue
		}
		p := pdsOf[slot.DID]
		if p == "" {
			p = rec.Host
		}
		count[p]++
	}
	if len(count) == 0 {
		return nil, nil, fmt.Errorf("replay: capture weights: %s has no frames with a seq", path)
	}
	names := make([]string, 0, len(count))
	for p := range count {
		names = append(names, p)
	}
	sort.Slice(names, func(i, j int) bool {
		return count[names[i]] > count[names[j]] || count[names[i]] == count[names[j]] && names[i] < names[j]
	})
	w := make([]float64, hosts)
	byPDS := map[string]int{}
	for i, p := range names {
		w[i%hosts] += float64(count[p]) // more PDSes than hosts: they share
		byPDS[p] = i % hosts
	}
	return w, byPDS, nil
}

var _ Fleet = (*fakepds.Fleet)(nil)
