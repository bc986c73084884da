package fakepds

import (
	"errors"
	"fmt"
	"time"

	"github.com/relaysoak/relaysoak/internal/cborhead"
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
	fr, err := cborhead.Peek(frame)
	s := SeqSlot{Kind: fr.Kind, Off: fr.SeqOff, Len: fr.SeqLen, Seq: fr.Seq, DID: fr.DID}
	switch {
	case err != nil:
		return s, err
	case fr.Op != 1:
		return s, fmt.Errorf("frame op %d: %w", fr.Op, ErrNoSeq)
	case !fr.HasSeq:
		return s, fmt.Errorf("%s: %w", fr.Kind, ErrNoSeq)
	}
	return s, nil
}

// RewriteSeq returns a copy of frame whose body seq is seq; every other
// byte is the frame's own. When seq's minimal encoding is as wide as the
// old one (the fleet's seqs and a big relay's are both above 2^32, so both
// take 9 bytes) the copy has the same length and differs only inside the
// integer; otherwise the integer is spliced at its place.
func RewriteSeq(frame []byte, slot SeqSlot, seq int64) []byte {
	enc := cborhead.AppendHead(make([]byte, 0, 9), cborhead.Uint, uint64(seq))
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
	seq, err := h.publish(slot.Kind == "#commit", func(seq int64, _ time.Time) ([]byte, error) {
		return RewriteSeq(frame, slot, seq), nil
	})
	if err != nil {
		return 0, fmt.Errorf("fakepds: publish %s frame on %s: %w", slot.Kind, h.name, err)
	}
	f.countKind(h, slot.Kind)
	f.expireHistories(time.Now().UnixNano())
	return seq, nil
}

func (f *Fleet) countKind(h *host, kind string) {
	switch kind {
	case "#commit":
		f.commits.Add(1)
		h.commits.Add(1)
	case "#identity":
		f.identities.Add(1)
	case "#account":
		f.accountEvts.Add(1)
	case "#sync":
		f.syncs.Add(1)
	}
}
