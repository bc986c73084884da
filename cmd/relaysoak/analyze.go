package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/relaysoak/relaysoak/soak/trend"
)

// Exit statuses of analyze, so that scripts and CI can branch on the verdict.
const (
	exitPass         = 0
	exitLeak         = 1
	exitUsage        = 2 // bad flags (the flag package's own convention)
	exitInconclusive = 3
	exitCrashed      = 4
	exitBadInput     = 5 // the file cannot be read or parsed
)

const analyzeHelp = `Judges a recorded memory series and prints the verdict as JSON.

FILE is the rig's samples.jsonl (one JSON sample per line; see trend.Sample)
or a CSV with a header: a time column (seconds, or RFC 3339; named seconds,
elapsed_s, time, timestamp or t, else the first column) and one or more columns
of bytes, each a signal. Every signal is judged; the verdict is carried by
rss_anon, else vm_rss, else cgroup_working_set (heap gauges are compared).

Exit status: 0 PASS, 1 LEAK, 2 bad flags, 3 INCONCLUSIVE, 4 CRASHED,
5 unreadable input (the message names the file and line).
`

func init() {
	register(command{
		name:    "analyze",
		summary: "judge a memory series (samples.jsonl or CSV): PASS, LEAK, INCONCLUSIVE or CRASHED",
		run:     runAnalyze,
	})
}

func runAnalyze(args []string) int {
	fs := flag.NewFlagSet("analyze", flag.ContinueOnError)
	column := fs.String("column", "", "judge only this signal (CSV column or samples.jsonl signal name)")
	frameRate := fs.Float64("frame-rate", 0, "frames per second the target received (default: from frames_sent, if recorded)")
	memLimit := fs.Float64("memory-limit", 0, "the target's memory limit in bytes (default: from memory_limit_bytes, if recorded)")
	minSlope := fs.Float64("min-slope-mib-per-hour", trend.DefaultMinSlopeMiBPerHour, "growth slower than this is never a leak")
	minBPF := fs.Float64("min-bytes-per-frame", trend.DefaultMinBytesPerFrame, "growth retaining fewer bytes per frame is never a leak")
	alpha := fs.Float64("alpha", trend.DefaultAlpha, "significance level of the trend tests")
	warmup := fs.Duration("warmup", 0, "always skip at least this much warm-up (default: found from the data)")
	if err := parseFlags(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(fs.Output(), "\n%s", analyzeHelp)
			return exitPass
		}
		fmt.Fprintf(os.Stderr, "relaysoak analyze: %v\n", err)
		return exitUsage
	}
	if fs.NArg() != 1 {
		fmt.Fprintf(os.Stderr, "usage: relaysoak analyze [flags] FILE\n\n%s", analyzeHelp)
		fs.PrintDefaults()
		return exitUsage
	}
	path := fs.Arg(0)
	run, err := readRun(path, *column)
	if err != nil {
		fmt.Fprintf(os.Stderr, "relaysoak analyze: %v\n", err)
		return exitBadInput
	}
	if *frameRate > 0 {
		run.Context.FrameRate = *frameRate
	}
	if *memLimit > 0 {
		run.Context.MemoryLimit = *memLimit
	}
	cfg := trend.Config{
		MinSlopeMiBPerHour: *minSlope,
		MinBytesPerFrame:   *minBPF,
		Alpha:              *alpha,
		Warmup:             *warmup,
	}
	rep, err := trend.JudgeSignals(run.Signals, run.Context, cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "relaysoak analyze: %s: %v\n", path, err)
		return exitBadInput
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		fmt.Fprintf(os.Stderr, "relaysoak analyze: writing the verdict: %v\n", err)
		return exitBadInput
	}
	switch rep.Verdict {
	case trend.Pass:
		return exitPass
	case trend.Leak:
		return exitLeak
	case trend.Crashed:
		return exitCrashed
	default:
		return exitInconclusive
	}
}

// readRun reads samples.jsonl or CSV, by extension, else by the first
// non-blank byte ('{' is JSON).
func readRun(path, column string) (trend.Run, error) {
	f, err := os.Open(path)
	if err != nil {
		return trend.Run{}, fmt.Errorf("%w: %v", trend.ErrInput, err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	jsonl := false
	switch strings.ToLower(filepath.Ext(path)) {
	case ".jsonl", ".json", ".ndjson":
		jsonl = true
	case ".csv":
	default:
		for {
			b, err := br.ReadByte()
			if err != nil {
				break
			}
			if b == ' ' || b == '\t' || b == '\r' || b == '\n' {
				continue
			}
			jsonl = b == '{'
			break
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return trend.Run{}, fmt.Errorf("%w: %v", trend.ErrInput, err)
		}
		br.Reset(f)
	}
	if !jsonl {
		return trend.ReadCSV(br, path, column)
	}
	run, err := trend.ReadSamples(br, path)
	if err != nil {
		return run, err
	}
	if column != "" {
		s, ok := run.Signals[column]
		if !ok {
			names := make([]string, 0, len(run.Signals))
			for n := range run.Signals {
				names = append(names, n)
			}
			return run, fmt.Errorf("%w: %s: no signal %q; signals are %s", trend.ErrInput, path, column, strings.Join(names, ", "))
		}
		run.Signals = map[string]trend.Series{column: s}
	}
	return run, nil
}
