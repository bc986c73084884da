package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/relaysoak/relaysoak/soak/verdict"
)

const analyzeHelp = `Judges a recorded memory series and prints the verdict as JSON.

FILE is the rig's samples.jsonl (one JSON sample per line; see rundir.Sample)
or a CSV with a header: a time column (seconds, or RFC 3339; named seconds,
elapsed_s, time, timestamp or t, else the first column) and one or more columns
of bytes. Every memory signal is judged; the verdict is carried by rss_anon,
else vm_rss, else cgroup_working_set (heap gauges are compared).`

func init() {
	register(command{
		name:    "analyze",
		summary: "judge a memory series (samples.jsonl or CSV): PASS, LEAK, INCONCLUSIVE or CRASHED",
		about:   analyzeHelp,
		setup:   setupAnalyze,
	})
}

func setupAnalyze(f *flags) func([]string) int {
	column := f.String("column", "", "judge only this signal (CSV column or samples.jsonl signal name)")
	frameRate := f.Float("frame-rate", 0, 1e-6, 1e9, "frames per second the target received")
	f.Zero("from frames_sent, if recorded")
	memLimit := f.Size("memory-limit", 0, 1<<20, maxMemLimit, "the target's memory limit")
	f.Zero("from memory_limit_bytes, if recorded")
	minSlope := f.Float("min-slope-mib-per-hour", verdict.DefaultMinSlopeMiBPerHour, 0, 1e6, "growth slower than this is never a leak")
	minBPF := f.Float("min-bytes-per-frame", verdict.DefaultMinBytesPerFrame, 0, 1e9, "growth retaining fewer bytes per frame is never a leak")
	alpha := f.Float("alpha", verdict.DefaultAlpha, 1e-9, 0.5, "significance level of the trend tests")
	warmup := f.Duration("warmup", 0, time.Second, 365*24*time.Hour, "always skip at least this much warm-up")
	f.Zero("found from the data")
	f.Positional(1, "FILE")
	f.PositionalInputs(false)
	return func(args []string) int {
		path := args[0]
		run, ch, err := readRun(path, *column)
		if errors.Is(err, errNoMemoryColumn) || errors.Is(err, errUnknownColumn) {
			// The file is fine; what to judge in it is the user's choice.
			return fail("analyze", exitUsage, "%v", err)
		}
		if err != nil {
			return fail("analyze", exitBadInput, "%v", err)
		}
		fmt.Fprintf(os.Stderr, "relaysoak analyze: %s\n", ch)
		if *frameRate > 0 {
			run.Context.FrameRate = *frameRate
		}
		if *memLimit > 0 {
			run.Context.MemoryLimit = float64(*memLimit)
		}
		cfg := verdict.Config{
			MinSlopeMiBPerHour: *minSlope,
			MinBytesPerFrame:   *minBPF,
			Alpha:              *alpha,
			Warmup:             *warmup,
		}
		rep, err := judgeRun(run, ch, cfg)
		if err != nil {
			return fail("analyze", exitBadInput, "%s: %v", path, err)
		}
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return fail("analyze", exitFailed, "writing the verdict: %v", err)
		}
		return verdictStatus(rep.Verdict)
	}
}

// readRun reads samples.jsonl or CSV, by extension, else by the first
// non-blank byte ('{' is JSON), and chooses the signal that carries the
// verdict (column, when not empty, is the one asked for).
func readRun(path, column string) (verdict.Run, choice, error) {
	f, err := os.Open(path)
	if err != nil {
		return verdict.Run{}, choice{}, fmt.Errorf("%w: %v", verdict.ErrInput, err)
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
			return verdict.Run{}, choice{}, fmt.Errorf("%w: %v", verdict.ErrInput, err)
		}
		br.Reset(f)
	}
	if !jsonl {
		return readCSV(br, path, column)
	}
	run, err := verdict.ReadSamples(br, path)
	if err != nil {
		return run, choice{}, err
	}
	if column == "" {
		return run, samplesChoice(run), nil
	}
	return selectSignal(run, column, path)
}
