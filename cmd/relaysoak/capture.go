package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/relaysoak/relaysoak/captures"
)

func init() {
	register(command{name: "capture record", summary: "record a subscribeRepos stream into a capture", setup: setupCaptureRecord,
		about: "Records any subscribeRepos endpoint (a PDS, a relay, the fleet) into a capture. On Ctrl-C or an error it keeps what it recorded, cleanly closed, and says how it ended."})
	register(command{name: "capture import", summary: "convert a [u32 LE length][frame] dump (and its DID documents) into a capture", setup: setupCaptureImport,
		about: "Writes the capture all or nothing: a damaged or empty dump leaves no output file, and an existing one untouched."})
	register(command{name: "capture export", summary: "write a capture out as a [u32 LE length][frame] dump", setup: setupCaptureExport,
		about: "Writes the dump all or nothing: a failure leaves an existing output file untouched."})
	register(command{name: "capture inspect", summary: "show what a capture holds", setup: setupCaptureInspect})
}

// captureFail prints err, which already starts with what failed (the
// captures package's errors name the step, the file and the place), and
// returns its exit status: a capture or dump that cannot be read is bad
// input; anything else failed while running.
func captureFail(cmd string, err error) int {
	code := exitFailed
	if errors.Is(err, captures.ErrCorrupt) || errors.Is(err, captures.ErrTruncated) || errors.Is(err, captures.ErrBadDump) {
		code = exitBadInput
	}
	return fail(cmd, code, "%v", err)
}

func captureIsTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func setupCaptureRecord(f *flags) func([]string) int {
	url := f.URL("url", "", []string{"ws", "wss", "http", "https"}, "subscribeRepos endpoint to record: wss://HOST[/xrpc/com.atproto.sync.subscribeRepos][?cursor=N] (a PDS, a relay, the fleet)")
	duration := f.Duration("duration", 0, time.Second, 365*24*time.Hour, "how long to record")
	f.Zero("until Ctrl-C (or --max-frames)")
	maxFrames := f.Int64("max-frames", 0, 1, math.MaxInt64, "stop after this many frames")
	f.Zero("no limit")
	out := f.OutPath("out", "", false, "capture file to write (conventionally .rscap)")
	resolve := f.Bool("resolve-dids", false, "store each account's DID document as of capture time")
	plc := f.URL("plc", "https://plc.directory", []string{"http", "https"}, "PLC directory for --resolve-dids (GET {plc}/{did})")
	conc := f.Int("resolve-concurrency", 4, 1, 64, "DID resolutions in flight at once")
	f.Check(func() error {
		if *url == "" {
			return usagef("%s is required", f.Where("url"))
		}
		return nil
	})
	return func([]string) int {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		finished := make(chan struct{})
		defer close(finished) // runs before stop: no "stopping" line after a normal end
		go func() {
			select {
			case <-ctx.Done():
				fmt.Fprintln(os.Stderr, "\nstopping: closing the capture cleanly")
			case <-finished:
			}
		}()

		prog := newCaptureProgress(*url, *duration, *maxFrames)
		res, err := captures.RecordFirehose(ctx, captures.RecordConfig{
			URL:                *url,
			Out:                *out,
			Duration:           *duration,
			MaxFrames:          *maxFrames,
			ResolveDIDs:        *resolve,
			PLC:                *plc,
			ResolveConcurrency: *conc,
			Progress:           prog.update,
			Logf:               prog.logf,
		})
		prog.done()
		m, p := res.Manifest, res.Progress
		how := res.Describe()
		if res.Stopped == captures.StoppedCancelled {
			how = strings.Replace(how, "interrupted", "interrupted (Ctrl-C)", 1)
		}
		if err != nil {
			if m.Frames == 0 {
				return fail("capture record", exitNotStarted, "%v (nothing was recorded)", err)
			}
			return fail("capture record", exitFailed, "%v; %s in %s (see 'relaysoak capture inspect %s')", err, how, *out, *out)
		}
		if !res.Closed {
			return fail("capture record", exitFailed, "%s in %s", how, *out)
		}
		fmt.Printf("recorded %d frames (%s) from %s into %s in %s; %s\n",
			m.Frames, captureMiB(m.Bytes), *url, *out, p.Elapsed.Round(time.Second), how)
		fmt.Printf("  kinds: %s; seq %d–%d; reconnects %d\n", captureKinds(m.Kinds), m.SeqMin, m.SeqMax, p.Reconnects)
		if *resolve {
			fmt.Printf("  DID documents: %d stored, %d not resolved (of %d accounts)\n", p.DIDsResolved, p.DIDsFailed, p.DIDsQueued)
		}
		fmt.Printf("  next: relaysoak capture inspect %s\n", *out)
		return exitOK
	}
}

// captureProgress shows a recording's state: an mpb bar on a terminal, a
// plain line every few seconds elsewhere (CI logs, files).
type captureProgress struct {
	mu       sync.Mutex
	last     captures.RecordProgress
	prevN    int64
	prevT    time.Duration
	rate     float64
	tty      bool
	p        *mpb.Progress
	bar      *mpb.Bar
	duration time.Duration
	max      int64
	total    int64 // of the bar: seconds, or frames; 0 for a spinner
	printed  time.Time
}

func newCaptureProgress(url string, duration time.Duration, maxFrames int64) *captureProgress {
	rp := &captureProgress{tty: captureIsTerminal(os.Stderr), duration: duration, max: maxFrames}
	if !rp.tty {
		fmt.Fprintf(os.Stderr, "recording %s\n", url)
		return rp
	}
	var total int64
	switch {
	case duration > 0:
		total = int64(duration / time.Second)
	case maxFrames > 0:
		total = maxFrames
	}
	rp.total = total
	rp.p = mpb.New(mpb.WithOutput(os.Stderr), mpb.WithWidth(40))
	status := decor.Any(func(decor.Statistics) string { return rp.status() })
	name := decor.Name("recording ", decor.WC{})
	if total > 0 {
		rp.bar = rp.p.New(total, mpb.BarStyle(), mpb.PrependDecorators(name, decor.Elapsed(decor.ET_STYLE_MMSS)), mpb.AppendDecorators(status))
	} else {
		rp.bar = rp.p.New(0, mpb.SpinnerStyle(), mpb.PrependDecorators(name, decor.Elapsed(decor.ET_STYLE_MMSS)), mpb.AppendDecorators(status))
	}
	return rp
}

func (rp *captureProgress) update(p captures.RecordProgress) {
	rp.mu.Lock()
	if dt := p.Elapsed - rp.prevT; dt >= time.Second || rp.prevT == 0 {
		if dt > 0 {
			rp.rate = float64(p.Frames-rp.prevN) / dt.Seconds()
		}
		rp.prevN, rp.prevT = p.Frames, p.Elapsed
	}
	rp.last = p
	rp.mu.Unlock()
	if rp.tty {
		// Held one short of the total: reaching it completes the bar, and
		// the bar's last line must be drawn by done, with the final numbers.
		switch {
		case p.Done || rp.total <= 1:
		case rp.duration > 0:
			rp.bar.SetCurrent(min(int64(p.Elapsed/time.Second), rp.total-1))
		default:
			rp.bar.SetCurrent(min(p.Frames, rp.total-1))
		}
		return
	}
	if !p.Done && time.Since(rp.printed) >= 5*time.Second { // the summary follows the last one
		rp.printed = time.Now()
		fmt.Fprintf(os.Stderr, "%s recording: %s\n", time.Now().Format("15:04:05"), rp.status())
	}
}

func (rp *captureProgress) status() string {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	p := rp.last
	s := fmt.Sprintf("%d frames (%.0f/s), %s, seq %d", p.Frames, rp.rate, captureMiB(p.Bytes), p.LastSeq)
	switch {
	case p.Connected || p.Done:
	case p.Frames == 0 && p.Reconnects == 0:
		s += ", connecting"
	default:
		s += ", DISCONNECTED (redialling)"
	}
	if p.Reconnects > 0 {
		s += fmt.Sprintf(", %d reconnects", p.Reconnects)
	}
	if p.DIDsQueued > 0 {
		s += fmt.Sprintf(", DIDs %d/%d (%d failed)", p.DIDsResolved, p.DIDsQueued, p.DIDsFailed)
	}
	return s
}

func (rp *captureProgress) logf(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	if rp.tty {
		// Above the bar, so it is neither lost nor torn.
		fmt.Fprintln(rp.p, line)
		return
	}
	fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05"), line)
}

func (rp *captureProgress) done() {
	if rp.tty {
		rp.mu.Lock()
		last := rp.last
		rp.mu.Unlock()
		if rp.duration > 0 {
			rp.bar.SetCurrent(int64(last.Elapsed / time.Second))
		} else {
			rp.bar.SetCurrent(last.Frames)
		}
		rp.bar.SetTotal(-1, true) // total := current, complete
		rp.p.Wait()
	}
}

func setupCaptureImport(f *flags) func([]string) int {
	frames := f.InFile("frames", "", false, false, "the [u32 little-endian length][frame] dump to import, raw or zstd")
	docs := f.InFile("did-docs", "", true, false, "optional JSON object DID → DID document beside the dump, raw or zstd")
	out := f.OutPath("out", "", false, "capture file to write (conventionally .rscap)")
	source := f.String("source", "", "where the dump came from, for the manifest (e.g. the relay's subscribeRepos URL); default import:<frames>")
	host := f.String("host", "", "origin host to give every frame; default the host of --source, else \"unknown\"")
	return func([]string) int {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		m, err := captures.Import(ctx, captures.ImportConfig{Frames: *frames, DIDDocs: *docs, Out: *out, Source: *source, Host: *host})
		if err != nil {
			return captureFail("capture import", err)
		}
		fmt.Printf("imported %d frames (%s) and %d DID documents into %s\n  kinds: %s; seq %d–%d\n  next: relaysoak capture inspect %s\n",
			m.Frames, captureMiB(m.Bytes), m.DIDDocs, *out, captureKinds(m.Kinds), m.SeqMin, m.SeqMax, *out)
		return exitOK
	}
}

func setupCaptureExport(f *flags) func([]string) int {
	out := f.OutPath("out", "", false, "the [u32 little-endian length][frame] dump to write; zstd when it ends in .zst")
	docsOut := f.OutPath("did-docs-out", "", true, "optional: write the DID documents as one JSON object here; zstd when it ends in .zst")
	allowTrunc := f.Bool("allow-truncated", false, "export what a capture cut off before its close holds instead of failing")
	f.Positional(1, "CAPTURE")
	f.PositionalInputs(false)
	return func(args []string) int {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		res, err := captures.Export(ctx, captures.ExportConfig{Capture: args[0], Out: *out, DIDDocsOut: *docsOut, AllowTruncated: *allowTrunc})
		if err != nil {
			if errors.Is(err, captures.ErrTruncated) {
				err = fmt.Errorf("%w; --allow-truncated exports the frames before the cut", err)
			}
			return captureFail("capture export", err)
		}
		fmt.Printf("exported %d frames to %s", res.Frames, *out)
		if *docsOut != "" {
			fmt.Printf(" and %d DID documents to %s", res.DIDDocs, *docsOut)
		}
		fmt.Println()
		if res.Truncated != nil {
			fmt.Fprintf(os.Stderr, "warning: the capture is cut off; exported the frames before the cut: %v\n", res.Truncated)
		}
		return exitOK
	}
}

func setupCaptureInspect(f *flags) func([]string) int {
	asJSON := f.Bool("json", false, "print the report as JSON instead of text")
	f.Positional(1, "CAPTURE")
	f.PositionalInputs(false)
	return func(args []string) int {
		rep, err := captures.Inspect(args[0], captures.InspectConfig{})
		if rep == nil {
			return captureFail("capture inspect", err)
		}
		var w io.Writer = os.Stdout
		if *asJSON {
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			if e := enc.Encode(rep); e != nil {
				return captureFail("capture inspect", e)
			}
		} else if e := rep.WriteText(w); e != nil {
			return captureFail("capture inspect", e)
		}
		if err != nil {
			hint := ""
			if errors.Is(err, captures.ErrTruncated) {
				hint = "; the report covers every frame before the cut"
			}
			return captureFail("capture inspect", fmt.Errorf("%w%s", err, hint))
		}
		return exitOK
	}
}

func captureMiB(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func captureKinds(m map[string]int64) string {
	known := []string{captures.KindCommit, captures.KindIdentity, captures.KindAccount, captures.KindSync, captures.KindInfo, captures.KindError, captures.KindUnknown}
	var parts []string
	for _, k := range known {
		if m[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if !slices.Contains(known, k) {
			parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
