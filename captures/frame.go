package captures

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/events"
	cbg "github.com/whyrusleeping/cbor-gen"
)

// Frame kinds as they appear in the header's `t`, plus the two this package
// names itself: error frames (op -1) carry no `t`, and frames whose header
// does not decode still need a bucket so that no frame goes uncounted.
const (
	KindCommit   = "#commit"
	KindIdentity = "#identity"
	KindAccount  = "#account"
	KindSync     = "#sync"
	KindInfo     = "#info"
	KindError    = "error"
	KindUnknown  = "undecodable"
)

// FrameInfo is what a subscribeRepos frame says about itself.
type FrameInfo struct {
	Op   int64
	Kind string // one of the Kind constants, or the header's `t` for kinds this package does not know
	Seq  int64  // 0 for kinds without one (#info, error)
	DID  string // the account: `repo` of a #commit, `did` of the others
	Time string // the event's own `time` field, as sent
	Ops  []Op   // #commit only
}

// Op is one record operation of a #commit.
type Op struct {
	Action string // create, update, delete
	Path   string // collection/rkey
}

// Collection is the NSID part of the op's path.
func (o Op) Collection() string {
	c, _, _ := strings.Cut(o.Path, "/")
	return c
}

// EventTime parses the event's own `time` field; ok is false when it is
// missing or malformed.
func (fi FrameInfo) EventTime() (t time.Time, ok bool) {
	if fi.Time == "" {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, fi.Time)
	return t, err == nil
}

// ParseFrameKind decodes only the header: the cheap path for code that needs
// the kind and nothing else.
func ParseFrameKind(frame []byte) (op int64, kind string, err error) {
	defer recoverDecode(&err)
	var h events.EventHeader
	if err := h.UnmarshalCBOR(cbg.NewCborReader(bytes.NewReader(frame))); err != nil {
		return 0, KindUnknown, fmt.Errorf("frame header: %w", err)
	}
	return h.Op, kindOf(h), nil
}

// ParseFrame decodes a frame's header and, for the subscribeRepos kinds, its
// body with indigo's generated types. On error the Kind is still set as far
// as it was decoded (KindUnknown when the header itself failed).
func ParseFrame(frame []byte) (fi FrameInfo, err error) {
	fi.Kind = KindUnknown
	defer recoverDecode(&err)
	cr := cbg.NewCborReader(bytes.NewReader(frame))
	var h events.EventHeader
	if err := h.UnmarshalCBOR(cr); err != nil {
		return fi, fmt.Errorf("frame header: %w", err)
	}
	fi.Op, fi.Kind = h.Op, kindOf(h)
	if h.Op != events.EvtKindMessage {
		return fi, nil
	}
	switch fi.Kind {
	case KindCommit:
		var e comatproto.SyncSubscribeRepos_Commit
		if err := e.UnmarshalCBOR(cr); err != nil {
			return fi, fmt.Errorf("%s body: %w", fi.Kind, err)
		}
		fi.Seq, fi.DID, fi.Time = e.Seq, e.Repo, e.Time
		fi.Ops = make([]Op, 0, len(e.Ops))
		for _, op := range e.Ops {
			if op != nil {
				fi.Ops = append(fi.Ops, Op{Action: op.Action, Path: op.Path})
			}
		}
	case KindIdentity:
		var e comatproto.SyncSubscribeRepos_Identity
		if err := e.UnmarshalCBOR(cr); err != nil {
			return fi, fmt.Errorf("%s body: %w", fi.Kind, err)
		}
		fi.Seq, fi.DID, fi.Time = e.Seq, e.Did, e.Time
	case KindAccount:
		var e comatproto.SyncSubscribeRepos_Account
		if err := e.UnmarshalCBOR(cr); err != nil {
			return fi, fmt.Errorf("%s body: %w", fi.Kind, err)
		}
		fi.Seq, fi.DID, fi.Time = e.Seq, e.Did, e.Time
	case KindSync:
		var e comatproto.SyncSubscribeRepos_Sync
		if err := e.UnmarshalCBOR(cr); err != nil {
			return fi, fmt.Errorf("%s body: %w", fi.Kind, err)
		}
		fi.Seq, fi.DID, fi.Time = e.Seq, e.Did, e.Time
	case KindInfo:
		var e comatproto.SyncSubscribeRepos_Info
		if err := e.UnmarshalCBOR(cr); err != nil {
			return fi, fmt.Errorf("%s body: %w", fi.Kind, err)
		}
	}
	return fi, nil
}

func kindOf(h events.EventHeader) string {
	switch h.Op {
	case events.EvtKindMessage:
		if h.MsgType == "" {
			return KindUnknown
		}
		return h.MsgType
	case events.EvtKindErrorFrame:
		return KindError
	default:
		return "op:" + strconv.FormatInt(h.Op, 10)
	}
}

// recoverDecode turns a panic inside the generated decoders into an error.
// Frames come off the network and out of files that may be corrupt; a bug in
// a third-party decoder must cost one frame, not the process.
func recoverDecode(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("frame decoder panicked on malformed input: %v", r)
	}
}
