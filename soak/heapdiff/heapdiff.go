// Package heapdiff tells where a Go process's heap grew: it fetches heap
// profiles from the process's /debug/pprof/heap (indigo's relay serves it on
// its metrics port) at two moments and ranks functions by how much their
// in-use bytes grew between them. Profiles are read with the pprof format's
// own package, github.com/google/pprof/profile, never from text output.
//
// It must not know which relay runs, how it is reached beyond a URL, or what
// the verdict was.
package heapdiff

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/google/pprof/profile"
	"github.com/relaysoak/relaysoak/internal/useragent"
)

// HeapPath is where net/http/pprof serves the heap profile.
const HeapPath = "/debug/pprof/heap"

// SampleType is the value compared: bytes allocated and not yet freed, as of
// the last GC (Fetch asks for one first).
const SampleType = "inuse_space"

// maxProfile bounds a profile's size: a heap profile is a few MB even for a
// large process; anything past this is not one.
const maxProfile = 256 << 20

// Fetch gets a heap profile. target is the profile's URL or the server's
// base URL (http://host:2471), to which HeapPath is added. It asks for a GC
// first (gc=1) unless target has a query of its own, so both profiles
// compare live memory rather than garbage not yet collected.
func Fetch(ctx context.Context, target string) (*profile.Profile, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("heapdiff: %q is not a URL: %w", target, err)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = HeapPath
	}
	if u.RawQuery == "" {
		u.RawQuery = "gc=1"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("heapdiff: %s: %w", u, err)
	}
	req.Header.Set("User-Agent", useragent.For(useragent.Scrape))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("heapdiff: fetching %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("heapdiff: fetching %s: %s: %s", u, resp.Status, strings.TrimSpace(string(b)))
	}
	p, err := profile.Parse(io.LimitReader(resp.Body, maxProfile))
	if err != nil {
		return nil, fmt.Errorf("heapdiff: %s is not a pprof profile: %w", u, err)
	}
	if index(p, SampleType) < 0 {
		return nil, fmt.Errorf("heapdiff: %s is not a heap profile (sample types %s)", u, sampleTypes(p))
	}
	if p.TimeNanos == 0 {
		p.TimeNanos = time.Now().UnixNano()
	}
	return p, nil
}

// Save writes p to path (gzipped protobuf), for `go tool pprof -diff_base
// before.pb.gz after.pb.gz` when the report's top is not enough.
func Save(p *profile.Profile, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("heapdiff: %w", err)
	}
	if err := p.Write(f); err != nil {
		f.Close()
		return fmt.Errorf("heapdiff: writing %s: %w", path, err)
	}
	return f.Close()
}

// Func is one function's growth in in-use bytes between two profiles.
type Func struct {
	Name string `json:"name"`
	File string `json:"file,omitempty"`
	// Flat is allocated by the function itself (it is the leaf of the
	// stack); Cum by it or anything it calls. Both are after − before.
	Flat int64 `json:"flat_bytes"`
	Cum  int64 `json:"cum_bytes"`
	// FlatAfter is the function's own in-use bytes in the later profile.
	FlatAfter int64 `json:"flat_after_bytes"`
}

// Growth is where the heap grew between two profiles.
type Growth struct {
	Span        time.Duration `json:"span_ns"` // between the profiles
	TotalBefore int64         `json:"total_before_bytes"`
	TotalAfter  int64         `json:"total_after_bytes"`
	// Top are the functions whose own in-use bytes grew most, largest first
	// (only those that grew).
	Top []Func `json:"top"`
}

// Diff ranks functions by the growth of their own (flat) in-use bytes from
// before to after and keeps the top n (default 10). The profiles must come
// from the same program: functions are matched by name.
func Diff(before, after *profile.Profile, n int) (Growth, error) {
	if n <= 0 {
		n = 10
	}
	b, err := byFunc(before, "before")
	if err != nil {
		return Growth{}, err
	}
	a, err := byFunc(after, "after")
	if err != nil {
		return Growth{}, err
	}
	g := Growth{TotalBefore: b.total, TotalAfter: a.total}
	if before.TimeNanos != 0 && after.TimeNanos != 0 {
		g.Span = time.Duration(after.TimeNanos - before.TimeNanos)
	}
	names := map[string]bool{}
	for k := range a.funcs {
		names[k] = true
	}
	for k := range b.funcs {
		names[k] = true
	}
	for name := range names {
		fa, fb := a.funcs[name], b.funcs[name]
		f := Func{Name: name, File: fa.file, Flat: fa.flat - fb.flat, Cum: fa.cum - fb.cum, FlatAfter: fa.flat}
		if f.File == "" {
			f.File = fb.file
		}
		if f.Flat > 0 {
			g.Top = append(g.Top, f)
		}
	}
	slices.SortFunc(g.Top, func(x, y Func) int {
		switch {
		case x.Flat != y.Flat:
			return cmpDesc(x.Flat, y.Flat)
		case x.Cum != y.Cum:
			return cmpDesc(x.Cum, y.Cum)
		}
		return strings.Compare(x.Name, y.Name)
	})
	g.Top = g.Top[:min(n, len(g.Top))]
	return g, nil
}

func cmpDesc(x, y int64) int {
	if x > y {
		return -1
	}
	return 1
}

type funcValues struct {
	flat, cum int64
	file      string
}

type aggregate struct {
	total int64
	funcs map[string]funcValues
}

// byFunc sums inuse_space per function: flat to the leaf function of each
// sample (the innermost inlined one: Line[0] of the first location), cum
// once to every function on the stack.
func byFunc(p *profile.Profile, which string) (aggregate, error) {
	if p == nil {
		return aggregate{}, fmt.Errorf("heapdiff: no %s profile", which)
	}
	i := index(p, SampleType)
	if i < 0 {
		return aggregate{}, fmt.Errorf("heapdiff: the %s profile is not a heap profile (sample types %s)", which, sampleTypes(p))
	}
	agg := aggregate{funcs: map[string]funcValues{}}
	for _, s := range p.Sample {
		v := s.Value[i]
		if v == 0 {
			continue
		}
		agg.total += v
		seen := map[string]bool{}
		for li, loc := range s.Location {
			for ki, line := range loc.Line {
				name, file := funcName(line, loc)
				fv := agg.funcs[name]
				if fv.file == "" {
					fv.file = file
				}
				if li == 0 && ki == 0 {
					fv.flat += v
				}
				if !seen[name] {
					seen[name] = true
					fv.cum += v
				}
				agg.funcs[name] = fv
			}
			if len(loc.Line) == 0 {
				// Unsymbolized: the address stands for the function.
				name, _ := funcName(profile.Line{}, loc)
				fv := agg.funcs[name]
				if li == 0 {
					fv.flat += v
				}
				if !seen[name] {
					seen[name] = true
					fv.cum += v
				}
				agg.funcs[name] = fv
			}
		}
	}
	return agg, nil
}

func funcName(l profile.Line, loc *profile.Location) (name, file string) {
	if l.Function != nil && l.Function.Name != "" {
		return l.Function.Name, l.Function.Filename
	}
	return fmt.Sprintf("0x%x", loc.Address), ""
}

func index(p *profile.Profile, typ string) int {
	for i, st := range p.SampleType {
		if st.Type == typ {
			return i
		}
	}
	return -1
}

func sampleTypes(p *profile.Profile) string {
	var out []string
	for _, st := range p.SampleType {
		out = append(out, st.Type+"/"+st.Unit)
	}
	return strings.Join(out, ", ")
}
