package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
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
	register(command{
		name:    "capture",
		summary: "record, import, export and inspect captures of real event streams",
		run:     runCapture,
	})
}

const captureUsage = `usage: relaysoak capture <subcommand> [flags]

subcommands:
  record   record a subscribeRepos stream into a capture:
             relaysoak capture record --url wss://HOST --duration 10m --out F.rscap [--resolve-dids --plc URL]
  import   convert a [u32 LE length][frame] dump (and its DID-document JSON) into a capture:
             relaysoak capture import --frames frames.bin.zst [--did-docs did_docs.json.zst] --out F.rscap
  export   write a capture out as such a dump:
             relaysoak capture export F.rscap --out frames.bin.zst [--did-docs-out did_docs.json.zst]
  inspect  show what a capture holds:
             relaysoak capture inspect F.rscap

Run 'relaysoak capture <subcommand> -h' for its flags.
`

func runCapture(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, captureUsage)
		return 2
	}
	switch args[0] {
	case "record":
		return captureRecord(args[1:])
	case "import":
		return captureImport(args[1:])
	case "export":
		return captureExport(args[1:])
	case "inspect":
		return captureInspect(args[1:])
	case "-h", "-help", "--help", "help":
		fmt.Fprint(os.Stdout, captureUsage)
		return 0
	default:
		fmt.Fprintf(os.Stderr, "relaysoak capture: unknown subcommand %q\n\n%s", args[0], captureUsage)
		return 2
	}
}

// parseCaptureFlags parses flags and returns the exit code to use when
// parsing ended the command (help, or a bad flag).
func parseCaptureFlags(fs *flag.FlagSet, args []string) (int, bool) {
	if err := parseFlags(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		fmt.Fprintf(os.Stderr, "relaysoak %s: %v\n", fs.Name(), err)
		return 2, false
	}
	return 0, true
}

// parseWithFile takes one positional capture file, before or after the flags.
func parseCaptureFile(fs *flag.FlagSet, args []string) (string, int, bool) {
	var file string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		file, args = args[0], args[1:]
	}
	if code, ok := parseCaptureFlags(fs, args); !ok {
		return "", code, false
	}
	rest := fs.Args()
	if file == "" && len(rest) > 0 {
		file, rest = rest[0], rest[1:]
	}
	if file == "" || len(rest) > 0 {
		fmt.Fprintf(os.Stderr, "relaysoak %s: give exactly one capture file (got %q and %q)\n", fs.Name(), file, rest)
		fs.Usage()
		return "", 2, false
	}
	return file, 0, true
}

// captureFail prints err, which already starts with what failed (the
// captures package's errors name the step, the file and the place).
func captureFail(err error) int {
	fmt.Fprintf(os.Stderr, "relaysoak capture: %v\n", err)
	return 1
}

func captureIsTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func captureRecord(args []string) int {
	fs := flag.NewFlagSet("capture record", flag.ContinueOnError)
	url := fs.String("url", "", "subscribeRepos endpoint to record: wss://HOST[/xrpc/com.atproto.sync.subscribeRepos][?cursor=N] (a PDS, a relay, the fleet)")
	duration := fs.Duration("duration", 0, "how long to record; 0 records until Ctrl-C (or --max-frames)")
	maxFrames := fs.Int64("max-frames", 0, "stop after this many frames; 0 means no limit")
	out := fs.String("out", "", "capture file to write (conventionally .rscap)")
	resolve := fs.Bool("resolve-dids", false, "store each account's DID document as of capture time")
	plc := fs.String("plc", "https://plc.directory", "PLC directory for --resolve-dids (GET {plc}/{did})")
	conc := fs.Int("resolve-concurrency", 4, "DID resolutions in flight at once")
	if code, ok := parseCaptureFlags(fs, args); !ok {
		return code
	}
	if *url == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "relaysoak capture record: --url and --out are required (or URL and OUT in the environment)")
		fs.Usage()
		return 2
	}
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
	if err != nil {
		if res.Manifest.Frames > 0 {
			err = fmt.Errorf("%w (%s holds the %d frames recorded before, closed cleanly; see 'relaysoak capture inspect %s')", err, *out, res.Manifest.Frames, *out)
		}
		return captureFail(err)
	}
	m, p := res.Manifest, res.Progress
	fmt.Printf("recorded %d frames (%s) from %s into %s in %s; stopped: %s\n",
		m.Frames, captureMiB(m.Bytes), *url, *out, p.Elapsed.Round(time.Second), res.Stopped)
	fmt.Printf("  kinds: %s; seq %d–%d; reconnects %d\n", captureKinds(m.Kinds), m.SeqMin, m.SeqMax, p.Reconnects)
	if *resolve {
		fmt.Printf("  DID documents: %d stored, %d not resolved (of %d accounts)\n", p.DIDsResolved, p.DIDsFailed, p.DIDsQueued)
	}
	fmt.Printf("  next: relaysoak capture inspect %s\n", *out)
	return 0
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

func captureImport(args []string) int {
	fs := flag.NewFlagSet("capture import", flag.ContinueOnError)
	frames := fs.String("frames", "", "the [u32 little-endian length][frame] dump to import, raw or zstd")
	docs := fs.String("did-docs", "", "optional JSON object DID → DID document beside the dump, raw or zstd")
	out := fs.String("out", "", "capture file to write (conventionally .rscap)")
	source := fs.String("source", "", "where the dump came from, for the manifest (e.g. the relay's subscribeRepos URL); default import:<frames>")
	host := fs.String("host", "", "origin host to give every frame; default the host of --source, else \"unknown\"")
	if code, ok := parseCaptureFlags(fs, args); !ok {
		return code
	}
	if *frames == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "relaysoak capture import: --frames and --out are required (or FRAMES and OUT in the environment)")
		fs.Usage()
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m, err := captures.Import(ctx, captures.ImportConfig{Frames: *frames, DIDDocs: *docs, Out: *out, Source: *source, Host: *host})
	if err != nil {
		return captureFail(err)
	}
	fmt.Printf("imported %d frames (%s) and %d DID documents into %s\n  kinds: %s; seq %d–%d\n  next: relaysoak capture inspect %s\n",
		m.Frames, captureMiB(m.Bytes), m.DIDDocs, *out, captureKinds(m.Kinds), m.SeqMin, m.SeqMax, *out)
	return 0
}

func captureExport(args []string) int {
	fs := flag.NewFlagSet("capture export", flag.ContinueOnError)
	out := fs.String("out", "", "the [u32 little-endian length][frame] dump to write; zstd when it ends in .zst")
	docsOut := fs.String("did-docs-out", "", "optional: write the DID documents as one JSON object here; zstd when it ends in .zst")
	allowTrunc := fs.Bool("allow-truncated", false, "export what a capture cut off before its close holds instead of failing")
	file, code, ok := parseCaptureFile(fs, args)
	if !ok {
		return code
	}
	if *out == "" {
		fmt.Fprintln(os.Stderr, "relaysoak capture export: --out is required (or OUT in the environment)")
		fs.Usage()
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := captures.Export(ctx, captures.ExportConfig{Capture: file, Out: *out, DIDDocsOut: *docsOut, AllowTruncated: *allowTrunc})
	if err != nil {
		if errors.Is(err, captures.ErrTruncated) {
			err = fmt.Errorf("%w; --allow-truncated exports the frames before the cut", err)
		}
		return captureFail(err)
	}
	fmt.Printf("exported %d frames to %s", res.Frames, *out)
	if *docsOut != "" {
		fmt.Printf(" and %d DID documents to %s", res.DIDDocs, *docsOut)
	}
	fmt.Println()
	if res.Truncated != nil {
		fmt.Fprintf(os.Stderr, "warning: the capture is cut off; exported the frames before the cut: %v\n", res.Truncated)
	}
	return 0
}

func captureInspect(args []string) int {
	fs := flag.NewFlagSet("capture inspect", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print the report as JSON instead of text")
	file, code, ok := parseCaptureFile(fs, args)
	if !ok {
		return code
	}
	rep, err := captures.Inspect(file, captures.InspectConfig{})
	if rep == nil {
		return captureFail(err)
	}
	var w io.Writer = os.Stdout
	if *asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if e := enc.Encode(rep); e != nil {
			return captureFail(e)
		}
	} else if e := rep.WriteText(w); e != nil {
		return captureFail(e)
	}
	if err != nil {
		hint := ""
		if errors.Is(err, captures.ErrTruncated) {
			hint = "; the report covers every frame before the cut"
		}
		return captureFail(fmt.Errorf("%w%s", err, hint))
	}
	return 0
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
