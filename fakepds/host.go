package fakepds

import (
	"bytes"
	"errors"
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
	seq    int64
	at     int64 // unix nanoseconds: half the size of a time.Time, times thousands of frames
	data   []byte
	commit bool
	states uint8 // each reader's writeState when it was sequenced, 2 bits a reader
}

// history is how far back the hosts serve cursors: a tail of recent frames
// in memory and, unless the spool is off, every frame of the last
// Config.History on disk.
type history struct {
	tailFrames int
	tailAge    time.Duration
	spool      *spool // nil: the tail is the whole history
}

// host is one PDS: its sequencer, its history and its subscribers.
type host struct {
	name  string
	index int
	hist  *history

	mu       sync.Mutex
	seq      int64    // last seq handed out
	startSeq int64    // seq before this process's first frame: no frame at or below it was sent by this fleet
	tail     []*frame // ring, oldest at tailHead; grows up to hist.tailFrames
	tailHead int
	tailLen  int
	disk     diskIndex // the spooled frames
	subs     map[*subscriber]struct{}
	readers  [maxReaders]readerLedger
	accounts []*account // accounts hosted here; guarded by the fleet's hostsMu

	downUntil atomic.Int64  // unix ns: an outage (outage.go) refuses subscribers until then
	commits   atomic.Uint64 // #commit frames this host sequenced
}

// subscriber is one connection's queue. The queue grows as frames wait
// and is let go once written: thousands of subscribers idle most of the
// time, and a channel sized to the bound would cost each its full size
// (4 KiB at 512 frames) for the whole run.
type subscriber struct {
	reader int // the reader slot (ledger.go), -1 for none

	mu    sync.Mutex
	queue []*frame      // frames published and not yet taken, oldest first
	max   int           // past it, the subscriber is cut off
	wake  chan struct{} // holds a token while the queue has frames
	cut   chan struct{} // closed when the subscriber is dropped for being slow
	drop  chan struct{} // closed by an outage: the connection just ends

	// catchingUp is set while the subscriber's backlog is read from disk:
	// live frames are not queued meanwhile (the backlog will reach them),
	// so a long backfill does not overflow the queue. Guarded by host.mu.
	catchingUp bool
}

// offer queues f; false when the queue is full.
func (s *subscriber) offer(f *frame) bool {
	if s.catchingUp {
		return true
	}
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

func newHost(i int, name string, hist *history, startSeq int64) *host {
	return &host{
		name:     name,
		index:    i,
		hist:     hist,
		seq:      startSeq,
		startSeq: startSeq,
		tail:     make([]*frame, min(8, hist.tailFrames)),
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
func (h *host) publish(commit bool, encode func(seq int64, now time.Time) ([]byte, error)) (int64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	seq := h.seq + 1
	data, err := encode(seq, now)
	if err != nil {
		return 0, err
	}
	f := &frame{seq: seq, at: now.UnixNano(), data: data, commit: commit, states: h.writeStates(now.UnixNano(), commit)}
	if sp := h.hist.spool; sp != nil {
		loc, err := sp.write(f.at, data, commit, f.states)
		if err != nil {
			return 0, err
		}
		h.disk.add(seq, loc)
		h.expireDisk()
	}
	h.seq = seq
	h.appendTail(f)
	for s := range h.subs {
		if !s.offer(f) {
			h.removeSub(s)
			close(s.cut)
		}
	}
	return seq, nil
}

func (h *host) appendTail(f *frame) {
	h.expireTail(f.at)
	n := len(h.tail)
	if h.tailLen == n && n < h.hist.tailFrames {
		// Grow the ring: most hosts are quiet and never need the full size.
		grown := make([]*frame, min(2*n, h.hist.tailFrames))
		for i := 0; i < h.tailLen; i++ {
			grown[i] = h.tail[(h.tailHead+i)%n]
		}
		h.tail, h.tailHead, n = grown, 0, len(grown)
	}
	if h.tailLen == n {
		h.dropTailHead()
	}
	h.tail[(h.tailHead+h.tailLen)%n] = f
	h.tailLen++
}

// dropTailHead lets the tail's oldest frame go; without a spool it leaves
// the history then. Callers hold h.mu.
func (h *host) dropTailHead() {
	old := h.tail[h.tailHead]
	if h.hist.spool == nil {
		h.leftHistory(old.seq, old.commit, old.states)
	}
	h.tail[h.tailHead] = nil
	h.tailHead = (h.tailHead + 1) % len(h.tail)
	h.tailLen--
}

// expireTail drops the frames older than the tail's age at now (unix
// nanoseconds), the newest too. Callers hold h.mu.
func (h *host) expireTail(now int64) {
	for h.tailLen > 0 && time.Duration(now-h.tail[h.tailHead].at) > h.hist.tailAge {
		h.dropTailHead()
	}
}

// expireDisk drops the index entries whose segment has left the spool.
// Callers hold h.mu.
func (h *host) expireDisk() {
	if h.disk.len() == 0 || h.hist.spool == nil {
		return
	}
	oldest, ok := h.hist.spool.oldest()
	for h.disk.len() > 0 && (!ok || !kept(h.disk.at(0), oldest)) {
		h.disk.dropRun(func(seq int64, l location) { h.leftHistory(seq, l.commit(), l.states()) })
	}
}

// oldestKept is the oldest seq the history still holds, h.seq+1 when it
// holds none. Callers hold h.mu.
func (h *host) oldestKept() int64 {
	if h.disk.len() > 0 {
		return h.disk.first
	}
	if h.tailLen > 0 {
		return h.tail[h.tailHead].seq
	}
	return h.seq + 1
}

// catchUpChunk bounds the disk locations a subscriber takes at a time.
const catchUpChunk = 1024

// backlogAfter is what a subscriber whose last frame is seq last must be
// sent next: frames from the tail, or, when the tail does not reach back
// that far, locations on disk starting at seq from (at most catchUpChunk
// of them; the caller asks again). skipped counts the frames after last
// the history no longer holds. Callers hold h.mu.
func (h *host) backlogAfter(last int64) (tail []*frame, from int64, disk []location, skipped uint64) {
	h.expireDisk()
	if oldest := h.oldestKept(); last+1 < oldest && last < h.seq {
		skipped = uint64(oldest - max(last, h.startSeq) - 1)
		last = oldest - 1
	}
	if h.tailLen > 0 && h.tail[h.tailHead].seq <= last+1 || h.disk.len() == 0 || last >= h.seq {
		for i := 0; i < h.tailLen; i++ {
			if f := h.tail[(h.tailHead+i)%len(h.tail)]; f.seq > last {
				tail = append(tail, f)
			}
		}
		return tail, 0, nil, skipped
	}
	i := int(last + 1 - h.disk.first)
	return nil, last + 1, h.disk.locations(i, min(h.disk.len(), i+catchUpChunk)), skipped
}

// subscribe registers a subscriber of reader slot reader and returns what
// it must be sent first (see backlogAfter). outdated is true when the
// cursor is older than the history; skipped is how many frames after the
// cursor are gone.
func (h *host) subscribe(cursor int64, hasCursor bool, queue, reader int) (s *subscriber, st streamStart, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	st.cursor = cursor
	if hasCursor && cursor > h.seq {
		return nil, st, errFutureCursor
	}
	s = &subscriber{reader: reader, max: queue, wake: make(chan struct{}, 1), cut: make(chan struct{}), drop: make(chan struct{})}
	if hasCursor {
		st.backlog, st.diskFrom, st.disk, st.skipped = h.backlogAfter(cursor)
		st.outdated = st.skipped > 0
		s.catchingUp = len(st.disk) > 0
	}
	h.addSub(s)
	return s, st, nil
}

// resume is the next part of a catching-up subscriber's backlog after seq
// last: more disk, or the tail, which ends the catch-up under the lock
// live frames are offered under, so none is missed.
func (h *host) resume(s *subscriber, last int64) (tail []*frame, from int64, disk []location, skipped uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	tail, from, disk, skipped = h.backlogAfter(last)
	if len(disk) == 0 {
		s.catchingUp = false
	}
	return tail, from, disk, skipped
}

func (h *host) unsubscribe(s *subscriber) {
	h.mu.Lock()
	h.removeSub(s)
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
	s, st, subErr := h.subscribe(cursor, hasCursor, f.cfg.SendQueue, f.readerSlot(r.RemoteAddr))
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		if s != nil {
			h.unsubscribe(s)
		}
		return // the upgrader has answered already
	}
	f.pastHistory.Add(st.skipped)
	st.subErr = subErr
	// The stream runs on its own goroutine so that this handler returns:
	// net/http's connection keeps its 4 KiB read and write buffers for as
	// long as the handler runs, though the hijacked socket no longer uses
	// them (8 KiB a host, 120 MiB at 15,000 hosts).
	go f.stream(conn, h, s, st)
}

// streamStart is what a subscription began with.
type streamStart struct {
	cursor   int64
	backlog  []*frame   // from the tail
	diskFrom int64      // the seq of disk[0]
	disk     []location // from the spool, before backlog
	outdated bool
	skipped  uint64
	subErr   error
}

// stream writes a subscriber's backlog and then its live frames until
// either side goes.
func (f *Fleet) stream(conn *websocket.Conn, h *host, s *subscriber, st streamStart) {
	if s != nil {
		defer h.unsubscribe(s)
	}
	defer conn.Close()
	cursor := st.cursor
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

	send := func(seq int64, data []byte, commit bool, states uint8) error {
		conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		if err := conn.WriteMessage(websocket.BinaryMessage, data); err != nil {
			return err
		}
		h.sent(s.reader, seq, commit, states)
		return nil
	}
	if st.outdated {
		if err := writeInfoFrame(conn, "OutdatedCursor", fmt.Sprintf("cursor %d is older than %s's history; sending from seq %d", cursor, h.name, cursor+int64(st.skipped)+1)); err != nil {
			return
		}
	}
	last := cursor
	// A backlog on disk is read a chunk at a time, until the tail takes over.
	for from, disk := st.diskFrom, st.disk; len(disk) > 0; {
		for i, l := range disk {
			data, err := h.hist.spool.read(l)
			if errors.Is(err, errGone) {
				break // expired meanwhile: resume counts it as skipped
			}
			if err != nil {
				f.log.Warn("reading a host's history", "host", h.name, "err", err)
				return
			}
			if err := send(from+int64(i), data, l.commit(), l.states()); err != nil {
				return
			}
			last = from + int64(i)
		}
		var skipped uint64
		st.backlog, from, disk, skipped = h.resume(s, last)
		f.pastHistory.Add(skipped)
		last += int64(skipped)
	}
	for _, fr := range st.backlog {
		if err := send(fr.seq, fr.data, fr.commit, fr.states); err != nil {
			return
		}
		last = fr.seq
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
				if err := send(fr.seq, fr.data, fr.commit, fr.states); err != nil {
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

func writeErrorFrame(conn *websocket.Conn, name, msg string) {
	var buf bytes.Buffer
	(&events.EventHeader{Op: events.EvtKindErrorFrame}).MarshalCBOR(&buf)
	(&events.ErrorFrame{Error: name, Message: msg}).MarshalCBOR(&buf)
	conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	conn.WriteMessage(websocket.BinaryMessage, buf.Bytes())
	conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.ClosePolicyViolation, name), time.Now().Add(time.Second))
}

func writeInfoFrame(conn *websocket.Conn, name, msg string) error {
	var buf bytes.Buffer
	(&events.EventHeader{Op: events.EvtKindMessage, MsgType: "#info"}).MarshalCBOR(&buf)
	(&comatproto.SyncSubscribeRepos_Info{Name: name, Message: &msg}).MarshalCBOR(&buf)
	conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	return conn.WriteMessage(websocket.BinaryMessage, buf.Bytes())
}
