package captures

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Record is one frame as it arrived.
type Record struct {
	Time  time.Time // arrival, as read off the connection
	Host  string    // the host the frame came from (the URL's host for a recording)
	Frame []byte    // the websocket message, byte for byte
}

// WriterConfig configures a Writer. The zero value is ready to use.
type WriterConfig struct {
	// Source says where the frames come from (a URL, a dump's path); it goes
	// into the manifest.
	Source string
	// BlockSize is the uncompressed size at which a block is compressed and
	// written. Default 1 MiB: big enough for zstd to find the repetition
	// between frames, small enough that a block costs little memory to read.
	BlockSize int
	// FlushInterval is the longest a record waits in memory before it is
	// written, checked on each Append; it bounds what a crash loses. Default
	// 1s. A caller whose stream can go quiet calls Flush on a timer too.
	FlushInterval time.Duration
	// Level is the zstd level. Default zstd.SpeedDefault.
	Level zstd.EncoderLevel
}

func (c *WriterConfig) defaults() {
	if c.BlockSize <= 0 {
		c.BlockSize = 1 << 20
	}
	if c.BlockSize > maxBlockRaw/2 {
		c.BlockSize = maxBlockRaw / 2
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = time.Second
	}
	if c.Level == 0 {
		c.Level = zstd.SpeedDefault
	}
}

// Writer appends records to a capture. It is safe for concurrent use (DID
// documents typically arrive from resolver goroutines while frames arrive
// from the connection). Memory is bounded by two pending blocks whatever the
// length of the capture.
type Writer struct {
	mu   sync.Mutex
	cfg  WriterConfig
	name string
	dst  *bufio.Writer
	file *os.File // nil when writing to a plain io.Writer
	off  int64    // bytes handed to dst so far: the next block's offset
	enc  *zstd.Encoder

	frames pending
	docs   pending
	hosts  map[string]uint64
	prevNS int64 // arrival of the previous frame in the pending frame block
	comp   []byte
	man    Manifest
	err    error // sticky: once a write fails, the file's tail is unknown
	closed bool
}

// pending is a block being filled.
type pending struct {
	buf     []byte
	records uint32
	since   time.Time // when its first record was added
}

// Create creates (or truncates) the capture file at path.
func Create(path string, cfg WriterConfig) (*Writer, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create capture: %w", err)
	}
	w, err := newWriter(f, path, cfg)
	if err != nil {
		f.Close()
		return nil, err
	}
	w.file = f
	return w, nil
}

// NewWriter writes a capture to dst, which Close does not close. name is used
// in errors.
func NewWriter(dst io.Writer, name string, cfg WriterConfig) (*Writer, error) {
	return newWriter(dst, name, cfg)
}

func newWriter(dst io.Writer, name string, cfg WriterConfig) (*Writer, error) {
	cfg.defaults()
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(cfg.Level), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, fmt.Errorf("capture %s: zstd encoder: %w", name, err)
	}
	w := &Writer{
		cfg:   cfg,
		name:  name,
		dst:   bufio.NewWriterSize(dst, 256<<10),
		enc:   enc,
		hosts: map[string]uint64{},
		man:   Manifest{Version: Version, Source: cfg.Source, Kinds: map[string]int64{}, Hosts: map[string]int64{}},
	}
	var hdr [headerLen]byte
	copy(hdr[:], magic)
	binary.LittleEndian.PutUint32(hdr[8:], Version)
	if err := w.write(hdr[:]); err != nil {
		return nil, err
	}
	js, err := json.Marshal(Info{Source: cfg.Source, Created: time.Now().UTC()})
	if err != nil {
		return nil, fmt.Errorf("capture %s: info: %w", name, err)
	}
	if err := w.writeJSONBlock(blockInfo, recInfo, js); err != nil {
		return nil, err
	}
	// Header and info go out at once so that even a capture killed before
	// its first frame is recognisable as one (and reads as cut off, not as
	// junk) and says where it came from.
	if err := w.flushDst(); err != nil {
		return nil, err
	}
	return w, nil
}

// Append adds one frame. Its bytes are copied, so the caller may reuse them.
func (w *Writer) Append(rec Record) error {
	fi, _ := ParseFrame(rec.Frame) // undecodable frames are data too: kept, counted as such
	return w.append(rec, fi)
}

func (w *Writer) append(rec Record, fi FrameInfo) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	if len(rec.Frame) > MaxFrameSize {
		return fmt.Errorf("capture %s: frame %d is %d bytes, above the %d-byte limit of the format; not stored",
			w.name, w.man.Frames+1, len(rec.Frame), MaxFrameSize)
	}
	if len(rec.Host) > 1<<16 {
		return fmt.Errorf("capture %s: host name of %d bytes; not a host", w.name, len(rec.Host))
	}
	if rec.Time.IsZero() {
		// The zero time has no Unix nanoseconds; a record that comes without
		// an arrival time arrived, as far as anyone knows, now.
		rec.Time = time.Now()
	}
	p := &w.frames
	if p.records == 0 {
		p.since = time.Now()
		w.prevNS = 0 // each block starts from absolute time, so blocks decode alone
	}
	id, ok := w.hosts[rec.Host]
	if !ok {
		id = uint64(len(w.hosts))
		w.hosts[rec.Host] = id
		p.buf = append(p.buf, recHost)
		p.buf = binary.AppendUvarint(p.buf, uint64(len(rec.Host)))
		p.buf = append(p.buf, rec.Host...)
		p.records++
	}
	ns := rec.Time.UnixNano()
	p.buf = append(p.buf, recFrame)
	p.buf = binary.AppendUvarint(p.buf, zigzag(ns-w.prevNS))
	p.buf = binary.AppendUvarint(p.buf, id)
	p.buf = binary.AppendUvarint(p.buf, uint64(len(rec.Frame)))
	p.buf = append(p.buf, rec.Frame...)
	p.records++
	w.prevNS = ns
	w.man.tally(rec, fi)
	return w.maybeFlush()
}

// AddDIDDoc stores the DID document of an account, as resolved (raw JSON).
func (w *Writer) AddDIDDoc(did string, doc []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	if did == "" || len(did) > 2048 {
		return fmt.Errorf("capture %s: DID document with a DID of %d bytes; a DID is 1 to 2048 bytes", w.name, len(did))
	}
	if len(doc) > MaxFrameSize || !json.Valid(doc) {
		return fmt.Errorf("capture %s: DID document of %s is not valid JSON (or above %d bytes); not stored", w.name, did, MaxFrameSize)
	}
	p := &w.docs
	if p.records == 0 {
		p.since = time.Now()
	}
	p.buf = append(p.buf, recDIDDoc)
	p.buf = binary.AppendUvarint(p.buf, uint64(len(did)))
	p.buf = append(p.buf, did...)
	p.buf = binary.AppendUvarint(p.buf, uint64(len(doc)))
	p.buf = append(p.buf, doc...)
	p.records++
	w.man.DIDDocs++
	return w.maybeFlush()
}

// Manifest returns the manifest as it stands.
func (w *Writer) Manifest() Manifest {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.man.clone()
}

// Flush writes pending records as blocks and hands them to the OS, so that
// a crash from here on loses nothing before this point.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	return w.flush()
}

// Close writes what is pending, the manifest and the footer, and closes the
// file (if Create opened it). A second Close does nothing.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return w.err
	}
	w.closed = true
	err := w.err
	if err == nil {
		err = w.finish()
	}
	if w.file != nil {
		if err == nil {
			// The footer is the proof of a clean close; make it survive a
			// power cut too, not just a process crash.
			if e := w.file.Sync(); e != nil {
				err = fmt.Errorf("capture %s: sync: %w", w.name, e)
			}
		}
		if e := w.file.Close(); e != nil && err == nil {
			err = fmt.Errorf("capture %s: close: %w", w.name, e)
		}
	}
	w.enc.Close()
	if w.err == nil {
		w.err = err
	}
	return err
}

func (w *Writer) finish() error {
	if err := w.flushBlocks(); err != nil {
		return err
	}
	js, err := json.Marshal(w.man)
	if err != nil {
		return fmt.Errorf("capture %s: manifest: %w", w.name, err)
	}
	at := w.off
	if err := w.writeJSONBlock(blockManifest, recManifst, js); err != nil {
		return err
	}
	var foot [footerLen]byte
	copy(foot[:], footerMagic)
	binary.LittleEndian.PutUint64(foot[8:], uint64(at))
	if err := w.write(foot[:]); err != nil {
		return err
	}
	return w.flushDst()
}

func (w *Writer) writeJSONBlock(kind, typ byte, js []byte) error {
	var p pending
	p.buf = append(p.buf, typ)
	p.buf = binary.AppendUvarint(p.buf, uint64(len(js)))
	p.buf = append(p.buf, js...)
	p.records = 1
	return w.writeBlock(kind, &p)
}

func (w *Writer) usable() error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return fmt.Errorf("capture %s: write after Close", w.name)
	}
	return nil
}

func (w *Writer) maybeFlush() error {
	if len(w.frames.buf) >= w.cfg.BlockSize || len(w.docs.buf) >= w.cfg.BlockSize {
		return w.flush()
	}
	now := time.Now()
	if (w.frames.records > 0 && now.Sub(w.frames.since) >= w.cfg.FlushInterval) ||
		(w.docs.records > 0 && now.Sub(w.docs.since) >= w.cfg.FlushInterval) {
		return w.flush()
	}
	return nil
}

func (w *Writer) flush() error {
	if w.frames.records == 0 && w.docs.records == 0 {
		return nil
	}
	if err := w.flushBlocks(); err != nil {
		return err
	}
	return w.flushDst()
}

func (w *Writer) flushBlocks() error {
	if err := w.writeBlock(blockFrames, &w.frames); err != nil {
		return err
	}
	return w.writeBlock(blockDIDDocs, &w.docs)
}

func (w *Writer) writeBlock(kind byte, p *pending) error {
	if p.records == 0 {
		return nil
	}
	w.comp = w.enc.EncodeAll(p.buf, w.comp[:0])
	var hdr [blockHdrLen]byte
	putBlockHeader(hdr[:], kind, p.records, uint32(len(p.buf)), uint32(len(w.comp)))
	binary.LittleEndian.PutUint32(hdr[13:], blockCRC(hdr[:], w.comp))
	if err := w.write(hdr[:]); err != nil {
		return err
	}
	if err := w.write(w.comp); err != nil {
		return err
	}
	// Keep the buffer for the next block unless one huge frame blew it up.
	if cap(p.buf) > 4*w.cfg.BlockSize {
		p.buf = nil
	} else {
		p.buf = p.buf[:0]
	}
	p.records = 0
	return nil
}

func (w *Writer) write(b []byte) error {
	n, err := w.dst.Write(b)
	w.off += int64(n)
	if err != nil {
		w.err = fmt.Errorf("write capture %s at byte %d: %w", w.name, w.off, err)
		return w.err
	}
	return nil
}

func (w *Writer) flushDst() error {
	if err := w.dst.Flush(); err != nil {
		w.err = fmt.Errorf("write capture %s at byte %d: %w", w.name, w.off, err)
		return w.err
	}
	return nil
}
