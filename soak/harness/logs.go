package harness

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// CountLog counts the lines of a log file containing each pattern; it
// reads line by line, so a log of any size costs the same memory.
func CountLog(path string, patterns []string) (map[string]int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("rig: reading relay log: %w", err)
	}
	defer f.Close()
	out := make(map[string]int, len(patterns))
	for _, p := range patterns {
		out[p] = 0
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		for _, p := range patterns {
			if strings.Contains(line, p) {
				out[p]++
			}
		}
	}
	return out, sc.Err()
}

// GrepLog returns up to max lines of the log containing all of subs.
func GrepLog(path string, max int, subs ...string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("rig: reading relay log: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
scan:
	for sc.Scan() && len(out) < max {
		for _, s := range subs {
			if !strings.Contains(sc.Text(), s) {
				continue scan
			}
		}
		out = append(out, sc.Text())
	}
	return out, sc.Err()
}
