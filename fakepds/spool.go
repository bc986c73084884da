package fakepds

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// spool keeps every frame the fleet publishes on disk for as long as the
// fleet's history (Config.History), so that a relay coming back late with
// its cursor gets its backfill, as from a real PDS, while the fleet's
// memory holds only a small tail per host. Frames go to segment files that
// each cover a span of time; a segment past the history is deleted whole.
// Each host indexes its own frames by seq (host.disk), so a cursor is a
// slice index, not a scan.
type spool struct {
	dir    string
	owned  bool  // dir was made by the fleet and goes with it
	span   int64 // a segment's span, unix ns
	keep   int64 // the history, unix ns
	mu     sync.Mutex
	segs   []*segment // oldest first, numbered consecutively
	nextNo uint32
	buf    []byte // one record, reused under mu
}

type segment struct {
	no    uint32
	f     *os.File
	size  int64
	start int64 // unix ns of its first frame
}

// A location packs where a frame is and what it was: the segment's number,
// the offset in it, and the frame's kind and write states, so that a host's
// index is one word a frame.
type location uint64

const (
	locOffsetBits = 32 // a segment is rotated before 4 GiB
	locSegBits    = 22
	locStateShift = locOffsetBits + locSegBits // 8 bits of write states (frame.states)
	locCommitBit  = 1 << 62
	maxSegment    = 1<<32 - 64<<20
)

func makeLocation(seg uint32, off int64, commit bool, states uint8) location {
	l := location(off) | location(seg&(1<<locSegBits-1))<<locOffsetBits | location(states)<<locStateShift
	if commit {
		l |= locCommitBit
	}
	return l
}

func (l location) segment() uint32 { return uint32(l>>locOffsetBits) & (1<<locSegBits - 1) }
func (l location) offset() int64   { return int64(l & (1<<locOffsetBits - 1)) }
func (l location) states() uint8   { return uint8(l >> locStateShift) }
func (l location) commit() bool    { return l&locCommitBit != 0 }

// errGone is a frame whose segment has left the history.
var errGone = errors.New("frame is past the history")

func newSpool(dir string, keep time.Duration) (*spool, error) {
	owned := dir == ""
	if owned {
		d, err := os.MkdirTemp("", "relaysoak-history-")
		if err != nil {
			return nil, fmt.Errorf("fakepds: history spool: %w", err)
		}
		dir = d
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("fakepds: history spool %s: %w", dir, err)
	}
	// Twenty segments a history: deleting one frees a twentieth of it.
	span := max(keep/20, time.Second)
	return &spool{dir: dir, owned: owned, span: int64(span), keep: int64(keep)}, nil
}

// write appends data and returns where it is. now is unix ns.
func (s *spool) write(now int64, data []byte, commit bool, states uint8) (location, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(now)
	cur, err := s.current(now, len(data))
	if err != nil {
		return 0, err
	}
	s.buf = binary.LittleEndian.AppendUint32(s.buf[:0], uint32(len(data)))
	s.buf = append(s.buf, data...)
	if _, err := cur.f.Write(s.buf); err != nil {
		return 0, fmt.Errorf("fakepds: history spool %s: %w", cur.f.Name(), err)
	}
	off := cur.size
	cur.size += int64(len(s.buf))
	if cap(s.buf) > 1<<20 {
		s.buf = nil
	}
	return makeLocation(cur.no, off, commit, states), nil
}

// current is the segment to append n bytes to, a new one when the last is
// past its span or its size.
func (s *spool) current(now int64, n int) (*segment, error) {
	if k := len(s.segs); k > 0 {
		last := s.segs[k-1]
		if now-last.start < s.span && last.size+int64(n)+4 < maxSegment {
			return last, nil
		}
	}
	name := fmt.Sprintf("%s/segment-%08d", s.dir, s.nextNo)
	f, err := os.OpenFile(name, os.O_CREATE|os.O_RDWR|os.O_TRUNC|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("fakepds: history spool: %w", err)
	}
	seg := &segment{no: s.nextNo, f: f, start: now}
	s.nextNo = (s.nextNo + 1) & (1<<locSegBits - 1)
	s.segs = append(s.segs, seg)
	return seg, nil
}

// expire deletes the segments wholly past the history at now. Callers
// hold mu.
func (s *spool) expire(now int64) {
	for len(s.segs) > 1 && now-s.segs[1].start > s.keep {
		old := s.segs[0]
		old.f.Close()
		os.Remove(old.f.Name())
		s.segs[0] = nil
		s.segs = s.segs[1:]
	}
}

// oldest is the number of the oldest segment kept, and whether any is.
func (s *spool) oldest() (uint32, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.segs) == 0 {
		return 0, false
	}
	return s.segs[0].no, true
}

// kept says whether l's segment is still in the history, given the oldest
// kept segment's number: numbers wrap, so "older" is a distance.
func kept(l location, oldest uint32) bool {
	const mask = 1<<locSegBits - 1
	return (l.segment()-oldest)&mask < mask/2
}

// read returns the frame at l, or errGone when its segment was deleted.
func (s *spool) read(l location) ([]byte, error) {
	s.mu.Lock()
	var f *os.File
	for _, seg := range s.segs {
		if seg.no == l.segment() {
			f = seg.f
			break
		}
	}
	s.mu.Unlock()
	if f == nil {
		return nil, errGone
	}
	var n [4]byte
	if _, err := f.ReadAt(n[:], l.offset()); err != nil {
		return nil, s.readErr(f, l, err)
	}
	data := make([]byte, binary.LittleEndian.Uint32(n[:]))
	if _, err := f.ReadAt(data, l.offset()+4); err != nil {
		return nil, s.readErr(f, l, err)
	}
	return data, nil
}

// readErr is errGone for a segment closed by expire meanwhile.
func (s *spool) readErr(f *os.File, l location, err error) error {
	if errors.Is(err, os.ErrClosed) || errors.Is(err, io.EOF) {
		return errGone
	}
	return fmt.Errorf("fakepds: read history %s at %d: %w", f.Name(), l.offset(), err)
}

// close closes every segment and removes the directory the fleet made.
func (s *spool) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, seg := range s.segs {
		seg.f.Close()
		if !s.owned {
			os.Remove(seg.f.Name())
		}
	}
	s.segs = nil
	if s.owned {
		return os.RemoveAll(s.dir)
	}
	os.Remove(s.dir) // only when empty: files of others stay
	return nil
}
