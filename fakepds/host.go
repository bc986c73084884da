package fakepds

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/events"
	"github.com/gorilla/websocket"
)

// frame is one encoded event as sent on the wire, with its seq.
type frame struct {
	seq  int64
	at   int64 // unix nanoseconds: half the size of a time.Time, times thousands of frames
	data []byte
}

// host is one PDS: its sequencer, its bounded history and its subscribers.
type host struct {
	name  string
	index int

	mu       sync.Mutex
	seq      int64    // last seq handed out
	startSeq int64    // seq before this process's first frame: no frame at or below it was sent by this fleet
	history  []*frame // ring, oldest at histHead; grows up to maxHist
	histHead int
	histLen  int
	maxHist  int
	subs     map[*subscriber]struct{}
	accounts []*account // accounts hosted here; guarded by the fleet's hostsMu

	downUntil atomic.Int64  // unix ns: an outage (outage.go) refuses subscribers until then
	commits   atomic.Uint64 // #commit frames this host sequenced
}

// subscriber is one connection's queue. The queue grows as frames wait
// and is let go once written: thousands of subscribers idle most of the
// time, and a channel sized to the bound would cost each its full size
// (4 KiB at 512 frames) for the whole run.
type subscriber struct {
	mu    sync.Mutex
	queue []*frame      // frames published and not yet taken, oldest first
	max   int           // past it, the subscriber is cut off
	wake  chan struct{} // holds a token while the queue has frames
	cut   chan struct{} // closed when the subscriber is dropped for being slow
	drop  chan struct{} // closed by an outage: the connection just ends
}

// offer queues f; false when the queue is full.
func (s *subscriber) offer(f *frame) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) >= s.max {
		return false
	}
	s.queue = append(s.queue, f)
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return true
}

// take moves the queued frames into into[:0] and returns it.
func (s *subscriber) take(into []*frame) []*frame {
	s.mu.Lock()
	defer s.mu.Unlock()
	into = append(into[:0], s.queue...)
	if cap(s.queue) > 64 {
		s.queue = nil // a burst's queue is not kept for the rest of the run
	} else {
		clear(s.queue)
		s.queue = s.queue[:0]
	}
	return into
}

func newHost(i int, name string, historyFrames int, startSeq int64) *host {
	return &host{
		name:     name,
		index:    i,
		seq:      startSeq,
		startSeq: startSeq,
		history:  make([]*frame, min(8, historyFrames)),
		maxHist:  historyFrames,
		subs:     map[*subscriber]struct{}{},
	}
}

// headSeq is the last seq this host handed out.
func (h *host) headSeq() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.seq
}

// publish sequences an event, encodes it, keeps it in the history and hands
// it to every subscriber. encode is called under the host lock with the
// seq and time so both are stamped at emission. Subscribers that cannot
// take the frame are cut off: the fleet never buffers for a slow consumer.
func (h *host) publish(maxAge time.Duration, encode func(seq int64, now time.Time) ([]byte, error)) (int64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	seq := h.seq + 1
	data, err := encode(seq, now)
	if err != nil {
		return 0, err
	}
	h.seq = seq
	f := &frame{seq: seq, at: now.UnixNano(), data: data}
	h.appendHistory(f, maxAge)
	for s := range h.subs {
		if !s.offer(f) {
			delete(h.subs, s)
			close(s.cut)
		}
	}
	return seq, nil
}

func (h *host) appendHistory(f *frame, maxAge time.Duration) {
	h.expireHistory(f.at, maxAge)
	n := len(h.history)
	if h.histLen == n && n < h.maxHist {
		// Grow the ring: most hosts are quiet and never need the full size.
		grown := make([]*frame, min(2*n, h.maxHist))
		for i := 0; i < h.histLen; i++ {
			grown[i] = h.history[(h.histHead+i)%n]
		}
		h.history, h.histHead, n = grown, 0, len(grown)
	}
	if h.histLen == n {
		h.history[h.histHead] = nil
		h.histHead = (h.histHead + 1) % n
		h.histLen--
	}
	h.history[(h.histHead+h.histLen)%n] = f
	h.histLen++
}

// expireHistory drops the frames older than maxAge at now (unix
// nanoseconds), the newest too. Callers hold h.mu.
func (h *host) expireHistory(now int64, maxAge time.Duration) {
	n := len(h.history)
	for h.histLen > 0 && time.Duration(now-h.history[h.histHead].at) > maxAge {
		h.history[h.histHead] = nil
		h.histHead = (h.histHead + 1) % n
		h.histLen--
	}
}

// subscribe registers a subscriber and returns the frames after cursor it
// must send first. outdated is true when the cursor is older than the
// history (the oldest frames it still holds are returned then); skipped is
// how many frames after the cursor are gone.
func (h *host) subscribe(cursor int64, hasCursor bool, queue int) (s *subscriber, backlog []*frame, outdated bool, skipped uint64, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if hasCursor && cursor > h.seq {
		return nil, nil, false, 0, errFutureCursor
	}
	if hasCursor {
		n := len(h.history)
		for i := 0; i < h.histLen; i++ {
			f := h.history[(h.histHead+i)%n]
			if f.seq > cursor {
				backlog = append(backlog, f)
			}
		}
		if h.histLen == 0 || h.history[h.histHead].seq > cursor+1 {
			outdated = cursor < h.seq
		}
		if outdated {
			next := h.seq + 1 // seqs are consecutive on a host
			if len(backlog) > 0 {
				next = backlog[0].seq
			}
			skipped = uint64(next - max(cursor, h.startSeq) - 1)
		}
	}
	s = &subscriber{max: queue, wake: make(chan struct{}, 1), cut: make(chan struct{}), drop: make(chan struct{})}
	h.subs[s] = struct{}{}
	return s, backlog, outdated, skipped, nil
}

func (h *host) unsubscribe(s *subscriber) {
	h.mu.Lock()
	delete(h.subs, s)
	h.mu.Unlock()
}

func (h *host) subscriberCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// writeTimeout bounds one frame's write: a consumer that stops reading is
// dropped after it, whatever its queue holds.
const writeTimeout = 15 * time.Second

var errFutureCursor = fmt.Errorf("FutureCursor")

// upgrader shares write buffers between connections: thousands of
// subscribers are idle most of the time and need none.
var upgrader = websocket.Upgrader{
	ReadBufferSize:  512,
	WriteBufferSize: 8 << 10,
	WriteBufferPool: &sync.Pool{},
	CheckOrigin:     func(*http.Request) bool { return true },
}

// serveSubscribe is com.atproto.sync.subscribeRepos for one host.
func (f *Fleet) serveSubscribe(w http.ResponseWriter, r *http.Request, h *host) {
	if f.refuseIfDown(w, h) {
		return
	}
	var cursor int64
	hasCursor := false
	if c := r.URL.Query().Get("cursor"); c != "" {
		v, err := strconv.ParseInt(c, 10, 64)
		if err != nil || v < 0 {
			xrpcError(w, http.StatusBadRequest, "InvalidRequest", fmt.Sprintf("cursor must be a non-negative integer, got %q", c))
			return
		}
		cursor, hasCursor = v, true
	}
	// Subscribe before the handshake completes: once the client sees the
	// upgrade, no frame published after it can be missed.
	s, backlog, outdated, skipped, subErr := h.subscribe(cursor, hasCursor, f.cfg.SendQueue)
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		if s != nil {
			h.unsubscribe(s)
		}
		return // the upgrader has answered already
	}
	f.pastHistory.Add(skipped)
	// The stream runs on its own goroutine so that this handler returns:
	// net/http's connection keeps its 4 KiB read and write buffers for as
	// long as the handler runs, though the hijacked socket no longer uses
	// them (8 KiB a host, 120 MiB at 15,000 hosts).
	go f.stream(conn, h, s, streamStart{cursor: cursor, backlog: backlog, outdated: outdated, subErr: subErr})
}

// streamStart is what a subscription began with.
type streamStart struct {
	cursor   int64
	backlog  []*frame
	outdated bool
	subErr   error
}

// stream writes a subscriber's backlog and then its live frames until
// either side goes.
func (f *Fleet) stream(conn *websocket.Conn, h *host, s *subscriber, st streamStart) {
	if s != nil {
		defer h.unsubscribe(s)
	}
	defer conn.Close()
	cursor, backlog := st.cursor, st.backlog
	f.connections.Add(1)
	f.subscribes.Add(1)
	defer f.connections.Add(-1)
	if st.subErr == errFutureCursor {
		writeErrorFrame(conn, "FutureCursor", fmt.Sprintf("cursor %d is ahead of %s's head %d", cursor, h.name, h.headSeq()))
		return
	}

	// Read (and so answer pings and notice the close) until the peer goes.
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				return
			}
		}
	}()

	send := func(data []byte) error {
		conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		return conn.WriteMessage(websocket.BinaryMessage, data)
	}
	if st.outdated {
		if err := send(infoFrame("OutdatedCursor", fmt.Sprintf("cursor %d is older than %s's history; sending from seq %d", cursor, h.name, oldestSeq(backlog, h)))); err != nil {
			return
		}
	}
	for _, fr := range backlog {
		if err := send(fr.data); err != nil {
			return
		}
	}
	last := int64(-1)
	if len(backlog) > 0 {
		last = backlog[len(backlog)-1].seq
	}
	var batch []*frame
	cutOff := func() {
		f.slowCut.Add(1)
		writeErrorFrame(conn, "ConsumerTooSlow", fmt.Sprintf("%s: subscriber fell %d frames behind", h.name, f.cfg.SendQueue))
	}
	for {
		select {
		case <-s.wake:
			batch = s.take(batch)
			for i, fr := range batch {
				batch[i] = nil // written frames are not held by this goroutine
				select {
				case <-s.cut: // a cut wins over frames still queued
					cutOff()
					return
				default:
				}
				if fr.seq <= last {
					continue // already sent from the backlog
				}
				if err := send(fr.data); err != nil {
					return
				}
				f.framesWritten.Add(1)
			}
			if cap(batch) > 64 {
				batch = nil
			}
		case <-s.cut:
			cutOff()
			return
		case <-gone:
			return
		case <-s.drop:
			return
		case <-f.done:
			conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "fleet shutting down"), time.Now().Add(time.Second))
			return
		}
	}
}

func oldestSeq(backlog []*frame, h *host) int64 {
	if len(backlog) > 0 {
		return backlog[0].seq
	}
	return h.headSeq() + 1
}

func writeErrorFrame(conn *websocket.Conn, name, msg string) {
	var buf bytes.Buffer
	(&events.EventHeader{Op: events.EvtKindErrorFrame}).MarshalCBOR(&buf)
	(&events.ErrorFrame{Error: name, Message: msg}).MarshalCBOR(&buf)
	conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	conn.WriteMessage(websocket.BinaryMessage, buf.Bytes())
	conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.ClosePolicyViolation, name), time.Now().Add(time.Second))
}

func infoFrame(name, msg string) []byte {
	var buf bytes.Buffer
	(&events.EventHeader{Op: events.EvtKindMessage, MsgType: "#info"}).MarshalCBOR(&buf)
	(&comatproto.SyncSubscribeRepos_Info{Name: name, Message: &msg}).MarshalCBOR(&buf)
	return buf.Bytes()
}
