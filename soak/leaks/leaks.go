// Package leaks reads the leak report a Zig GeneralPurposeAllocator
// (DebugAllocator) prints when a build with leak tracking (-Duse_gpa=true)
// shuts down: one `error(gpa): memory address 0x… leaked:` line per leaked
// allocation, each followed by the stack that allocated it. It groups the
// leaks by stack and returns the top leak sites for the report.
//
// It must not know where the log came from (a container, a file, a test
// runner) nor what the verdict was: it reads lines of text.
package leaks

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Config tunes what a Report keeps. The zero value is the report's default.
type Config struct {
	// Top is how many leak sites a Report keeps; default 5.
	Top int
	// Frames is how many frames of each site's stack are kept; default 6
	// (the allocator's own default depth, so nothing it printed is lost).
	Frames int
}

func (c Config) withDefaults() Config {
	if c.Top <= 0 {
		c.Top = 5
	}
	if c.Frames <= 0 {
		c.Frames = 6
	}
	return c
}

// Frame is one line of a Zig stack trace:
// `/src/foo.zig:12:5: 0x10a3f20 in bar (relay)`.
type Frame struct {
	File   string `json:"file"`
	Line   int    `json:"line,omitempty"` // 0 when the trace printed "?"
	Col    int    `json:"col,omitempty"`
	Func   string `json:"func"`
	Module string `json:"module,omitempty"`
	Addr   string `json:"addr"`
}

// Unknown says the frame has no debug information (`???:?:?`).
func (f Frame) Unknown() bool { return f.File == "???" }

// Std says the frame is in Zig's standard library (or its test runner):
// an allocation site there (ArrayList growth, Allocator.dupe) says little,
// the caller that kept the memory says more.
func (f Frame) Std() bool {
	p := strings.ReplaceAll(f.File, `\`, "/")
	return strings.Contains(p, "/lib/std/") || strings.Contains(p, "/lib/zig/std/") ||
		strings.Contains(p, "/lib/compiler/") || strings.HasPrefix(p, "std/")
}

func (f Frame) String() string {
	if f.Unknown() {
		return fmt.Sprintf("%s in ??? (%s)", f.Addr, f.Module)
	}
	return fmt.Sprintf("%s in %s:%d", f.Func, f.File, f.Line)
}

// key identifies the frame across leaks: the source position and function
// (the address too when there is no source position).
func (f Frame) key() string {
	if f.Unknown() {
		return f.Addr + " " + f.Module
	}
	return fmt.Sprintf("%s:%d:%d %s", f.File, f.Line, f.Col, f.Func)
}

// Site is the leaks that share one stack. The allocator prints no sizes, so
// sites are ranked by how many allocations leaked there, not by bytes.
type Site struct {
	Count int     `json:"count"`
	Share float64 `json:"share"` // of all leaks in the report
	// Where is the first frame outside the standard library and with debug
	// information: the code that kept the memory (the first frame when every
	// frame is std or unknown).
	Where Frame `json:"where"`
	// Frames are the first frames of the stack, innermost first.
	Frames []Frame `json:"frames,omitempty"`
	// Cut counts the leaks among Count whose stack the log cut off; they
	// were matched to this site by the frames they had.
	Cut int `json:"cut,omitempty"`
}

// Report is what the log's leak reports add up to.
type Report struct {
	Source string `json:"source,omitempty"`
	// Leaks counts every leaked allocation reported (headers seen).
	Leaks int `json:"leaks"`
	// Stacks counts distinct stacks; Sites holds the top ones by count.
	Stacks int    `json:"stacks"`
	Sites  []Site `json:"sites,omitempty"`
	// NoStack counts leaks printed without any frame (a build without stack
	// traces, or a trace the log lost); they are in Leaks, not in Sites.
	NoStack int `json:"no_stack,omitempty"`
	// Truncated says the log ended inside a leak report (mid-header or
	// mid-frame): the process was probably killed while printing it, and
	// Leaks is a lower bound.
	Truncated bool `json:"truncated,omitempty"`
}

var (
	// The allocator logs through std.log scope .gpa: `error(gpa): …` with the
	// default log function, `[gpa] (err): …` under the test runner. The
	// header may follow other output on the same line (a print without a
	// newline, a timestamp from a custom log function).
	headerRe = regexp.MustCompile(`(?:error\(gpa\)|\[gpa\] \(err\)): memory address (0x[0-9a-fA-F]+) leaked:`)
	// A header cut off by the end of the log, e.g. `error(gpa): memory address 0x7c8a5`.
	partialHeaderRe = regexp.MustCompile(`(?:error\(gpa\)|\[gpa\] \(err\)): memory(?: address(?: (0x[0-9a-fA-F]*))?)?\s*$`)
	// `path:line:col: 0xaddr in func (module)`; `???:?:?` without debug info.
	// The path may hold a drive letter (C:\…), so it is matched lazily up to
	// the first `:line:col: 0x`.
	frameRe = regexp.MustCompile(`^\s*(.+?):(\d+|\?):(\d+|\?): (0x[0-9a-fA-F]+) in (.+?) \(([^()]*)\)\s*$`)
	// The start of a frame line, for a frame cut off by the end of the log.
	partialFrameRe = regexp.MustCompile(`^\s*(\S.*?\.zig|\?\?\?):(\d+|\?)`)
	// Other messages with their own stack traces end the current leak's: a
	// panic, or the allocator's double-free report.
	otherTraceRe = regexp.MustCompile(`^(?:thread \d+ )?panic: |Double free detected|^Unable to (?:dump|print) stack trace`)
)

// leak is one header and the frames read after it.
type leak struct {
	frames []Frame
	cut    bool // the log ended inside it
}

// FromLog reads the leak reports in a log file (a run's relay.log).
func FromLog(path string) (Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return Report{}, fmt.Errorf("leaks: %w", err)
	}
	defer f.Close()
	return Parse(f, path, Config{})
}

// Parse reads the leak reports in r, named name in errors and the report.
// Lines that are neither leak headers nor frames (source lines and carets
// printed under each frame, other threads' log lines) are skipped, so
// reports interleaved with other output are read whole. A leak's frames end
// at the next header or another stack-trace message (a panic); a trace cut
// off by the end of the log is matched to the site whose stack starts with
// the frames it has.
func Parse(r io.Reader, name string, cfg Config) (Report, error) {
	cfg = cfg.withDefaults()
	br := bufio.NewReaderSize(r, 64<<10)
	var (
		all  []*leak
		open *leak
	)
	lineNo := 0
	for {
		line, err := br.ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return Report{}, fmt.Errorf("leaks: %s:%d: %w", name, lineNo+1, err)
		}
		atEOF := err != nil
		if line == "" && atEOF {
			break
		}
		lineNo++
		// A last line without a newline was cut off mid-write.
		partial := atEOF && !strings.HasSuffix(line, "\n")
		line = strings.TrimRight(line, "\r\n")
		switch {
		case headerRe.MatchString(line):
			open = &leak{}
			all = append(all, open)
		case partial && partialHeaderRe.MatchString(line):
			open = &leak{cut: true}
			all = append(all, open)
		case open != nil && frameRe.MatchString(line):
			open.frames = append(open.frames, parseFrame(frameRe.FindStringSubmatch(line)))
		case open != nil && partial && partialFrameRe.MatchString(line):
			// The frame's function is lost; what came before still places it.
			open.cut = true
		case otherTraceRe.MatchString(line):
			open = nil
		}
		if atEOF {
			break
		}
	}
	rep := group(all, cfg)
	rep.Source = name
	return rep, nil
}

func parseFrame(m []string) Frame {
	f := Frame{File: m[1], Addr: m[4], Func: m[5], Module: m[6]}
	f.Line, _ = strconv.Atoi(m[2]) // "?" stays 0
	f.Col, _ = strconv.Atoi(m[3])
	return f
}

func stackKey(frames []Frame) string {
	keys := make([]string, len(frames))
	for i, f := range frames {
		keys[i] = f.key()
	}
	return strings.Join(keys, "\n")
}

// group counts leaks per stack. A cut leak joins the largest site whose
// stack starts with its frames (stacks have a fixed depth, so a shorter one
// that is a prefix of a longer one was cut), else it is a site of its own.
func group(all []*leak, cfg Config) Report {
	rep := Report{Leaks: len(all)}
	type acc struct {
		site   Site
		frames []Frame
		first  int // order of first appearance, for stable ties
	}
	sites := map[string]*acc{}
	var cut []*leak
	for i, l := range all {
		switch {
		case l.cut && len(l.frames) > 0:
			cut = append(cut, l)
			rep.Truncated = true
			continue
		case l.cut:
			rep.Truncated = true
			rep.NoStack++
			continue
		case len(l.frames) == 0:
			rep.NoStack++
			continue
		}
		k := stackKey(l.frames)
		a := sites[k]
		if a == nil {
			a = &acc{frames: l.frames, first: i}
			sites[k] = a
		}
		a.site.Count++
	}
	// The last leak of a log may be cut at a line boundary (no partial line
	// left): a stack shorter than, and a prefix of, another is cut too.
	if n := len(all); n > 0 && !all[n-1].cut && len(all[n-1].frames) > 0 {
		last := all[n-1]
		k := stackKey(last.frames)
		if a := sites[k]; a != nil && a.site.Count == 1 {
			for _, b := range sites {
				if len(b.frames) > len(last.frames) && samePrefix(b.frames, last.frames) {
					delete(sites, k)
					cut = append(cut, last)
					break
				}
			}
		}
	}
	for _, l := range cut {
		var best *acc
		for _, a := range sites {
			if len(a.frames) > len(l.frames) && samePrefix(a.frames, l.frames) {
				if best == nil || a.site.Count > best.site.Count || (a.site.Count == best.site.Count && a.first < best.first) {
					best = a
				}
			}
		}
		if best == nil {
			k := "cut\n" + stackKey(l.frames)
			best = sites[k]
			if best == nil {
				best = &acc{frames: l.frames, first: len(all)}
				sites[k] = best
			}
		}
		best.site.Count++
		best.site.Cut++
	}

	list := make([]*acc, 0, len(sites))
	for _, a := range sites {
		list = append(list, a)
	}
	slices.SortFunc(list, func(x, y *acc) int {
		if x.site.Count != y.site.Count {
			return y.site.Count - x.site.Count
		}
		return x.first - y.first
	})
	rep.Stacks = len(list)
	for _, a := range list[:min(cfg.Top, len(list))] {
		s := a.site
		s.Share = float64(s.Count) / float64(rep.Leaks)
		s.Where = where(a.frames)
		s.Frames = a.frames[:min(cfg.Frames, len(a.frames))]
		rep.Sites = append(rep.Sites, s)
	}
	return rep
}

// samePrefix says stack starts with prefix.
func samePrefix(stack, prefix []Frame) bool {
	return len(stack) >= len(prefix) && slices.EqualFunc(stack[:len(prefix)], prefix, func(x, y Frame) bool { return x.key() == y.key() })
}

func where(frames []Frame) Frame {
	for _, f := range frames {
		if !f.Std() && !f.Unknown() {
			return f
		}
	}
	return frames[0]
}
