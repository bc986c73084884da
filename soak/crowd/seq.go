package crowd

import "github.com/relaysoak/relaysoak/internal/cborhead"

// A consumer needs two things from a frame: whether it is an error frame
// (the header's op is -1) and the body's seq, to resume from. The body's
// keys are in DAG-CBOR order (shorter keys first), so "seq" comes after at
// most "ops" and "rev": within the first few kilobytes even of the
// largest commit, which is all a consumer here reads of a frame.

// scanFrame reads the header's op and, for a message frame (op 1), the
// body's seq. ok is false when b (a frame, or a prefix of one) holds no
// complete integer seq: error and #info frames, truncated or malformed bytes.
func scanFrame(b []byte) (op int64, seq int64, ok bool) {
	fr, _ := cborhead.Peek(b) // a prefix ends in ErrShort; what came before it stands
	return fr.Op, fr.Seq, fr.Op == 1 && fr.HasSeq
}
