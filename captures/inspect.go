package captures

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/bits"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/relaysoak/relaysoak/internal/bytesize"
)

// InspectConfig tunes Inspect. The zero value gives sensible defaults.
type InspectConfig struct {
	// MaxGaps is how many seq gaps are listed one by one (all are counted). Default 20.
	MaxGaps int
	// RateBuckets bounds the frames-per-second series: buckets start at one
	// second and double in width whenever the capture outgrows them. Default 240.
	RateBuckets int
}

// Report is what Inspect finds in a capture.
type Report struct {
	File string
	Info Info
	// Closed is true when the capture ended with its manifest and footer.
	Closed bool
	// Problem is the read error that ended the pass early (a cut-off or
	// corrupt capture); everything else describes the frames before it.
	Problem string

	Frames, Bytes int64
	Start, End    time.Time
	Kinds         map[string]int64
	// Undecodable counts frames whose header or body failed to decode;
	// DecodeError is the first such error.
	Undecodable int64
	DecodeError string

	Ops          map[string]int64            // action → ops
	Collections  map[string]map[string]int64 // collection → action → ops
	OpsPerCommit map[int]int64               // ops in a commit → commits

	Sizes       Percentiles            // frame bytes, all kinds
	SizesByKind map[string]Percentiles // frame bytes by kind
	Rate        RateStats

	Hosts    map[string]int64 // origin host → frames
	Accounts map[string]int64 // DID → frames
	Seq      SeqStats

	DIDDocs int64
	// WithoutDoc lists the accounts that have frames but no DID document, sorted.
	WithoutDoc []string
	// PDSHosts counts accounts by the PDS endpoint host their document names.
	PDSHosts map[string]int64
}

// Percentiles summarise a distribution of sizes. Percentiles come from a
// log-linear histogram (64 buckets per power of two, so within ~1.6%);
// Min, Max and Mean are exact.
type Percentiles struct {
	N                   int64
	Min, Max            int64
	Mean                float64
	P50, P90, P99, P999 int64
}

// RateStats is frames per second over the capture's arrival times.
type RateStats struct {
	Mean float64
	// Peak is the most frames that arrived within one calendar second.
	Peak int64
	// Width is the width of each bucket of Series.
	Width time.Duration
	// Series holds frames per bucket from Start on.
	Series []int64
}

// SeqStats describes the seq numbers, per origin host (each host numbers
// its own stream).
type SeqStats struct {
	Gaps       int64 // places where seq jumped forward by more than one
	Missing    int64 // seq numbers skipped over by those jumps
	Backward   int64 // frames whose seq was not above the one before (repeats, reorders)
	FirstGaps  []SeqGap
	WithoutSeq int64 // frames of kinds without a seq (#info, error, undecodable)
}

// SeqGap is one jump in a host's seq numbers.
type SeqGap struct {
	Host          string
	After, Before int64
}

// Inspect reads a capture once, streaming: memory holds one block plus the
// per-account, per-collection and per-host maps. On a cut-off or corrupt
// capture it returns the report of everything before the damage together
// with the *ReadError.
func Inspect(path string, cfg InspectConfig) (*Report, error) {
	if cfg.MaxGaps <= 0 {
		cfg.MaxGaps = 20
	}
	if cfg.RateBuckets <= 1 {
		cfg.RateBuckets = 240
	}
	rep := &Report{
		File:         path,
		Kinds:        map[string]int64{},
		Ops:          map[string]int64{},
		Collections:  map[string]map[string]int64{},
		OpsPerCommit: map[int]int64{},
		SizesByKind:  map[string]Percentiles{},
		Hosts:        map[string]int64{},
		Accounts:     map[string]int64{},
		PDSHosts:     map[string]int64{},
	}
	docs := map[string]bool{}
	r, err := Open(path, ReaderConfig{OnDIDDoc: func(did string, doc []byte) error {
		if !docs[did] {
			docs[did] = true
			if h := pdsHost(doc); h != "" {
				rep.PDSHosts[h]++
			}
		}
		return nil
	}})
	if err != nil {
		return nil, err
	}
	defer r.Close()

	var all sizeHist
	byKind := map[string]*sizeHist{}
	var rate rateSeries
	rate.max = cfg.RateBuckets
	prevSeq := map[string]int64{}
	for {
		rec, err := r.Next()
		if err == io.EOF {
			rep.Closed = true
			break
		}
		if err != nil {
			rep.Problem = err.Error()
			rep.finish(docs, &all, byKind, &rate, r)
			return rep, err
		}
		fi, derr := ParseFrame(rec.Frame)
		if derr != nil {
			rep.Undecodable++
			if rep.DecodeError == "" {
				rep.DecodeError = fmt.Sprintf("frame %d: %v", r.Frames(), derr)
			}
		}
		if rep.Frames == 0 || rec.Time.Before(rep.Start) {
			rep.Start = rec.Time
		}
		if rep.Frames == 0 || rec.Time.After(rep.End) {
			rep.End = rec.Time
		}
		rep.Frames++
		rep.Bytes += int64(len(rec.Frame))
		rep.Kinds[fi.Kind]++
		rep.Hosts[rec.Host]++
		all.add(len(rec.Frame))
		h := byKind[fi.Kind]
		if h == nil {
			h = &sizeHist{}
			byKind[fi.Kind] = h
		}
		h.add(len(rec.Frame))
		rate.add(rec.Time)
		if fi.DID != "" {
			rep.Accounts[fi.DID]++
		}
		if fi.Kind == KindCommit && derr == nil {
			rep.OpsPerCommit[len(fi.Ops)]++
			for _, op := range fi.Ops {
				rep.Ops[op.Action]++
				c := rep.Collections[op.Collection()]
				if c == nil {
					c = map[string]int64{}
					rep.Collections[op.Collection()] = c
				}
				c[op.Action]++
			}
		}
		if fi.Seq <= 0 {
			rep.Seq.WithoutSeq++
			continue
		}
		if prev, ok := prevSeq[rec.Host]; ok {
			switch {
			case fi.Seq > prev+1:
				rep.Seq.Gaps++
				rep.Seq.Missing += fi.Seq - prev - 1
				if len(rep.Seq.FirstGaps) < cfg.MaxGaps {
					rep.Seq.FirstGaps = append(rep.Seq.FirstGaps, SeqGap{Host: rec.Host, After: prev, Before: fi.Seq})
				}
			case fi.Seq <= prev:
				rep.Seq.Backward++
				continue // keep the high-water mark
			}
		}
		prevSeq[rec.Host] = fi.Seq
	}
	rep.finish(docs, &all, byKind, &rate, r)
	return rep, nil
}

func (rep *Report) finish(docs map[string]bool, all *sizeHist, byKind map[string]*sizeHist, rate *rateSeries, r *Reader) {
	rep.Info, _ = r.Info()
	rep.DIDDocs = int64(len(docs))
	for did := range rep.Accounts {
		if !docs[did] {
			rep.WithoutDoc = append(rep.WithoutDoc, did)
		}
	}
	slices.Sort(rep.WithoutDoc)
	rep.Sizes = all.percentiles()
	for k, h := range byKind {
		rep.SizesByKind[k] = h.percentiles()
	}
	rep.Rate = rate.stats(rep.Frames, rep.End.Sub(rep.Start))
}

// pdsHost digs the PDS endpoint's host out of a DID document.
func pdsHost(doc []byte) string {
	var d struct {
		Service []struct {
			ID       string `json:"id"`
			Endpoint any    `json:"serviceEndpoint"`
		} `json:"service"`
	}
	if json.Unmarshal(doc, &d) != nil {
		return ""
	}
	for _, s := range d.Service {
		if !strings.HasSuffix(s.ID, "#atproto_pds") {
			continue
		}
		if e, ok := s.Endpoint.(string); ok {
			if u, err := url.Parse(e); err == nil {
				return u.Host
			}
		}
	}
	return ""
}

// sizeHist is a log-linear histogram: exact below 128, then 64 buckets per
// power of two. 1,728 counters cover every uint32.
type sizeHist struct {
	counts   []int64
	n, sum   int64
	min, max int64
}

func sizeBucket(v uint64) int {
	if v < 128 {
		return int(v)
	}
	e := bits.Len64(v) - 7
	return 128 + (e-1)*64 + int(v>>e) - 64
}

// bucketMid is the middle of a bucket's range.
func bucketMid(i int) int64 {
	if i < 128 {
		return int64(i)
	}
	e := (i-128)/64 + 1
	m := int64((i-128)%64 + 64)
	lo, hi := m<<e, ((m+1)<<e)-1
	return (lo + hi) / 2
}

func (h *sizeHist) add(size int) {
	v := int64(size)
	i := sizeBucket(uint64(v))
	if i >= len(h.counts) {
		h.counts = append(h.counts, make([]int64, i+1-len(h.counts))...)
	}
	h.counts[i]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += v
}

func (h *sizeHist) quantile(q float64) int64 {
	rank := int64(q*float64(h.n) + 0.999999)
	rank = max(rank, 1)
	var seen int64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(max(bucketMid(i), h.min), h.max)
		}
	}
	return h.max
}

func (h *sizeHist) percentiles() Percentiles {
	if h.n == 0 {
		return Percentiles{}
	}
	return Percentiles{
		N: h.n, Min: h.min, Max: h.max, Mean: float64(h.sum) / float64(h.n),
		P50: h.quantile(0.5), P90: h.quantile(0.9), P99: h.quantile(0.99), P999: h.quantile(0.999),
	}
}

// rateSeries counts frames per time bucket with a bounded number of buckets:
// when the capture outgrows them, neighbours merge and the width doubles.
type rateSeries struct {
	start   time.Time
	width   time.Duration
	counts  []int64
	max     int
	sec     int64 // the calendar second being counted for the peak
	inSec   int64
	peak    int64
	started bool
}

func (s *rateSeries) add(t time.Time) {
	if !s.started {
		s.start, s.width, s.started = t, time.Second, true
		s.sec = t.Unix()
	}
	if sec := t.Unix(); sec != s.sec {
		s.peak = max(s.peak, s.inSec)
		s.sec, s.inSec = sec, 0
	}
	s.inSec++
	off := max(t.Sub(s.start), 0)
	i := int(off / s.width)
	for i >= s.max {
		half := (len(s.counts) + 1) / 2
		for j := range half {
			c := s.counts[2*j]
			if 2*j+1 < len(s.counts) {
				c += s.counts[2*j+1]
			}
			s.counts[j] = c
		}
		s.counts = s.counts[:half]
		s.width *= 2
		i = int(off / s.width)
	}
	for i >= len(s.counts) {
		s.counts = append(s.counts, 0)
	}
	s.counts[i]++
}

func (s *rateSeries) stats(frames int64, span time.Duration) RateStats {
	st := RateStats{Peak: max(s.peak, s.inSec), Width: s.width, Series: s.counts}
	if span > 0 {
		st.Mean = float64(frames) / span.Seconds()
	}
	return st
}

// WriteText renders the report for a person.
func (rep *Report) WriteText(out io.Writer) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("capture\t%s\n", rep.File)
	if rep.Info.Source != "" {
		p("source\t%s\n", rep.Info.Source)
	}
	switch {
	case rep.Closed:
		p("state\tclosed cleanly\n")
	default:
		p("state\tNOT CLOSED CLEANLY: %s\n", rep.Problem)
	}
	p("frames\t%d (%s of frames)\n", rep.Frames, bytesize.IEC(rep.Bytes))
	if rep.Frames > 0 {
		p("time\t%s → %s (%s)\n", rep.Start.Format(time.RFC3339Nano), rep.End.Format(time.RFC3339Nano), rep.End.Sub(rep.Start).Round(time.Millisecond))
	}
	w.Flush()

	section(out, "frames by kind")
	for _, kv := range sortedByCount(rep.Kinds) {
		s := rep.SizesByKind[kv.k]
		p("  %s\t%d\t%.1f%%\tmedian %s\tp99 %s\n", kv.k, kv.v, pct(kv.v, rep.Frames), bytesize.IEC(s.P50), bytesize.IEC(s.P99))
	}
	if rep.Undecodable > 0 {
		p("  (%d frames did not decode; first: %s)\n", rep.Undecodable, rep.DecodeError)
	}
	w.Flush()

	section(out, "ops by action")
	var ops int64
	for _, n := range rep.Ops {
		ops += n
	}
	for _, kv := range sortedByCount(rep.Ops) {
		p("  %s\t%d\t%.1f%%\n", kv.k, kv.v, pct(kv.v, ops))
	}
	commits := rep.Kinds[KindCommit]
	if commits > 0 {
		p("  ops per commit\tmean %.2f\t%s\n", float64(ops)/float64(commits), opsPerCommitLine(rep.OpsPerCommit))
	}
	w.Flush()

	section(out, "ops by collection")
	colTotals := map[string]int64{}
	for c, acts := range rep.Collections {
		for _, n := range acts {
			colTotals[c] += n
		}
	}
	for _, kv := range sortedByCount(colTotals) {
		var parts []string
		for _, a := range sortedByCount(rep.Collections[kv.k]) {
			parts = append(parts, fmt.Sprintf("%s %d", a.k, a.v))
		}
		p("  %s\t%d\t%s\n", kv.k, kv.v, strings.Join(parts, ", "))
	}
	w.Flush()

	section(out, "frame size")
	s := rep.Sizes
	p("  min %s\tp50 %s\tp90 %s\tp99 %s\tp99.9 %s\tmax %s\tmean %s\n",
		bytesize.IEC(s.Min), bytesize.IEC(s.P50), bytesize.IEC(s.P90), bytesize.IEC(s.P99), bytesize.IEC(s.P999), bytesize.IEC(s.Max), bytesize.IEC(int64(s.Mean)))
	w.Flush()

	section(out, "frames per second")
	p("  mean %.1f/s over %s\tpeak %d within one calendar second\n", rep.Rate.Mean, rep.End.Sub(rep.Start).Round(time.Millisecond), rep.Rate.Peak)
	w.Flush()
	writeRateChart(out, rep.Rate)

	section(out, "hosts")
	for _, kv := range sortedByCount(rep.Hosts) {
		p("  %s\t%d frames\n", kv.k, kv.v)
	}
	w.Flush()

	section(out, "accounts")
	p("  %d accounts with frames; most active:\n", len(rep.Accounts))
	for i, kv := range sortedByCount(rep.Accounts) {
		if i == 10 {
			break
		}
		p("  %s\t%d frames\n", kv.k, kv.v)
	}
	w.Flush()

	section(out, "seq")
	p("  %d gaps (%d seq numbers missing), %d frames not above the previous seq, %d frames without a seq\n",
		rep.Seq.Gaps, rep.Seq.Missing, rep.Seq.Backward, rep.Seq.WithoutSeq)
	for _, g := range rep.Seq.FirstGaps {
		p("  %s\tafter %d\tnext %d\t(%d missing)\n", g.Host, g.After, g.Before, g.Before-g.After-1)
	}
	if n := rep.Seq.Gaps - int64(len(rep.Seq.FirstGaps)); n > 0 {
		p("  … and %d more gaps\n", n)
	}
	w.Flush()

	section(out, "DID documents")
	p("  %d documents; %d accounts with frames have none\n", rep.DIDDocs, len(rep.WithoutDoc))
	for i, did := range rep.WithoutDoc {
		if i == 20 {
			p("  … and %d more\n", len(rep.WithoutDoc)-20)
			break
		}
		p("  without document\t%s\n", did)
	}
	for i, kv := range sortedByCount(rep.PDSHosts) {
		if i == 10 {
			p("  … %d PDS hosts in all\n", len(rep.PDSHosts))
			break
		}
		p("  PDS %s\t%d accounts\n", kv.k, kv.v)
	}
	return w.Flush()
}

func section(w io.Writer, title string) { fmt.Fprintf(w, "\n%s\n", title) }

// writeRateChart draws at most 24 rows, merging buckets as needed.
func writeRateChart(out io.Writer, r RateStats) {
	if len(r.Series) == 0 {
		return
	}
	per := (len(r.Series) + 23) / 24
	var rows []int64
	for i := 0; i < len(r.Series); i += per {
		var c int64
		for _, v := range r.Series[i:min(i+per, len(r.Series))] {
			c += v
		}
		rows = append(rows, c)
	}
	width := r.Width * time.Duration(per)
	top := slices.Max(rows)
	for i, c := range rows {
		rate := float64(c) / width.Seconds()
		bar := 0
		if top > 0 {
			bar = int(40 * c / top)
		}
		fmt.Fprintf(out, "  +%-8s %10.1f/s  %s\n", (width * time.Duration(i)).String(), rate, strings.Repeat("█", bar))
	}
}

func opsPerCommitLine(m map[int]int64) string {
	keys := slices.Sorted(maps.Keys(m))
	var parts []string
	for i, k := range keys {
		if i == 8 {
			parts = append(parts, "…")
			break
		}
		parts = append(parts, fmt.Sprintf("%d ops: %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

type kv struct {
	k string
	v int64
}

func sortedByCount(m map[string]int64) []kv {
	out := make([]kv, 0, len(m))
	for k, v := range m {
		out = append(out, kv{k, v})
	}
	slices.SortFunc(out, func(a, b kv) int {
		if c := cmp.Compare(b.v, a.v); c != 0 {
			return c
		}
		return cmp.Compare(a.k, b.k)
	})
	return out
}

func pct(n, of int64) float64 {
	if of == 0 {
		return 0
	}
	return 100 * float64(n) / float64(of)
}
