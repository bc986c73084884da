package rundir

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Sample is what a line of samples.jsonl says of memory, one JSON object
// per line:
//
//	{"t":"2026-07-04T12:00:10.5Z","elapsed_s":10.5,
//	 "signals":{"rss_anon":123456789,"vm_rss":134217728,"heap_inuse":98765432,"cgroup_working_set":140000000},
//	 "frames_sent":7350,"exits":0,"memory_limit_bytes":4294967296}
//
// elapsed_s (seconds since the run started) orders the samples; when it is
// absent, t (RFC 3339) is used relative to the first line. signals maps a
// signal name (see the Signal constants; any other name is judged too) to
// bytes; a signal missing from a line is a gap in that signal. frames_sent is
// cumulative and gives the frame rate; exits is the cumulative count of the
// target's exits (OOM kills, crashes) the rig has seen, and each increase is
// an exit at that sample's time; memory_limit_bytes is the target's limit
// (0 or absent: none known).
type Sample struct {
	T                time.Time          `json:"t,omitzero"`
	ElapsedS         *float64           `json:"elapsed_s,omitempty"`
	Signals          map[string]float64 `json:"signals"`
	FramesSent       *float64           `json:"frames_sent,omitempty"`
	Exits            int                `json:"exits,omitempty"`
	MemoryLimitBytes float64            `json:"memory_limit_bytes,omitempty"`
}

// Line is one line of samples.jsonl (and rig-samples.jsonl): the Sample,
// the context values beside it (see the context keys), and what a probe
// could not read.
type Line struct {
	Sample
	Context map[string]float64 `json:"context,omitempty"`
	Errors  map[string]string  `json:"probe_errors,omitempty"`
}

// Event is one line of events.jsonl.
type Event struct {
	T        time.Time `json:"t"`
	ElapsedS float64   `json:"elapsed_s"`
	Event    string    `json:"event"`
	Detail   any       `json:"detail,omitempty"`
}

// maxLine bounds one line read back (a sample with every gauge of a relay).
const maxLine = 16 << 20

// ReadLines calls fn with each line of a samples file in turn, numbered
// from 1; blank lines are skipped. name goes into errors, which name the
// line.
func ReadLines(r io.Reader, name string, fn func(n int, l Line) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	n := 0
	for sc.Scan() {
		n++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var l Line
		if err := json.Unmarshal(b, &l); err != nil {
			return fmt.Errorf("%s:%d: not a sample: %w", name, n, err)
		}
		if err := fn(n, l); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s:%d: %w", name, n+1, err)
	}
	return nil
}

// ReadLinesFile is ReadLines of the file at path.
func ReadLinesFile(path string, fn func(n int, l Line) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return ReadLines(f, path, fn)
}

// Appender appends one JSON object per line to a file of the run
// directory, each written through at once, so a run killed at hour 7
// keeps 7 hours of data. Safe for concurrent use.
type Appender struct {
	mu sync.Mutex
	f  *os.File
}

// OpenAppender opens (or creates) path for appending.
func OpenAppender(path string) (*Appender, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &Appender{f: f}, nil
}

// Write appends v as one line.
func (a *Appender) Write(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	_, err = a.f.Write(append(b, '\n'))
	return err
}

func (a *Appender) Close() error { return a.f.Close() }
