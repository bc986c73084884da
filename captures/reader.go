package captures

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// ReadError is every error a Reader returns other than io.EOF. It names the
// file, the number of the frame being read (the first frame is 1) and the
// byte offset of the block (or header, or footer) where reading failed.
type ReadError struct {
	File   string
	Frame  int64
	Offset int64
	Err    error // wraps ErrTruncated, ErrCorrupt or an I/O error
}

func (e *ReadError) Error() string {
	return fmt.Sprintf("read capture %s at frame %d (byte %d): %v", e.File, e.Frame, e.Offset, e.Err)
}

func (e *ReadError) Unwrap() error { return e.Err }

// ReaderConfig configures a Reader. The zero value reads frames only.
type ReaderConfig struct {
	// OnDIDDoc, when set, receives each DID document as its block is reached
	// during Next. Without it DID-document blocks are skipped undecompressed.
	// doc is valid only during the call. An error from it stops the reader.
	OnDIDDoc func(did string, doc []byte) error
	// SkipFrames skips frame blocks undecompressed: Next then only walks the
	// DID documents and the manifest, and returns io.EOF (or the error) at the end.
	SkipFrames bool
}

// Reader iterates over a capture block by block: memory holds one block
// (about 1 MiB), whatever the capture's length.
type Reader struct {
	cfg  ReaderConfig
	name string
	src  *bufio.Reader
	file *os.File
	off  int64 // bytes consumed from src

	blk     []byte // the current frame block, decompressed
	pos     int
	blkOff  int64
	recLeft uint32 // records the block header promised that are not yet decoded
	prevNS  int64
	hosts   []string
	comp    []byte

	frames int64
	info   *Info
	man    *Manifest
	manOff int64
	err    error // sticky
}

// Open opens the capture at path and checks its header.
func Open(path string, cfg ReaderConfig) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open capture: %w", err)
	}
	r, err := NewReader(f, path, cfg)
	if err != nil {
		f.Close()
		return nil, err
	}
	r.file = f
	return r, nil
}

// NewReader reads a capture from src; name is used in errors. It checks the
// header before returning.
func NewReader(src io.Reader, name string, cfg ReaderConfig) (*Reader, error) {
	r := &Reader{cfg: cfg, name: name, src: bufio.NewReaderSize(src, 256<<10)}
	if _, err := decoder(); err != nil {
		return nil, fmt.Errorf("capture %s: zstd decoder: %w", name, err)
	}
	var hdr [headerLen]byte
	n, err := io.ReadFull(r.src, hdr[:])
	r.off += int64(n)
	switch {
	case n >= len(magic) && string(hdr[:len(magic)]) != magic, n < len(magic) && !bytes.HasPrefix([]byte(magic), hdr[:n]):
		return nil, r.errorf(0, ErrCorrupt, "not a relaysoak capture (it starts with % x, not %q); a raw [u32 length][frame] dump is read with `relaysoak capture import`", hdr[:min(n, 8)], magic)
	case n == 0 && err == io.EOF:
		return nil, r.errorf(0, ErrTruncated, "empty file")
	case err != nil && (err == io.EOF || err == io.ErrUnexpectedEOF):
		return nil, r.errorf(0, ErrTruncated, "cut off inside the %d-byte file header after %d bytes", headerLen, n)
	case err != nil:
		return nil, r.errorf(0, nil, "read header: %w", err)
	}
	if v := binary.LittleEndian.Uint32(hdr[8:]); v != Version {
		return nil, r.errorf(8, ErrCorrupt, "format version %d; this relaysoak reads version %d: use a relaysoak of the version that wrote it", v, Version)
	}
	if f := binary.LittleEndian.Uint32(hdr[12:]); f != 0 {
		return nil, r.errorf(12, ErrCorrupt, "header flags %#x set; version %d defines none", f, Version)
	}
	return r, nil
}

// Next returns the next frame. It returns io.EOF after the last frame of a
// capture that was closed cleanly; anything else (a cut-off tail included)
// is a *ReadError. Record.Frame shares memory with its block (about 1 MiB):
// copy it to keep a few frames for long.
func (r *Reader) Next() (Record, error) {
	for r.err == nil {
		if r.pos < len(r.blk) {
			rec, ok, err := r.decodeFrameRecord()
			if err != nil {
				r.err = err
				break
			}
			if ok {
				return rec, nil
			}
			continue
		}
		if r.blk != nil && r.recLeft != 0 {
			r.err = r.errorf(r.blkOff, ErrCorrupt, "frame block holds %d records fewer than its header counts", r.recLeft)
			break
		}
		r.blk = nil
		r.err = r.nextBlock()
	}
	return Record{}, r.err
}

// Manifest returns the manifest stored at close, once Next has reached it
// (it is the last block). ok is false before that and for a capture cut off
// before its close; ReadManifest rebuilds one from the frames then.
func (r *Reader) Manifest() (m Manifest, ok bool) {
	if r.man == nil {
		return Manifest{}, false
	}
	return r.man.clone(), true
}

// Frames is the number of frames Next has returned.
func (r *Reader) Frames() int64 { return r.frames }

// Offset is the number of file bytes consumed so far.
func (r *Reader) Offset() int64 { return r.off }

// Close closes the file if Open opened it.
func (r *Reader) Close() error {
	if r.file != nil {
		return r.file.Close()
	}
	return nil
}

func (r *Reader) errorf(at int64, kind error, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	if kind != nil {
		err = fmt.Errorf("%w: %w", kind, err)
	}
	return &ReadError{File: r.name, Frame: r.frames + 1, Offset: at, Err: err}
}

func (r *Reader) nextBlock() error {
	start := r.off
	kind, err := r.src.ReadByte()
	if err == io.EOF {
		if r.man != nil {
			return r.errorf(start, ErrTruncated, "cut off after the manifest, before the %d-byte footer", footerLen)
		}
		return r.errorf(start, ErrTruncated, "ends after %d complete frames without its closing manifest; everything before this byte is intact", r.frames)
	}
	if err != nil {
		return r.errorf(start, nil, "read block: %w", err)
	}
	r.off++
	if kind == footerKind {
		return r.readFooter(start)
	}
	if r.man != nil {
		return r.errorf(start, ErrCorrupt, "block of kind %q after the manifest, which must be the last block", kind)
	}
	var hdr [blockHdrLen]byte
	hdr[0] = kind
	n, err := io.ReadFull(r.src, hdr[1:])
	r.off += int64(n)
	if err != nil {
		return r.ioErr(start, err, "inside a block header (%d of %d bytes)", n+1, blockHdrLen)
	}
	records := binary.LittleEndian.Uint32(hdr[1:])
	rawLen := binary.LittleEndian.Uint32(hdr[5:])
	compLen := binary.LittleEndian.Uint32(hdr[9:])
	sum := binary.LittleEndian.Uint32(hdr[13:])
	if rawLen > maxBlockRaw || compLen > maxBlockComp || compLen == 0 || records == 0 || records > rawLen {
		return r.errorf(start, ErrCorrupt, "block header of kind %q says %d records, %d bytes raw, %d compressed: outside what a writer produces", kind, records, rawLen, compLen)
	}
	skip := kind != blockFrames && kind != blockDIDDocs && kind != blockManifest && kind != blockInfo || // a later version's block kind
		kind == blockFrames && r.cfg.SkipFrames ||
		kind == blockDIDDocs && r.cfg.OnDIDDoc == nil
	// Skipped blocks are read and checked too: a flipped kind byte must not
	// make a frame block vanish as "a kind this version does not know".
	r.comp, n, err = readGrow(r.src, r.comp, int(compLen))
	r.off += int64(n)
	if err != nil {
		return r.ioErr(start, err, "inside a block of kind %q (%d of %d compressed bytes present)", kind, n, compLen)
	}
	if got := blockCRC(hdr[:], r.comp); got != sum {
		return r.errorf(start, ErrCorrupt, "block checksum %08x, header says %08x: the block's bytes changed after it was written", got, sum)
	}
	if skip {
		return nil
	}
	dec, _ := decoder()
	// Sized from the header only up to a normal block: a header that lies
	// (with a checksum to match) must not buy a large allocation by itself;
	// the decoder grows the buffer as real output appears, up to maxBlockRaw.
	raw, err := dec.DecodeAll(r.comp, make([]byte, 0, min(rawLen, 2<<20)))
	if err != nil {
		return r.errorf(start, ErrCorrupt, "decompress block: %w", err)
	}
	if len(raw) != int(rawLen) {
		return r.errorf(start, ErrCorrupt, "block decompresses to %d bytes, header says %d", len(raw), rawLen)
	}
	switch kind {
	case blockFrames:
		r.blk, r.pos, r.blkOff, r.recLeft, r.prevNS = raw, 0, start, records, 0
		return nil
	case blockDIDDocs:
		return r.readDIDDocs(start, raw, records)
	case blockInfo:
		return r.readInfo(start, raw, records)
	default:
		return r.readManifest(start, raw, records)
	}
}

// ioErr reports a read that stopped early: end of file there means the file
// was cut off mid-block.
func (r *Reader) ioErr(at int64, err error, format string, args ...any) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return r.errorf(at, ErrTruncated, "cut off "+format, args...)
	}
	return r.errorf(at, nil, "read "+format+": %w", append(args, err)...)
}

func (r *Reader) readFooter(start int64) error {
	var foot [footerLen]byte
	foot[0] = footerKind
	n, err := io.ReadFull(r.src, foot[1:])
	r.off += int64(n)
	if err != nil {
		return r.ioErr(start, err, "inside the footer (%d of %d bytes)", n+1, footerLen)
	}
	if string(foot[:8]) != footerMagic {
		return r.errorf(start, ErrCorrupt, "block kind %q is neither a block nor the footer %q", footerKind, footerMagic)
	}
	if r.man == nil {
		return r.errorf(start, ErrCorrupt, "footer without a manifest block before it")
	}
	if at := int64(binary.LittleEndian.Uint64(foot[8:])); at != r.manOff {
		return r.errorf(start, ErrCorrupt, "footer points at byte %d for the manifest, which is at byte %d", at, r.manOff)
	}
	if _, err := r.src.ReadByte(); err != io.EOF {
		return r.errorf(r.off, ErrCorrupt, "bytes after the footer (the end of a capture)")
	}
	return io.EOF
}

func (r *Reader) decodeFrameRecord() (Record, bool, error) {
	b, at := r.blk, r.pos
	fail := func(what string) (Record, bool, error) {
		return Record{}, false, r.errorf(r.blkOff, ErrCorrupt, "record at +%d of the block's %d decompressed bytes: %s", at, len(b), what)
	}
	if r.recLeft == 0 {
		return fail("more records than the block header counts")
	}
	r.recLeft--
	typ := b[at]
	p := at + 1
	switch typ {
	case recHost:
		l, n := binary.Uvarint(b[p:])
		if n <= 0 || l > uint64(len(b)-p-n) {
			return fail("host name length runs past the block")
		}
		p += n
		r.hosts = append(r.hosts, string(b[p:p+int(l)]))
		r.pos = p + int(l)
		return Record{}, false, nil
	case recFrame:
		d, n := binary.Uvarint(b[p:])
		if n <= 0 {
			return fail("bad arrival time")
		}
		p += n
		h, n := binary.Uvarint(b[p:])
		if n <= 0 || h >= uint64(len(r.hosts)) {
			return fail(fmt.Sprintf("host %d not defined (%d hosts so far)", h, len(r.hosts)))
		}
		p += n
		l, n := binary.Uvarint(b[p:])
		if n <= 0 || l > uint64(len(b)-p-n) || l > MaxFrameSize {
			return fail("frame length runs past the block")
		}
		p += n
		ns := r.prevNS + unzigzag(d)
		r.prevNS = ns
		end := p + int(l)
		r.pos = end
		r.frames++
		// The capacity limit keeps a caller's append from overwriting the next record.
		return Record{Time: time.Unix(0, ns).UTC(), Host: r.hosts[h], Frame: b[p:end:end]}, true, nil
	default:
		return fail(fmt.Sprintf("unknown record type %q in a frame block", typ))
	}
}

func (r *Reader) readDIDDocs(start int64, b []byte, records uint32) error {
	for p, n := 0, uint32(0); p < len(b) || n < records; n++ {
		at := p
		fail := func(what string) error {
			return r.errorf(start, ErrCorrupt, "DID-document record at +%d of the block's %d decompressed bytes: %s", at, len(b), what)
		}
		if n >= records || p >= len(b) {
			return fail(fmt.Sprintf("the header counts %d records, the block holds another amount", records))
		}
		if b[p] != recDIDDoc {
			return fail(fmt.Sprintf("unknown record type %q in a DID-document block", b[p]))
		}
		p++
		l, k := binary.Uvarint(b[p:])
		if k <= 0 || l > uint64(len(b)-p-k) {
			return fail("DID length runs past the block")
		}
		p += k
		did := string(b[p : p+int(l)])
		p += int(l)
		l, k = binary.Uvarint(b[p:])
		if k <= 0 || l > uint64(len(b)-p-k) {
			return fail("document length runs past the block")
		}
		p += k
		doc := b[p : p+int(l)]
		p += int(l)
		if err := r.cfg.OnDIDDoc(did, doc); err != nil {
			return &ReadError{File: r.name, Frame: r.frames + 1, Offset: start, Err: fmt.Errorf("DID document of %s: %w", did, err)}
		}
	}
	return nil
}

func (r *Reader) readManifest(start int64, b []byte, records uint32) error {
	var m Manifest
	if err := r.readJSONBlock(start, b, records, recManifst, "manifest", &m); err != nil {
		return err
	}
	r.man, r.manOff = &m, start
	return nil
}

func (r *Reader) readInfo(start int64, b []byte, records uint32) error {
	if r.info != nil {
		return r.errorf(start, ErrCorrupt, "a second info block; a capture has one, first")
	}
	var in Info
	if err := r.readJSONBlock(start, b, records, recInfo, "info", &in); err != nil {
		return err
	}
	r.info = &in
	return nil
}

// readJSONBlock decodes a block that holds a single JSON record.
func (r *Reader) readJSONBlock(start int64, b []byte, records uint32, typ byte, what string, v any) error {
	if records != 1 || len(b) == 0 || b[0] != typ {
		return r.errorf(start, ErrCorrupt, "%s block does not hold exactly one %s record", what, what)
	}
	l, k := binary.Uvarint(b[1:])
	if k <= 0 || l != uint64(len(b)-1-k) {
		return r.errorf(start, ErrCorrupt, "%s record length does not match its block", what)
	}
	if err := json.Unmarshal(b[1+k:], v); err != nil {
		return r.errorf(start, ErrCorrupt, "%s JSON: %w", what, err)
	}
	return nil
}

// Info returns what the writer said about the capture when it created it;
// ok is false until Next has passed the info block (the first block).
func (r *Reader) Info() (in Info, ok bool) {
	if r.info == nil {
		return Info{}, false
	}
	return *r.info, true
}

// readGrow reads exactly n bytes into buf, growing it as the data arrives
// rather than trusting n up front: a corrupt length must not allocate more
// than the file actually holds.
func readGrow(src io.Reader, buf []byte, n int) ([]byte, int, error) {
	buf = buf[:0]
	for len(buf) < n {
		chunk := min(n-len(buf), max(len(buf), 1<<20))
		if cap(buf)-len(buf) < chunk {
			nb := make([]byte, len(buf), len(buf)+chunk)
			copy(nb, buf)
			buf = nb
		}
		m, err := io.ReadFull(src, buf[len(buf):len(buf)+chunk])
		buf = buf[:len(buf)+m]
		if err != nil {
			return buf, len(buf), err
		}
	}
	return buf, len(buf), nil
}

// ReadManifest returns a capture's manifest. For a capture closed cleanly it
// reads the footer and the manifest block and nothing else. For one cut off
// before its close it rebuilds the manifest from every frame that can be
// read and returns it together with the *ReadError that says where the
// capture ends (errors.Is(err, ErrTruncated)).
func ReadManifest(path string) (Manifest, error) {
	if m, ok := manifestFromFooter(path); ok {
		return m, nil
	}
	r, err := Open(path, ReaderConfig{OnDIDDoc: func(string, []byte) error { return nil }})
	if err != nil {
		return Manifest{}, err
	}
	defer r.Close()
	m := Manifest{Version: Version, Kinds: map[string]int64{}, Hosts: map[string]int64{}}
	var docs int64
	r.cfg.OnDIDDoc = func(string, []byte) error { docs++; return nil }
	for {
		rec, err := r.Next()
		if err == io.EOF {
			if stored, ok := r.Manifest(); ok {
				return stored, nil
			}
			return m, nil // unreachable: io.EOF comes only after the manifest
		}
		if err != nil {
			m.DIDDocs = docs
			if in, ok := r.Info(); ok {
				m.Source = in.Source
			}
			return m, err
		}
		fi, _ := ParseFrame(rec.Frame)
		m.tally(rec, fi)
	}
}

// manifestFromFooter is the fast path: seek to the footer, then to the
// manifest block it points at.
func manifestFromFooter(path string) (Manifest, bool) {
	f, err := os.Open(path)
	if err != nil {
		return Manifest{}, false
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() < headerLen+blockHdrLen+footerLen {
		return Manifest{}, false
	}
	var foot [footerLen]byte
	if _, err := f.ReadAt(foot[:], st.Size()-footerLen); err != nil || string(foot[:8]) != footerMagic {
		return Manifest{}, false
	}
	at := int64(binary.LittleEndian.Uint64(foot[8:]))
	if at < headerLen || at > st.Size()-footerLen-blockHdrLen {
		return Manifest{}, false
	}
	var hdr [headerLen]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		return Manifest{}, false
	}
	// Read header + manifest block + footer through the ordinary reader, so
	// that every check applies.
	sec := io.MultiReader(bytes.NewReader(hdr[:]), io.NewSectionReader(f, at, st.Size()-at))
	r, err := NewReader(sec, path, ReaderConfig{})
	if err != nil {
		return Manifest{}, false
	}
	r.off = at // offsets as in the file, so that the footer's pointer checks out
	if _, err := r.Next(); !errors.Is(err, io.EOF) {
		return Manifest{}, false
	}
	return r.Manifest()
}

// ReadDIDDocs calls fn with each DID document stored in the capture at
// path, skipping the frame blocks without decompressing them. doc is valid
// only during the call. A capture cut off before its close yields the
// documents before the cut and then the *ReadError (ErrTruncated).
func ReadDIDDocs(path string, fn func(did string, doc []byte) error) error {
	r, err := Open(path, ReaderConfig{SkipFrames: true, OnDIDDoc: fn})
	if err != nil {
		return err
	}
	defer r.Close()
	if _, err := r.Next(); err != io.EOF {
		return err
	}
	return nil
}
