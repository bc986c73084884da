package soak

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/relaysoak/relaysoak/soak/report"
)

// maxDarkLogLines bounds the relay's log lines quoted for one dark host.
const maxDarkLogLines = 5

// darkLogMargin widens the window of log lines quoted around a host's
// going dark: the relay may say so a little before the rig sees it, or
// after the threshold.
const darkLogMargin = time.Minute

// quoteDarkLog fills each dark host's LogLines (planned ones aside) with
// the relay's own lines about it: lines of the log at path naming the host
// and containing one of patterns, from a minute before its first span's
// start (or before the relay let it go, when earlier) to a minute past the
// threshold after it; the last maxDarkLogLines of them, nearest to its
// going dark (a give-up follows the failures that led to it). A line
// whose time cannot be read (a JSON "time" or "timestamp", or a leading
// RFC 3339 time, "time=" or not) cannot be placed: when no line about the
// host can be, the first such lines are quoted instead.
func quoteDarkLog(path string, patterns []string, hosts []report.DarkHost, started time.Time, after time.Duration) error {
	type found struct {
		from, to      time.Time
		timed, placed []string // lines in the window; lines with no time
		sawTime       bool
	}
	want := map[int]*found{}
	for i, h := range hosts {
		if h.Planned {
			continue
		}
		start := started.Add(time.Duration(h.StartS * float64(time.Second)))
		from := start
		if h.LetGoS > 0 && h.LetGoS < h.StartS {
			from = started.Add(time.Duration(h.LetGoS * float64(time.Second)))
		}
		want[i] = &found{from: from.Add(-darkLogMargin), to: start.Add(after + darkLogMargin)}
	}
	if len(want) == 0 {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("reading the relay's log: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		if !containsAny(line, patterns) {
			continue
		}
		at, timed := lineTime(line)
		for i, w := range want {
			if !strings.Contains(line, hosts[i].Host) {
				continue
			}
			switch {
			case timed:
				w.sawTime = true
				if !at.Before(w.from) && !at.After(w.to) {
					if len(w.timed) == maxDarkLogLines {
						w.timed = append(w.timed[:0], w.timed[1:]...)
					}
					w.timed = append(w.timed, line)
				}
			case len(w.placed) < maxDarkLogLines:
				w.placed = append(w.placed, line)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading the relay's log %s: %w", path, err)
	}
	for i, w := range want {
		hosts[i].LogLines = w.placed
		if w.sawTime {
			hosts[i].LogLines = w.timed
		}
	}
	return nil
}

func containsAny(line string, subs []string) bool {
	for _, s := range subs {
		if strings.Contains(line, s) {
			return true
		}
	}
	return false
}

// lineTime reads a log line's time: a JSON object's "time" or "timestamp"
// (Go's slog, most structured loggers), or an RFC 3339 time leading the
// line, bare (a container engine's) or as time=… (slog's text).
func lineTime(line string) (time.Time, bool) {
	line = strings.TrimSpace(line)
	if strings.HasPrefix(line, "{") {
		var v struct {
			Time      string `json:"time"`
			Timestamp string `json:"timestamp"`
		}
		if json.Unmarshal([]byte(line), &v) == nil {
			for _, s := range []string{v.Time, v.Timestamp} {
				if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
					return t, true
				}
			}
		}
		return time.Time{}, false
	}
	first, _, _ := strings.Cut(line, " ")
	first = strings.Trim(strings.TrimPrefix(first, "time="), `"`)
	t, err := time.Parse(time.RFC3339Nano, first)
	return t, err == nil
}
