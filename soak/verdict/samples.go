package verdict

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/relaysoak/relaysoak/soak/rundir"
)

// Run is a recorded run: its memory signals and what else it knew, and
// which signal carries the verdict (see JudgeRun).
type Run struct {
	Signals map[string]Series
	Context Context
	Choice  Choice
}

// ErrInput is wrapped by every error about unreadable input.
var ErrInput = errors.New("unreadable input")

func inputErr(name string, line int, format string, args ...any) error {
	if line > 0 {
		return fmt.Errorf("%w: %s:%d: %s", ErrInput, name, line, fmt.Sprintf(format, args...))
	}
	return fmt.Errorf("%w: %s: %s", ErrInput, name, fmt.Sprintf(format, args...))
}

// ReadSamples reads samples.jsonl; name is used in error messages, which
// name the line.
func ReadSamples(r io.Reader, name string) (Run, error) {
	run := Run{Signals: map[string]Series{}}
	var (
		n         int
		t0        time.Time
		prev      = math.Inf(-1)
		prevLine  int
		prevExits int
		frames    []Point
	)
	err := rundir.ReadLines(r, name, func(line int, l rundir.Line) error {
		s := l.Sample
		var el float64
		switch {
		case s.ElapsedS != nil:
			el = *s.ElapsedS
		case !s.T.IsZero():
			if n == 0 {
				t0 = s.T
			}
			el = s.T.Sub(t0).Seconds()
		default:
			return inputErr(name, line, "sample has neither elapsed_s nor t")
		}
		if math.IsNaN(el) || math.IsInf(el, 0) {
			return inputErr(name, line, "elapsed_s is not a finite number")
		}
		if el <= prev {
			return inputErr(name, line, "time %.3f s is not after line %d's %.3f s (samples must be in time order)", el, prevLine, prev)
		}
		prev, prevLine = el, line
		n++
		for k, v := range s.Signals {
			if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
				return inputErr(name, line, "signal %s: %v is not a byte count", k, v)
			}
			run.Signals[k] = append(run.Signals[k], Point{T: el, Bytes: v})
		}
		if s.FramesSent != nil {
			frames = append(frames, Point{T: el, Bytes: *s.FramesSent})
		}
		if s.Exits > prevExits {
			for range s.Exits - prevExits {
				run.Context.Exits = append(run.Context.Exits, el)
			}
		}
		prevExits = max(prevExits, s.Exits)
		if s.MemoryLimitBytes > 0 {
			run.Context.MemoryLimit = s.MemoryLimitBytes
		}
		return nil
	})
	if errors.Is(err, ErrInput) {
		return Run{}, err
	}
	if err != nil {
		return Run{}, fmt.Errorf("%w: %v", ErrInput, err)
	}
	if n == 0 {
		return Run{}, inputErr(name, 0, "no samples (empty file)")
	}
	if err := checkSignals(run, name); err != nil {
		return Run{}, err
	}
	run.Context.FrameRate = frameRate(frames)
	run.Choice = samplesChoice(run, len(frames) > 0)
	return run, nil
}

// frameRate is the mean rate of a cumulative counter, ignoring resets.
func frameRate(c []Point) float64 {
	if len(c) < 2 {
		return 0
	}
	var sum float64
	for i := 1; i < len(c); i++ {
		if d := c[i].Bytes - c[i-1].Bytes; d > 0 {
			sum += d
		}
	}
	dt := c[len(c)-1].T - c[0].T
	if dt <= 0 {
		return 0
	}
	return sum / dt
}

func checkSignals(run Run, name string) error {
	if len(run.Signals) == 0 {
		return inputErr(name, 0, "no memory signals in any sample")
	}
	names := make([]string, 0, len(run.Signals))
	for k := range run.Signals {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		if len(run.Signals[k]) < 2 {
			return inputErr(name, 0, "signal %s has %d sample(s); a trend needs at least two", k, len(run.Signals[k]))
		}
	}
	return nil
}

// timeColumns are header names taken for the time column; failing them, the
// first column is the time.
var timeColumns = []string{"seconds", "elapsed_s", "elapsed", "time", "timestamp", "t", "ts"}

// ReadCSV reads a CSV with a header: one time column (seconds, or RFC 3339
// times; see timeColumns) and one or more value columns. column, when not
// empty, is the one judged (whatever it holds: it was asked for). Otherwise
// a lone value column is judged, and of several only those named like
// memory are, the best carrying the verdict (Run.Choice says which and why;
// ErrNoMemoryColumn when there is none). A frame counter column (fleet_sent,
// frames_sent…) gives Context.FrameRate and is never judged; other columns
// are ignored. Empty cells are gaps.
func ReadCSV(r io.Reader, name, column string) (Run, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return Run{}, inputErr(name, 0, "no header and no samples (empty file)")
	}
	if err != nil {
		return Run{}, inputErr(name, 1, "%v", err)
	}
	if len(header) < 2 {
		return Run{}, inputErr(name, 1, "header %q: need a time column and at least one column of bytes", strings.Join(header, ","))
	}
	for i := range header {
		header[i] = strings.TrimSpace(header[i])
	}
	if _, err := strconv.ParseFloat(header[0], 64); err == nil {
		return Run{}, inputErr(name, 1, "header %q starts with a number: the first line must name the columns", strings.Join(header, ","))
	}
	tcol := 0
	for _, c := range timeColumns {
		if i := slices.IndexFunc(header, func(h string) bool { return strings.EqualFold(h, c) }); i >= 0 {
			tcol = i
			break
		}
	}
	cols, fcol, choice, err := pickColumns(header, tcol, column, name)
	if err != nil {
		return Run{}, err
	}

	run := Run{Signals: map[string]Series{}, Choice: choice}
	var (
		frames   []Point
		t0       time.Time
		prev     = math.Inf(-1)
		prevLine int
		rows     int
		first    float64
	)
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			return Run{}, inputErr(name, line, "%v", err)
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		if len(rec) != len(header) {
			return Run{}, inputErr(name, line, "%d fields, the header has %d", len(rec), len(header))
		}
		ts := strings.TrimSpace(rec[tcol])
		el, err := strconv.ParseFloat(ts, 64)
		if err != nil {
			tm, terr := time.Parse(time.RFC3339Nano, ts)
			if terr != nil {
				return Run{}, inputErr(name, line, "time %q (column %s) is neither seconds nor an RFC 3339 time", ts, header[tcol])
			}
			if rows == 0 {
				t0 = tm
			}
			el = tm.Sub(t0).Seconds()
		}
		if math.IsNaN(el) || math.IsInf(el, 0) {
			return Run{}, inputErr(name, line, "time %q is not a finite number", ts)
		}
		// Seconds since the first row: exports carry Unix times.
		if rows == 0 {
			first = el
		}
		el -= first
		if el <= prev {
			return Run{}, inputErr(name, line, "time %s is not after line %d's (rows must be in time order)", ts, prevLine)
		}
		prev, prevLine = el, line
		rows++
		if f, ok, err := frameCell(rec, fcol, header, name, line); err != nil {
			return Run{}, err
		} else if ok {
			frames = append(frames, Point{T: el, Bytes: f})
		}
		for _, c := range cols {
			v := strings.TrimSpace(rec[c])
			if v == "" {
				continue
			}
			b, err := strconv.ParseFloat(v, 64)
			if err != nil || math.IsNaN(b) || math.IsInf(b, 0) || b < 0 {
				return Run{}, inputErr(name, line, "column %s: %q is not a byte count", header[c], v)
			}
			run.Signals[header[c]] = append(run.Signals[header[c]], Point{T: el, Bytes: b})
		}
	}
	if rows == 0 {
		return Run{}, inputErr(name, 0, "header but no samples")
	}
	if err := checkSignals(run, name); err != nil {
		return Run{}, err
	}
	run.Context.FrameRate = frameRate(frames)
	return run, nil
}
