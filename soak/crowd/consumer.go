package crowd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"time"

	"github.com/gorilla/websocket"
	"github.com/relaysoak/relaysoak/internal/useragent"
)

// closeWait bounds how long a clean close waits for the relay to close its
// side: closing with unread bytes in the socket would send a reset, and a
// clean leave must look like one.
const closeWait = 2 * time.Second

// consumer is one of the crowd. Everything it keeps across connections is
// here: two seqs and one buffer, the same size however long it runs.
type consumer struct {
	c    *Crowd
	rng  *rand.Rand
	id   int    // the regular identity of the first connect; -1 after it
	buf  []byte // each frame's prefix, reused for every frame
	last int64  // seq of the last frame read: the cursor to resume from
	high int64  // highest seq read: a frame at or below it is a replay
}

// outcome is how a connection ended.
type outcome int

const (
	stopped outcome = iota // ctx ended
	planned                // a churn point ended it: reconnect at once
	dropped                // it ended unplanned: reconnect after ReconnectDelay
)

func (w *consumer) run(ctx context.Context) {
	w.buf = make([]byte, w.c.cfg.PrefixBytes)
	old := false   // whether the next connect asks for an old cursor
	stuck := false // whether the next connection is never read
	for ctx.Err() == nil {
		conn, err := w.dial(ctx, old)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			w.c.fail(err)
			if !sleep(ctx, w.c.cfg.ReconnectDelay) {
				return
			}
			continue
		}
		if stuck {
			w.c.connected.Add(1)
			w.stick(ctx, conn)
			w.c.connected.Add(-1)
			return
		}
		plan, at := w.plan()
		w.c.connected.Add(1)
		out := w.session(ctx, conn, plan, at)
		w.c.connected.Add(-1)
		old = false
		switch out {
		case stopped:
			return
		case planned:
			old = plan == OldCursor
			stuck = plan == Stuck
		case dropped:
			if !sleep(ctx, w.c.cfg.ReconnectDelay) {
				return
			}
		}
	}
}

// dial connects, resuming from the last seq seen (or BacklogFrames behind
// it when old) once there is one.
func (w *consumer) dial(ctx context.Context, old bool) (*websocket.Conn, error) {
	u := w.c.url
	resume := w.last > 0
	if resume {
		cursor := w.last
		if old {
			cursor = max(1, w.last-w.c.cfg.BacklogFrames)
		}
		q := u.Query()
		q.Set("cursor", strconv.FormatInt(cursor, 10))
		u.RawQuery = q.Encode()
	}
	id := w.identity()
	conn, resp, err := w.c.dialer.DialContext(ctx, u.String(), useragent.ClientHeader(useragent.Crowd, id))
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("crowd: dialling %s: %w (status %s)", u.String(), err, resp.Status)
		}
		return nil, fmt.Errorf("crowd: dialling %s: %w", u.String(), err)
	}
	conn.SetReadLimit(w.c.cfg.ReadLimit)
	w.c.connects.Add(1)
	w.c.ids.presented(id)
	switch {
	case resume && old:
		w.c.oldCursors.Add(1)
	case resume:
		w.c.cursorResumes.Add(1)
	}
	return conn, nil
}

// identity draws who the next connect comes as: a never-seen identity at
// the churn chance, else one of the regulars (the consumer's own the first
// time). It counts as presented once the handshake succeeds.
func (w *consumer) identity() int {
	c := w.c
	p := c.cfg.IdentityChurn
	if scale := c.cfg.IdentityChurnScale; scale != nil && p > 0 {
		if m := scale(); m > 0 {
			p = min(1, p*m)
		}
	}
	if p > 0 && w.rng.Float64() < p {
		return c.ids.next()
	}
	i := w.id
	if i < 0 {
		i = w.rng.IntN(c.cfg.Identities)
	}
	w.id = -1
	return i
}

// plan draws the churn point that will end the next connection: what the
// consumer will do, and when. Without churn there is none (0).
func (w *consumer) plan() (Behaviour, time.Time) {
	if w.c.cfg.Churn <= 0 {
		return 0, time.Time{}
	}
	mean := float64(w.c.cfg.Churn)
	if scale := w.c.cfg.ChurnScale; scale != nil {
		if m := scale(); m > 0 {
			mean /= m
		}
	}
	d := time.Duration(w.rng.ExpFloat64() * mean)
	return w.c.pick(w.rng), time.Now().Add(d)
}

// session reads conn until ctx ends, the relay ends it, or the planned
// churn point comes.
func (w *consumer) session(ctx context.Context, conn *websocket.Conn, plan Behaviour, at time.Time) outcome {
	// One goroutine per consumer while connected: ctx's end says goodbye
	// and bounds the read in progress, instead of a watcher per connection.
	// The relay answers the close frame by closing, which ends the read.
	closed := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(closed)
		conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, ""), time.Now().Add(time.Second))
		conn.UnderlyingConn().SetReadDeadline(time.Now().Add(closeWait))
	})
	defer func() {
		if !stop() {
			<-closed // Run must not return with the closer still running
			// A consumer stopped while not reading (a Slow spell) still
			// has frames to read before the relay's close.
			awaitClose(raw(conn.UnderlyingConn()))
		}
		conn.Close()
	}()

	high := w.high
	timed := plan == Resume || plan == OldCursor || plan == Vanish || plan == Stuck
	if timed {
		// The deadline is the churn point: a read cut short by it leaves
		// the connection unreadable, which is fine, for it ends here.
		conn.SetReadDeadline(at)
	}
	cut := false
	for {
		op, err := w.readFrame(conn, high)
		if err != nil {
			switch {
			case ctx.Err() != nil:
				return stopped
			case cut:
				w.c.cutOff.Add(1)
				return dropped
			case timed && isTimeout(err):
				w.end(conn, plan)
				return planned
			}
			w.c.fail(fmt.Errorf("crowd: reading: %w", err))
			return dropped
		}
		if op == -1 {
			cut = true // the relay closes after its error frame
		}
		// A Slow spell starts at the first frame after the churn point: a
		// consumer cannot fall behind a stream that is quiet.
		if plan == Slow && !time.Now().Before(at) {
			return w.slow(ctx, conn, high, cut)
		}
	}
}

// slow stops reading for SlowFor, then reads what the relay sent to find
// out whether it cut the consumer off meanwhile.
func (w *consumer) slow(ctx context.Context, conn *websocket.Conn, high int64, cut bool) outcome {
	if !sleep(ctx, w.c.cfg.SlowFor) {
		return stopped
	}
	conn.SetReadDeadline(time.Now().Add(w.c.cfg.DrainFor))
	for {
		op, err := w.readFrame(conn, high)
		if err != nil {
			switch {
			case ctx.Err() != nil:
				return stopped
			case cut || !isTimeout(err):
				w.c.cutOff.Add(1)
			default:
				w.c.slowNotCut.Add(1)
				closeCleanly(conn)
			}
			return planned
		}
		if op == -1 {
			cut = true
		}
	}
}

// stick reads nothing of conn until ctx ends, with the connection open.
// Reading would unblock a relay stuck writing to it, so it finds out
// whether the relay let go by writing: a ping every StuckProbe. A
// relay that closed the connection answers the next write with a reset;
// one that holds it open takes the ping, or leaves it in the socket's
// buffers (the write times out). It closes conn, without a goodbye.
func (w *consumer) stick(ctx context.Context, conn *websocket.Conn) {
	defer conn.Close()
	w.c.stuck.Add(1)
	tick := time.NewTicker(w.c.cfg.StuckProbe)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		err := conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(time.Second))
		if err != nil && !isTimeout(err) {
			w.c.stuckReleased.Add(1) // the relay closed it
			<-ctx.Done()             // and the client stays hung
			return
		}
	}
}

// end carries out a timed churn point.
func (w *consumer) end(conn *websocket.Conn, b Behaviour) {
	if b == Vanish {
		vanish(conn.UnderlyingConn())
		w.c.resets.Add(1)
		return
	}
	closeCleanly(conn)
}

// readFrame reads one message, keeping its prefix in the consumer's buffer
// and discarding the rest, and returns the header's op (0 for a message
// that is not a frame).
func (w *consumer) readFrame(conn *websocket.Conn, high int64) (int64, error) {
	mt, r, err := conn.NextReader()
	if err != nil {
		return 0, err
	}
	n, err := io.ReadFull(r, w.buf)
	switch err {
	case nil: // longer than the prefix
		if _, err := io.Copy(io.Discard, r); err != nil {
			return 0, err
		}
	case io.EOF, io.ErrUnexpectedEOF: // all of it fit
	default:
		return 0, err
	}
	w.c.frames.Add(1)
	if mt != websocket.BinaryMessage {
		return 0, nil
	}
	op, seq, ok := scanFrame(w.buf[:n])
	if ok {
		if seq <= high {
			w.c.replayed.Add(1)
		}
		w.last = seq
		w.high = max(w.high, seq)
	}
	return op, nil
}

// closeCleanly sends a close frame and waits (a while) for the relay to
// close its side, so the relay sees a consumer leave, not a reset.
func closeCleanly(conn *websocket.Conn) {
	conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	nc := raw(conn.UnderlyingConn())
	nc.SetReadDeadline(time.Now().Add(closeWait))
	awaitClose(nc)
	nc.Close()
}

// awaitClose reads and discards until the relay closes its side or the
// read deadline passes: closing a socket with unread bytes in it sends a
// reset, and a consumer that leaves cleanly must not look like one that
// vanished.
func awaitClose(nc net.Conn) {
	io.Copy(io.Discard, nc)
}

// vanish closes the TCP connection with SO_LINGER 0: the kernel sends a
// reset instead of a FIN, and no close frame goes out, so the relay finds
// the consumer gone mid-stream, as when a client crashes.
func vanish(nc net.Conn) {
	nc = raw(nc)
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	nc.Close()
}

// raw is the connection under TLS and pacing.
func raw(nc net.Conn) net.Conn {
	for {
		w, ok := nc.(interface{ NetConn() net.Conn })
		if !ok {
			return nc
		}
		nc = w.NetConn()
	}
}

// pacedConn waits before a read when the last one came back short (it
// emptied the socket), so that a read takes many frames, not one.
type pacedConn struct {
	net.Conn
	pace time.Duration
	wait bool
}

func (p *pacedConn) Read(b []byte) (int, error) {
	if p.wait {
		time.Sleep(p.pace)
	}
	n, err := p.Conn.Read(b)
	p.wait = n < len(b)
	return n, err
}

func (p *pacedConn) NetConn() net.Conn { return p.Conn }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (c *Crowd) fail(err error) {
	c.errs.Add(1)
	s := err.Error()
	c.lastErr.Store(&s)
}

// sleep waits d unless ctx ends first; it says whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
