package crowd

// A consumer needs two things from a frame: whether it is an error frame
// (the header's op is -1) and the body's seq, to resume from. Both are
// found by walking CBOR item heads over a prefix of the frame; nothing is
// decoded or allocated. The body's keys are in DAG-CBOR order (shorter keys
// first), so "seq" comes after at most "ops" and "rev": within the first
// few kilobytes even of the largest commit.

// maxDepth bounds nesting while skipping an item: a hostile or corrupt
// frame cannot make the scan recurse without end.
const maxDepth = 16

// scanFrame reads the header's op and, for a message frame (op 1), the
// body's seq. ok is false when b (a frame, or a prefix of one) holds no
// complete integer seq: error and #info frames, truncated or malformed bytes.
func scanFrame(b []byte) (op int64, seq int64, ok bool) {
	maj, n, p, good := cborHead(b, 0)
	if !good || maj != 5 {
		return 0, 0, false
	}
	for range n {
		var isOp bool
		if p, isOp, good = keyIs(b, p, "op"); !good {
			return op, 0, false
		}
		if isOp {
			vmaj, v, next, good := cborHead(b, p)
			switch {
			case !good:
				return op, 0, false
			case vmaj == 0 && v < 1<<63:
				op = int64(v)
			case vmaj == 1 && v < 1<<63:
				op = -1 - int64(v)
			}
			p = next
			continue
		}
		if p, good = skipItem(b, p, 0); !good {
			return op, 0, false
		}
	}
	if op != 1 {
		return op, 0, false
	}
	maj, n, p, good = cborHead(b, p)
	if !good || maj != 5 {
		return op, 0, false
	}
	for range n {
		var isSeq bool
		if p, isSeq, good = keyIs(b, p, "seq"); !good {
			return op, 0, false
		}
		if isSeq {
			vmaj, v, _, good := cborHead(b, p)
			if !good || vmaj != 0 || v >= 1<<63 {
				return op, 0, false
			}
			return op, int64(v), true
		}
		if p, good = skipItem(b, p, 0); !good {
			return op, 0, false
		}
	}
	return op, 0, false
}

// keyIs reads a text-string map key at p and says whether it is want.
func keyIs(b []byte, p int, want string) (next int, is, ok bool) {
	maj, n, q, ok := cborHead(b, p)
	if !ok || maj != 3 || n > uint64(len(b)-q) {
		return 0, false, false
	}
	end := q + int(n)
	return end, string(b[q:end]) == want, true
}

// cborHead reads the head of the item at p: its major type, its argument
// (a length, count or integer value) and where its content starts.
// Indefinite lengths, which DAG-CBOR forbids, are not ok.
func cborHead(b []byte, p int) (maj byte, arg uint64, next int, ok bool) {
	if p < 0 || p >= len(b) {
		return 0, 0, 0, false
	}
	maj, info := b[p]>>5, b[p]&0x1f
	p++
	var size int
	switch {
	case info < 24:
		return maj, uint64(info), p, true
	case info == 24:
		size = 1
	case info == 25:
		size = 2
	case info == 26:
		size = 4
	case info == 27:
		size = 8
	default:
		return 0, 0, 0, false
	}
	if len(b)-p < size {
		return 0, 0, 0, false
	}
	for _, c := range b[p : p+size] {
		arg = arg<<8 | uint64(c)
	}
	return maj, arg, p + size, true
}

// skipItem returns where the item at p ends.
func skipItem(b []byte, p, depth int) (int, bool) {
	if depth > maxDepth {
		return 0, false
	}
	maj, arg, p, ok := cborHead(b, p)
	if !ok {
		return 0, false
	}
	switch maj {
	case 0, 1, 7: // integers, simple values and floats: the head is all
		return p, true
	case 2, 3: // byte and text strings
		if arg > uint64(len(b)-p) {
			return 0, false
		}
		return p + int(arg), true
	case 6: // a tag (CIDs are tag 42) and its one item
		return skipItem(b, p, depth+1)
	}
	items := arg // array
	if maj == 5 {
		if arg > uint64(len(b)) {
			return 0, false
		}
		items = 2 * arg
	}
	if items > uint64(len(b)-p) { // every item takes a byte at least
		return 0, false
	}
	for range items {
		if p, ok = skipItem(b, p, depth+1); !ok {
			return 0, false
		}
	}
	return p, true
}
