// Package cborhead reads and writes the heads of DAG-CBOR items, and finds
// what a reader of a subscribeRepos stream needs to know about a frame —
// its kind, seq, account, time — by walking item heads, without decoding
// (or allocating for) the frame's records and blocks.
//
// A full decode of a commit frame costs tens of microseconds and a few
// kilobytes of garbage (BenchmarkPeekVersusDecode); a walk over its heads
// costs a few hundred nanoseconds. The fleet uses it to rewrite a captured
// frame's seq, the rig's consumers to count and resume on every frame,
// decoding in full only the frames they verify.
//
// It must not know where frames come from or what is done with them.
package cborhead

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Major types of CBOR items.
const (
	Uint   byte = 0
	Neg    byte = 1
	Bytes  byte = 2
	Text   byte = 3
	Array  byte = 4
	Map    byte = 5
	Tag    byte = 6
	Simple byte = 7
)

// MaxDepth bounds nesting while skipping an item: a hostile or corrupt
// frame cannot make a walk recurse without end.
const MaxDepth = 64

// ErrShort is returned when an item runs past the end of the bytes: a
// truncated frame, or a prefix of one.
var ErrShort = errors.New("CBOR item runs past the end of the bytes")

// Head decodes the head at p: major type, argument and where the item's
// content starts. Indefinite lengths are not DAG-CBOR and are refused.
func Head(b []byte, p int) (maj byte, arg uint64, next int, err error) {
	if p < 0 || p >= len(b) {
		return 0, 0, 0, ErrShort
	}
	maj, ai := b[p]>>5, b[p]&0x1f
	p++
	switch {
	case ai < 24:
		return maj, uint64(ai), p, nil
	case ai <= 27:
		n := 1 << (ai - 24)
		if p+n > len(b) {
			return 0, 0, 0, ErrShort
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

// TextAt reads the text string at p and where it ends.
func TextAt(b []byte, p int) (string, int, error) {
	s, next, err := textBytes(b, p)
	return string(s), next, err
}

// textBytes is TextAt without the copy, for comparing keys.
func textBytes(b []byte, p int) ([]byte, int, error) {
	maj, n, q, err := Head(b, p)
	if err != nil {
		return nil, 0, err
	}
	if maj != Text {
		return nil, 0, fmt.Errorf("CBOR major type %d at byte %d, want a text string", maj, p)
	}
	if n > uint64(len(b)-q) {
		return nil, 0, ErrShort
	}
	return b[q : q+int(n)], q + int(n), nil
}

// Skip returns where the item at p ends.
func Skip(b []byte, p int) (int, error) { return skip(b, p, 0) }

func skip(b []byte, p, depth int) (int, error) {
	if depth > MaxDepth {
		return 0, fmt.Errorf("CBOR nested deeper than %d levels", MaxDepth)
	}
	maj, arg, q, err := Head(b, p)
	if err != nil {
		return 0, err
	}
	switch maj {
	case Uint, Neg, Simple:
		return q, nil
	case Bytes, Text:
		if arg > uint64(len(b)-q) {
			return 0, ErrShort
		}
		return q + int(arg), nil
	case Array, Map:
		items := arg
		if maj == Map {
			items *= 2
		}
		if items > uint64(len(b)-q) { // every item takes a byte at least
			return 0, ErrShort
		}
		for i := uint64(0); i < items; i++ {
			if q, err = skip(b, q, depth+1); err != nil {
				return 0, err
			}
		}
		return q, nil
	default: // a tag, then its item
		return skip(b, q, depth+1)
	}
}

// AppendHead appends the minimal head of major type maj with argument v:
// an integer's whole encoding, or the head of a string, array or map.
func AppendHead(b []byte, maj byte, v uint64) []byte {
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

// Frame is what Peek finds in a subscribeRepos frame.
type Frame struct {
	// Op is the header's op: 1 a message, -1 an error frame.
	Op int64
	// Kind is the header's t: "#commit", "#identity"…
	Kind string
	// HasSeq says Seq was read; SeqOff and SeqLen are the byte range of
	// its encoding (head included), for rewriting it in place.
	HasSeq         bool
	Seq            int64
	SeqOff, SeqLen int
	// DID is the body's repo (#commit) or did (the other kinds).
	DID string
	// Time is the body's time, as written.
	Time string
	// PrevData says the body has a prevData that is not null.
	PrevData bool
}

// bodyKinds are the message kinds of com.atproto.sync.subscribeRepos whose
// bodies Peek reads.
var bodyKinds = map[string]bool{"#commit": true, "#sync": true, "#identity": true, "#account": true, "#info": true}

// Peek walks a frame's header map and body map. On a truncated frame (or a
// prefix of one) it returns what it found before the end with ErrShort: a
// consumer that reads only a frame's first kilobytes still gets the header
// and seq, which DAG-CBOR's key order puts before the blocks.
func Peek(b []byte) (Frame, error) {
	var f Frame
	maj, count, p, err := Head(b, 0)
	if err != nil {
		return f, fmt.Errorf("frame header: %w", err)
	}
	if maj != Map {
		return f, fmt.Errorf("frame header is CBOR major type %d, not a map", maj)
	}
	for i := uint64(0); i < count; i++ {
		key, next, err := textBytes(b, p)
		if err != nil {
			return f, fmt.Errorf("frame header key %d: %w", i, err)
		}
		switch string(key) {
		case "t":
			if f.Kind, _, err = TextAt(b, next); err != nil {
				return f, fmt.Errorf("frame header t: %w", err)
			}
		case "op":
			vmaj, v, _, err := Head(b, next)
			switch {
			case err != nil:
				return f, fmt.Errorf("frame header op: %w", err)
			case vmaj == Uint && v < 1<<63:
				f.Op = int64(v)
			case vmaj == Neg && v < 1<<63:
				f.Op = -1 - int64(v)
			default:
				return f, fmt.Errorf("frame header op is CBOR major type %d", vmaj)
			}
		}
		if p, err = Skip(b, next); err != nil {
			return f, fmt.Errorf("frame header value of %q: %w", key, err)
		}
	}
	switch {
	case f.Op != 1:
		return f, nil // an error frame's body is {error, message}: nothing to find
	case !bodyKinds[f.Kind]:
		return f, nil // a kind this stream does not carry: its body is not ours to read
	}
	maj, count, p, err = Head(b, p)
	if err != nil {
		return f, fmt.Errorf("%s body: %w", f.Kind, err)
	}
	if maj != Map {
		return f, fmt.Errorf("%s body is CBOR major type %d, not a map", f.Kind, maj)
	}
	for i := uint64(0); i < count; i++ {
		key, next, err := textBytes(b, p)
		if err != nil {
			return f, fmt.Errorf("%s body key %d: %w", f.Kind, i, err)
		}
		end, err := Skip(b, next)
		if err != nil {
			return f, fmt.Errorf("%s body value of %q: %w", f.Kind, key, err)
		}
		switch string(key) {
		case "seq":
			vmaj, v, _, err := Head(b, next)
			if err == nil && vmaj == Uint && v < 1<<63 {
				f.HasSeq, f.Seq, f.SeqOff, f.SeqLen = true, int64(v), next, end-next
			}
		case "repo", "did":
			if vmaj, _, _, err := Head(b, next); err == nil && vmaj == Text {
				f.DID, _, _ = TextAt(b, next)
			}
		case "time":
			if vmaj, _, _, err := Head(b, next); err == nil && vmaj == Text {
				f.Time, _, _ = TextAt(b, next)
			}
		case "prevData":
			f.PrevData = b[next] != 0xf6 // null
		}
		p = end
	}
	return f, nil
}
