package fakepds

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Frames published verbatim (a capture's, for replay) keep every byte but
// the body's seq: the relay then checks the original signatures, MST blocks
// and times. Finding the seq needs no decoding of the frame's contents, only
// a walk over the CBOR items' heads, which costs a few hundred nanoseconds
// where a full decode and re-encode costs tens of microseconds.

// SeqSlot says where a frame's body seq is: the kind from the header's `t`,
// and the byte range of the seq's encoded integer (head included).
type SeqSlot struct {
	Kind     string
	Off, Len int
	Seq      int64
	DID      string // the body's repo (#commit) or did (the other kinds)
}

// ErrNoSeq is returned for frames whose body has no integer seq (#info,
// error frames).
var ErrNoSeq = errors.New("frame body has no integer seq")

// LocateSeq finds the body's seq in a subscribeRepos frame (header map,
// then body map, both DAG-CBOR).
func LocateSeq(frame []byte) (SeqSlot, error) {
	var s SeqSlot
	n, kind, op, err := scanHeader(frame)
	if err != nil {
		return s, fmt.Errorf("frame header: %w", err)
	}
	s.Kind = kind
	if op != 1 {
		return s, fmt.Errorf("frame op %d: %w", op, ErrNoSeq)
	}
	body := n
	maj, count, p, err := cborHead(frame, body)
	if err != nil {
		return s, fmt.Errorf("%s body: %w", kind, err)
	}
	if maj != 5 {
		return s, fmt.Errorf("%s body is CBOR major type %d, not a map", kind, maj)
	}
	found := false
	for i := uint64(0); i < count; i++ {
		key, next, err := cborText(frame, p)
		if err != nil {
			return s, fmt.Errorf("%s body key %d: %w", kind, i, err)
		}
		end, err := skipItem(frame, next, 0)
		if err != nil {
			return s, fmt.Errorf("%s body value of %q: %w", kind, key, err)
		}
		switch key {
		case "seq":
			vmaj, v, _, err := cborHead(frame, next)
			if err != nil || vmaj != 0 || v > 1<<63-1 {
				return s, fmt.Errorf("%s body seq is not a non-negative integer: %w", kind, ErrNoSeq)
			}
			s.Off, s.Len, s.Seq, found = next, end-next, int64(v), true
		case "repo", "did":
			if d, _, err := cborText(frame, next); err == nil {
				s.DID = d
			}
		}
		p = end
	}
	if !found {
		return s, fmt.Errorf("%s: %w", kind, ErrNoSeq)
	}
	return s, nil
}

// RewriteSeq returns a copy of frame whose body seq is seq; every other
// byte is the frame's own. When seq's minimal encoding is as wide as the
// old one (the fleet's seqs and a big relay's are both above 2^32, so both
// take 9 bytes) the copy has the same length and differs only inside the
// integer; otherwise the integer is spliced at its place.
func RewriteSeq(frame []byte, slot SeqSlot, seq int64) []byte {
	enc := appendUint(make([]byte, 0, 9), 0, uint64(seq))
	out := make([]byte, 0, len(frame)-slot.Len+len(enc))
	out = append(out, frame[:slot.Off]...)
	out = append(out, enc...)
	return append(out, frame[slot.Off+slot.Len:]...)
}

// PublishFrame sequences a captured frame on host hostIndex: the frame goes
// out byte for byte but for its seq, rewritten to the host's next one. It is
// counted in Stats by kind. The frame is copied; the caller may reuse it.
func (f *Fleet) PublishFrame(hostIndex int, frame []byte) (int64, error) {
	if hostIndex < 0 || hostIndex >= len(f.hosts) {
		return 0, fmt.Errorf("fakepds: publish frame on host %d: the fleet has hosts 0 to %d", hostIndex, len(f.hosts)-1)
	}
	slot, err := LocateSeq(frame)
	if err != nil {
		return 0, fmt.Errorf("fakepds: publish frame on %s: %w", f.hosts[hostIndex].name, err)
	}
	h := f.hosts[hostIndex]
	seq, err := h.publish(f.cfg.HistoryAge, func(seq int64, _ time.Time) ([]byte, error) {
		return RewriteSeq(frame, slot, seq), nil
	})
	if err != nil {
		return 0, fmt.Errorf("fakepds: publish %s frame on %s: %w", slot.Kind, h.name, err)
	}
	f.countKind(slot.Kind)
	return seq, nil
}

func (f *Fleet) countKind(kind string) {
	switch kind {
	case "#commit":
		f.commits.Add(1)
	case "#identity":
		f.identities.Add(1)
	case "#account":
		f.accountEvts.Add(1)
	case "#sync":
		f.syncs.Add(1)
	}
}

// scanHeader reads the frame header {op, t} and returns where the body starts.
func scanHeader(b []byte) (body int, kind string, op int64, err error) {
	maj, count, p, err := cborHead(b, 0)
	if err != nil {
		return 0, "", 0, err
	}
	if maj != 5 {
		return 0, "", 0, fmt.Errorf("CBOR major type %d, not a map", maj)
	}
	for i := uint64(0); i < count; i++ {
		key, next, err := cborText(b, p)
		if err != nil {
			return 0, "", 0, err
		}
		end, err := skipItem(b, next, 0)
		if err != nil {
			return 0, "", 0, err
		}
		switch key {
		case "t":
			if kind, _, err = cborText(b, next); err != nil {
				return 0, "", 0, fmt.Errorf("t: %w", err)
			}
		case "op":
			vmaj, v, _, err := cborHead(b, next)
			if err != nil {
				return 0, "", 0, err
			}
			switch vmaj {
			case 0:
				op = int64(v)
			case 1:
				op = -1 - int64(v)
			default:
				return 0, "", 0, fmt.Errorf("op is CBOR major type %d", vmaj)
			}
		}
		p = end
	}
	return p, kind, op, nil
}

var errShort = errors.New("CBOR item runs past the end of the frame")

// cborHead decodes the head at p: major type, argument and where the
// item's content starts. Indefinite lengths are not DAG-CBOR and refused.
func cborHead(b []byte, p int) (maj byte, arg uint64, next int, err error) {
	if p >= len(b) {
		return 0, 0, 0, errShort
	}
	maj, ai := b[p]>>5, b[p]&0x1f
	p++
	switch {
	case ai < 24:
		return maj, uint64(ai), p, nil
	case ai <= 27:
		n := 1 << (ai - 24)
		if p+n > len(b) {
			return 0, 0, 0, errShort
		}
		switch n {
		case 1:
			arg = uint64(b[p])
		case 2:
			arg = uint64(binary.BigEndian.Uint16(b[p:]))
		case 4:
			arg = uint64(binary.BigEndian.Uint32(b[p:]))
		case 8:
			arg = binary.BigEndian.Uint64(b[p:])
		}
		return maj, arg, p + n, nil
	default:
		return 0, 0, 0, fmt.Errorf("CBOR additional info %d (indefinite or reserved) at byte %d", ai, p-1)
	}
}

func cborText(b []byte, p int) (string, int, error) {
	maj, n, q, err := cborHead(b, p)
	if err != nil {
		return "", 0, err
	}
	if maj != 3 {
		return "", 0, fmt.Errorf("CBOR major type %d at byte %d, want a text string", maj, p)
	}
	if n > uint64(len(b)-q) {
		return "", 0, errShort
	}
	return string(b[q : q+int(n)]), q + int(n), nil
}

// skipItem returns where the item at p ends.
func skipItem(b []byte, p, depth int) (int, error) {
	if depth > 64 {
		return 0, errors.New("CBOR nested deeper than 64 levels")
	}
	maj, arg, q, err := cborHead(b, p)
	if err != nil {
		return 0, err
	}
	switch maj {
	case 0, 1, 7:
		return q, nil
	case 2, 3:
		if arg > uint64(len(b)-q) {
			return 0, errShort
		}
		return q + int(arg), nil
	case 4, 5:
		items := arg
		if maj == 5 {
			items *= 2
		}
		if items > uint64(len(b)-q) { // every item takes a byte at least
			return 0, errShort
		}
		for i := uint64(0); i < items; i++ {
			if q, err = skipItem(b, q, depth+1); err != nil {
				return 0, err
			}
		}
		return q, nil
	default: // 6: a tag, then its item
		return skipItem(b, q, depth+1)
	}
}

// appendUint appends the minimal CBOR head of major type maj and argument v.
func appendUint(b []byte, maj byte, v uint64) []byte {
	m := maj << 5
	switch {
	case v < 24:
		return append(b, m|byte(v))
	case v <= 0xff:
		return append(b, m|24, byte(v))
	case v <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, m|25), uint16(v))
	case v <= 0xffffffff:
		return binary.BigEndian.AppendUint32(append(b, m|26), uint32(v))
	default:
		return binary.BigEndian.AppendUint64(append(b, m|27), v)
	}
}
