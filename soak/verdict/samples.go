package verdict

import (
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"time"

	"github.com/relaysoak/relaysoak/soak/rundir"
)

// Run is a recorded run: its memory signals, its cumulative frame counter
// (nil when none was recorded; Context.FrameRate is its rate) and what else
// it knew.
type Run struct {
	Signals map[string]Series
	// Kept is the live heap, when the samples hold it (context, not a
	// signal: its teeth are not growth; JudgeRun judges its floors).
	Kept Series
	// Goroutines is the process's goroutine count (as Bytes), when the
	// samples hold it (context): kept memory too, judged on its own gate.
	Goroutines Series
	Frames     Series
	Context    Context
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
		frames    Series
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
		if v, ok := finiteContext(l, rundir.SignalLiveHeap); ok {
			run.Kept = append(run.Kept, Point{T: el, Bytes: v})
		}
		if v, ok := finiteContext(l, rundir.Goroutines); ok {
			run.Goroutines = append(run.Goroutines, Point{T: el, Bytes: v})
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
	run.Frames = frames
	run.Context.FrameRate = FrameRate(frames)
	return run, nil
}

// finiteContext is the context value key of l, when it is there and a
// count or a size (finite, not negative).
func finiteContext(l rundir.Line, key string) (float64, bool) {
	v, ok := l.Context[key]
	return v, ok && !math.IsNaN(v) && !math.IsInf(v, 0) && v >= 0
}

// FrameRate is the mean rate (per second) of a cumulative counter, such as
// frames sent: the sum of its rises over its span, so that a reset costs
// nothing.
func FrameRate(c Series) float64 {
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
