package captures

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/relaysoak/relaysoak/internal/atomicfile"
)

// The common dump format that other tools and the shared captures use: a
// stream of [u32 little-endian length][frame bytes], optionally zstd, with
// the DID documents in a JSON object (DID → document) beside it, optionally
// zstd too. Compression is detected by the zstd magic on reading and chosen
// by a ".zst" suffix on writing.

var zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

// ErrEmptyDump is wrapped by Import's error for a dump without a single
// frame (an empty file, or an empty stream inside zstd): importing it would
// make a capture that replays nothing.
var ErrEmptyDump = errors.New("empty dump: no frames")

// ErrBadDump is matched (errors.Is) by every Import error about its input —
// the dump or its DID documents missing, empty, cut off, damaged or of
// another format — and by no error about writing the capture, so a caller
// can tell bad input from a failure of its own.
var ErrBadDump = errors.New("bad dump")

// badInput marks err as ErrBadDump without changing its message.
type badInput struct{ error }

func (e badInput) Unwrap() error        { return e.error }
func (e badInput) Is(target error) bool { return target == ErrBadDump }

// ImportConfig says what to import. Frames and Out are required.
type ImportConfig struct {
	Frames  string // the [u32 LE length][frame] dump, raw or zstd
	DIDDocs string // optional: JSON object DID → document, raw or zstd
	Out     string // the capture to write
	// Source goes into the capture's manifest. Default "import:" + Frames.
	Source string
	// Host is the origin host given to every frame (a dump does not record
	// one). Default: the host of Source when it is a URL, else "unknown".
	Host string
	// Writer tunes the capture writer; its Source is replaced by Source.
	Writer WriterConfig
}

// Import converts a raw-frame dump (and its DID documents) into a capture,
// streaming: neither file is held in memory. It is all or nothing: on any
// error (ErrEmptyDump for a dump without frames, a cut-off or damaged dump,
// a frame that is not firehose data) cfg.Out is left as it was, or absent.
//
// A dump has no arrival times. Each frame is given its event's own `time`
// field, held non-decreasing (relays emit slightly out of order); frames
// without one take the previous frame's. That keeps the capture's own timing
// close to what the network did, which is what a replay at --speed needs.
func Import(ctx context.Context, cfg ImportConfig) (Manifest, error) {
	if cfg.Frames == "" || cfg.Out == "" {
		return Manifest{}, errors.New("import: both the frames dump and the output capture must be given")
	}
	if cfg.Source == "" {
		cfg.Source = "import:" + cfg.Frames
	}
	if cfg.Host == "" {
		cfg.Host = "unknown"
		if u, err := url.Parse(cfg.Source); err == nil && u.Host != "" {
			cfg.Host = u.Hostname()
		}
	}
	src, err := openMaybeZstd(cfg.Frames)
	if err != nil {
		return Manifest{}, badInput{fmt.Errorf("import frames: %w", err)}
	}
	defer src.Close()
	if bytes.HasPrefix(src.peek, []byte(magic[:4])) {
		return Manifest{}, badInput{fmt.Errorf("import frames: %s is already a relaysoak capture; use it as it is", cfg.Frames)}
	}
	var fallback time.Time
	if st, err := os.Stat(cfg.Frames); err == nil {
		fallback = st.ModTime().UTC()
	}

	wcfg := cfg.Writer
	wcfg.Source = cfg.Source
	// The capture is written beside cfg.Out and renamed into place only when
	// complete: a failed import must leave neither a capture that reads as
	// cleanly closed nor a clobbered earlier one.
	out, err := atomicfile.Create(cfg.Out, 0o644)
	if err != nil {
		return Manifest{}, fmt.Errorf("import: %w", err)
	}
	defer out.Abort()
	w, err := NewWriter(out, cfg.Out, wcfg)
	if err != nil {
		return Manifest{}, fmt.Errorf("import: %w", err)
	}
	fail := func(err error) (Manifest, error) {
		w.Close()
		return Manifest{}, err
	}

	dr := frameDumpReader{r: src, name: cfg.Frames}
	var last time.Time
	for n := 0; ; n++ {
		if n%1024 == 0 && ctx.Err() != nil {
			return fail(fmt.Errorf("import %s: %w", cfg.Frames, ctx.Err()))
		}
		frame, err := dr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fail(badInput{err})
		}
		// A frame whose header does not decode is not firehose data: the
		// dump is damaged or of another format, and a capture of it would
		// replay garbage.
		if _, _, err := ParseFrameKind(frame); err != nil {
			return fail(badInput{fmt.Errorf("import %s frame %d (byte %d of the uncompressed stream): not a firehose frame: %w", cfg.Frames, dr.frames, dr.off-int64(len(frame))-4, err)})
		}
		fi, _ := ParseFrame(frame)
		if t, ok := fi.EventTime(); ok && t.After(last) {
			last = t.UTC()
		}
		if last.IsZero() {
			last = fallback
		}
		if err := w.append(Record{Time: last, Host: cfg.Host, Frame: frame}, fi); err != nil {
			return fail(fmt.Errorf("import %s frame %d: %w", cfg.Frames, dr.frames, err))
		}
	}
	if dr.frames == 0 {
		return fail(badInput{fmt.Errorf("import %s: %w", cfg.Frames, ErrEmptyDump)})
	}
	if cfg.DIDDocs != "" {
		if err := readDIDDocJSON(cfg.DIDDocs, w.AddDIDDoc); err != nil {
			return fail(badInput{err})
		}
	}
	m := w.Manifest()
	if err := w.Close(); err != nil {
		return Manifest{}, fmt.Errorf("import: %w", err)
	}
	if err := out.Commit(); err != nil {
		return Manifest{}, fmt.Errorf("import: %w", err)
	}
	return m, nil
}

// frameDumpReader reads [u32 LE length][frame] records.
type frameDumpReader struct {
	r      io.Reader
	name   string
	off    int64 // in the decompressed stream
	frames int64
	buf    []byte
}

func (d *frameDumpReader) next() ([]byte, error) {
	var l [4]byte
	n, err := io.ReadFull(d.r, l[:])
	if err == io.EOF {
		return nil, io.EOF
	}
	at := d.off
	d.off += int64(n)
	num := d.frames + 1
	if err != nil {
		return nil, d.errorf(num, at, err, "cut off inside a length prefix")
	}
	size := binary.LittleEndian.Uint32(l[:])
	if size > MaxFrameSize {
		return nil, d.errorf(num, at, nil, "length prefix says %d bytes, above the %d-byte frame limit: not a [u32 little-endian length][frame] dump, or corrupt", size, MaxFrameSize)
	}
	d.buf, n, err = readGrow(d.r, d.buf, int(size))
	d.off += int64(n)
	if err != nil {
		return nil, d.errorf(num, at, err, "cut off inside the frame (%d of %d bytes)", n, size)
	}
	d.frames++
	return d.buf, nil
}

func (d *frameDumpReader) errorf(frame, at int64, err error, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		msg += ": " + err.Error()
	}
	return fmt.Errorf("read frame dump %s at frame %d (byte %d of the uncompressed stream): %s", d.name, frame, at, msg)
}

// readDIDDocJSON streams a JSON object DID → document, calling fn for each
// entry in file order with the document compacted.
func readDIDDocJSON(path string, fn func(did string, doc []byte) error) error {
	src, err := openMaybeZstd(path)
	if err != nil {
		return fmt.Errorf("import DID documents: %w", err)
	}
	defer src.Close()
	dec := json.NewDecoder(src)
	where := func() string { return fmt.Sprintf("DID documents %s at byte %d", path, dec.InputOffset()) }
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("read %s: %w", where(), err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("read %s: want a JSON object of DID → document, found %v", where(), tok)
	}
	var compact bytes.Buffer
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("read %s: %w", where(), err)
		}
		did, _ := tok.(string)
		var doc json.RawMessage
		if err := dec.Decode(&doc); err != nil {
			return fmt.Errorf("read %s: document of %s: %w", where(), did, err)
		}
		compact.Reset()
		if err := json.Compact(&compact, doc); err != nil {
			return fmt.Errorf("read %s: document of %s: %w", where(), did, err)
		}
		if err := fn(did, compact.Bytes()); err != nil {
			return fmt.Errorf("read %s: %w", where(), err)
		}
	}
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("read %s: %w", where(), err)
	}
	return nil
}

// maybeZstd is a file read through zstd when it starts with the zstd magic.
type maybeZstd struct {
	io.Reader
	peek []byte
	f    *os.File
	z    *zstd.Decoder
}

func openMaybeZstd(path string) (*maybeZstd, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(f, 256<<10)
	peek, _ := br.Peek(8)
	m := &maybeZstd{Reader: br, peek: append([]byte(nil), peek...), f: f}
	if bytes.HasPrefix(peek, zstdMagic) {
		// One goroutine: the machine is shared, and decompression is not the
		// bottleneck of an import.
		z, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(1<<31))
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: zstd: %w", path, err)
		}
		m.z = z
		// Peek through the decompressed stream too, for format detection.
		zb := bufio.NewReaderSize(z, 64<<10)
		p, _ := zb.Peek(8)
		m.peek = append([]byte(nil), p...)
		m.Reader = zb
	}
	return m, nil
}

func (m *maybeZstd) Close() error {
	if m.z != nil {
		m.z.Close()
	}
	return m.f.Close()
}

// ExportConfig says what to export. Capture and Out are required.
type ExportConfig struct {
	Capture string
	Out     string // the frame dump; zstd when it ends in ".zst"
	// DIDDocsOut, when set, receives the DID documents as one JSON object;
	// zstd when it ends in ".zst".
	DIDDocsOut string
	// AllowTruncated exports what a capture cut off before its close holds
	// instead of failing; the result says it was cut off.
	AllowTruncated bool
}

// ExportResult says what an export wrote.
type ExportResult struct {
	Frames, DIDDocs int64
	// Truncated is the read error of a cut-off capture exported with
	// AllowTruncated.
	Truncated error
}

// Export writes a capture out as a raw-frame dump (and DID-document JSON),
// streaming. The frames are the bytes the capture holds, unchanged. The
// outputs are replaced only on success: on any error they are left as they
// were, or absent.
func Export(ctx context.Context, cfg ExportConfig) (ExportResult, error) {
	var res ExportResult
	if cfg.Capture == "" || cfg.Out == "" {
		return res, errors.New("export: both the capture and the output dump must be given")
	}
	// The outputs are written beside their targets and renamed into place
	// only when complete, so a failed export (a missing capture included)
	// leaves the files already there as they were.
	out, err := createMaybeZstd(cfg.Out)
	if err != nil {
		return res, fmt.Errorf("export: %w", err)
	}
	defer out.abort()
	var docs *maybeZstdWriter
	var docsW *didDocJSONWriter
	rcfg := ReaderConfig{}
	if cfg.DIDDocsOut != "" {
		if docs, err = createMaybeZstd(cfg.DIDDocsOut); err != nil {
			return res, fmt.Errorf("export: %w", err)
		}
		defer docs.abort()
		docsW = &didDocJSONWriter{w: docs, seen: map[string]bool{}}
		rcfg.OnDIDDoc = func(did string, doc []byte) error {
			wrote, err := docsW.add(did, doc)
			if wrote {
				res.DIDDocs++
			}
			return err
		}
	}
	r, err := Open(cfg.Capture, rcfg)
	if err != nil {
		return res, fmt.Errorf("export: %w", err)
	}
	defer r.Close()
	var l [4]byte
	for n := 0; ; n++ {
		if n%1024 == 0 && ctx.Err() != nil {
			return res, fmt.Errorf("export %s: %w", cfg.Capture, ctx.Err())
		}
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if cfg.AllowTruncated && errors.Is(err, ErrTruncated) {
				res.Truncated = err
				break
			}
			return res, fmt.Errorf("export: %w", err)
		}
		binary.LittleEndian.PutUint32(l[:], uint32(len(rec.Frame)))
		if _, err := out.Write(l[:]); err != nil {
			return res, fmt.Errorf("export: write %s: %w", cfg.Out, err)
		}
		if _, err := out.Write(rec.Frame); err != nil {
			return res, fmt.Errorf("export: write %s: %w", cfg.Out, err)
		}
		res.Frames++
	}
	if docsW != nil {
		if err := docsW.finish(); err != nil {
			return res, fmt.Errorf("export: write %s: %w", cfg.DIDDocsOut, err)
		}
		if err := docs.finish(); err != nil {
			return res, fmt.Errorf("export: %w", err)
		}
	}
	if err := out.finish(); err != nil {
		return res, fmt.Errorf("export: %w", err)
	}
	files := []*atomicfile.File{out.f}
	if docs != nil {
		files = append(files, docs.f)
	}
	if err := atomicfile.CommitAll(files...); err != nil {
		return res, fmt.Errorf("export: %w", err)
	}
	return res, nil
}

// didDocJSONWriter streams a JSON object DID → document, indented like the
// dumps it mirrors, keeping the first document of a DID stored twice.
type didDocJSONWriter struct {
	w    io.Writer
	seen map[string]bool
	buf  bytes.Buffer
}

func (d *didDocJSONWriter) add(did string, doc []byte) (bool, error) {
	if d.seen[did] {
		return false, nil
	}
	d.buf.Reset()
	if len(d.seen) == 0 {
		d.buf.WriteString("{\n  ")
	} else {
		d.buf.WriteString(",\n  ")
	}
	d.seen[did] = true
	key, _ := json.Marshal(did)
	d.buf.Write(key)
	d.buf.WriteString(": ")
	if err := json.Indent(&d.buf, doc, "  ", "  "); err != nil {
		return false, fmt.Errorf("DID document of %s: %w", did, err)
	}
	_, err := d.w.Write(d.buf.Bytes())
	return true, err
}

func (d *didDocJSONWriter) finish() error {
	end := "\n}\n"
	if len(d.seen) == 0 {
		end = "{}\n"
	}
	_, err := io.WriteString(d.w, end)
	return err
}

// maybeZstdWriter writes a file, through zstd when its name ends in ".zst",
// to a temporary file that the caller commits once finish succeeds.
type maybeZstdWriter struct {
	io.Writer
	path string
	f    *atomicfile.File
	bw   *bufio.Writer
	z    *zstd.Encoder
}

func createMaybeZstd(path string) (*maybeZstdWriter, error) {
	f, err := atomicfile.Create(path, 0o644)
	if err != nil {
		return nil, err
	}
	m := &maybeZstdWriter{path: path, f: f, bw: bufio.NewWriterSize(f, 256<<10)}
	m.Writer = m.bw
	if strings.HasSuffix(path, ".zst") {
		z, err := zstd.NewWriter(m.bw, zstd.WithEncoderConcurrency(1))
		if err != nil {
			f.Abort()
			return nil, fmt.Errorf("%s: zstd: %w", path, err)
		}
		m.Writer, m.z = z, z
	}
	return m, nil
}

// finish ends the zstd stream and flushes; the file is then ready to commit.
func (m *maybeZstdWriter) finish() error {
	if m.z != nil {
		if err := m.z.Close(); err != nil {
			return fmt.Errorf("write %s: %w", m.path, err)
		}
		m.z = nil
	}
	if err := m.bw.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", m.path, err)
	}
	return nil
}

// abort discards a file that was not committed; the target keeps whatever
// it held before.
func (m *maybeZstdWriter) abort() {
	if m.z != nil {
		m.z.Close()
	}
	m.f.Abort()
}
