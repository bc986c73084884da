package fakepds

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A cursor older than the in-memory tail is served from the spool, in
// order and without a gap, while the host keeps writing.
func TestCursorBehindTheTailIsServedFromDisk(t *testing.T) {
	n := startNet(t, Config{Hosts: 1, AccountsPerHost: 2, TailFrames: 8})
	h := n.fleet.hosts[0]
	writeN(t, n.fleet, 0, 200)
	head := h.headSeq()
	cursor := head - 190

	s := n.subscribe(t, h.name, fmt.Sprintf("?cursor=%d", cursor))
	var wg sync.WaitGroup
	wg.Go(func() { writeN(t, n.fleet, 0, 100) })
	defer wg.Wait()
	for want := cursor + 1; want <= head+100; want++ {
		ev := next(t, s)
		require.Nil(t, ev.errf)
		require.Equal(t, want, ev.seq, "frames in order, none missed")
	}
	assert.Zero(t, n.fleet.Stats().PastHistory)
}

// While a subscriber catches up from disk, live frames are not queued for
// it (the backlog reaches them), so a backfill far longer than its queue
// does not cut it off; the catch-up ends on the tail, under the lock live
// frames are offered under.
func TestCatchingUpQueuesNoLiveFrames(t *testing.T) {
	f, err := New(Config{Hosts: 1, AccountsPerHost: 1, TailFrames: 4, SendQueue: 2})
	require.NoError(t, err)
	defer f.Close()
	h := f.hosts[0]
	frame := func(int64, time.Time) ([]byte, error) { return []byte("frame"), nil }
	cursor := h.headSeq()
	for range 10 {
		_, err := h.publish(true, frame)
		require.NoError(t, err)
	}
	s, st, err := h.subscribe(cursor, true, 2, 0)
	require.NoError(t, err)
	require.Len(t, st.disk, 10, "the tail holds 4: the backlog starts on disk")
	assert.Equal(t, cursor+1, st.diskFrom)
	assert.True(t, s.catchingUp)
	for range 5 {
		_, err := h.publish(true, frame)
		require.NoError(t, err)
	}
	assert.Empty(t, s.queue, "live frames wait in the history, not the queue")
	assert.Equal(t, 1, h.subscriberCount(), "not cut off")

	// Frames 11 to 15 came meanwhile; the tail holds 12 to 15, so 11 is
	// read from disk too.
	tail, from, disk, skipped := h.resume(s, cursor+10)
	assert.Empty(t, tail)
	assert.Equal(t, cursor+11, from)
	assert.Len(t, disk, 5)
	assert.Zero(t, skipped)
	assert.True(t, s.catchingUp)
	tail, _, disk, _ = h.resume(s, cursor+15)
	assert.Empty(t, disk)
	assert.Empty(t, tail, "caught up to the head")
	assert.False(t, s.catchingUp)
	_, err = h.publish(true, frame)
	require.NoError(t, err)
	assert.Len(t, s.queue, 1, "live again")
}

// Frames whose segment left the spool are gone: a cursor before them is
// outdated and says how many it missed, and the commits among them count
// as trimmed for every reader never sent them.
func TestSpoolExpiryTrimsTheHistory(t *testing.T) {
	n := startNet(t, Config{Hosts: 1, AccountsPerHost: 2, TailFrames: 4, TailAge: 100 * time.Millisecond, History: 2 * time.Second})
	h := n.fleet.hosts[0]
	first := h.headSeq()
	writeN(t, n.fleet, 0, 5) // 2 syncs and 5 commits in the first segment
	time.Sleep(1100 * time.Millisecond)
	writeN(t, n.fleet, 0, 5) // the second segment
	time.Sleep(2100 * time.Millisecond)
	writeN(t, n.fleet, 0, 1) // the first segment is past the history now
	head := h.headSeq()

	s := n.subscribe(t, h.name, fmt.Sprintf("?cursor=%d", first))
	ev := next(t, s)
	require.NotNil(t, ev.info, "an outdated cursor gets #info first")
	assert.Equal(t, "OutdatedCursor", ev.info.Name)
	for want := first + 8; want <= head; want++ {
		assert.Equal(t, want, next(t, s).seq)
	}
	assert.EqualValues(t, 7, n.fleet.Stats().PastHistory, "the first segment's frames")

	readers := n.fleet.Readers()
	require.Len(t, readers, 1)
	l := n.fleet.Ledger(readers[0])
	require.Len(t, l, 1)
	assert.EqualValues(t, 11, l[0].Written[WhileAway], "every commit was written before the reader subscribed")
	assert.EqualValues(t, 5, l[0].Trimmed[WhileAway], "the first segment's commits")
	assert.Eventually(t, func() bool { return n.fleet.Ledger(readers[0])[0].Sent[WhileAway] == 6 }, 5*time.Second, 5*time.Millisecond,
		"the rest reached it (counted once each write returns)")
}

// The ledger sorts each commit by what held for the reader when it was
// written, and counts it sent once it reaches the reader's socket, by the
// same state, whether live or from the history.
func TestLedgerAccountsForEveryCommit(t *testing.T) {
	n := startNet(t, Config{Hosts: 1, AccountsPerHost: 2})
	h := n.fleet.hosts[0]
	s := n.subscribe(t, h.name, "")
	require.Eventually(t, func() bool { return h.subscriberCount() == 1 }, 5*time.Second, 10*time.Millisecond)
	writeN(t, n.fleet, 0, 3) // 2 syncs, 3 commits, live
	var last int64
	for range 5 {
		last = next(t, s).seq
	}
	ledger := func() HostLedger {
		readers := n.fleet.Readers()
		require.Len(t, readers, 1)
		l := n.fleet.Ledger(readers[0])
		require.Len(t, l, 1)
		return l[0]
	}
	l := ledger()
	assert.True(t, l.Subscribed)
	assert.False(t, l.Since.IsZero())
	assert.EqualValues(t, 3, l.Written[WhileSubscribed])
	// A frame is counted sent once its write returns, which may be after
	// the reader has it.
	sent := func(st WriteState, want uint64) {
		t.Helper()
		assert.Eventually(t, func() bool { return ledger().Sent[st] == want }, 5*time.Second, 5*time.Millisecond, "sent while %s", st)
	}
	sent(WhileSubscribed, 3)

	require.NoError(t, n.fleet.Outage(0, 300*time.Millisecond))
	writeN(t, n.fleet, 0, 2)
	l = ledger()
	assert.False(t, l.Subscribed, "an outage drops the subscription")
	assert.EqualValues(t, 2, l.Written[WhileDown])
	assert.True(t, l.DownUntil.After(time.Now()))
	time.Sleep(350 * time.Millisecond)
	writeN(t, n.fleet, 0, 4)
	assert.EqualValues(t, 4, ledger().Written[WhileAway])
	assert.Zero(t, ledger().Sent[WhileDown]+ledger().Sent[WhileAway], "nothing reached it while away")

	s = n.subscribe(t, h.name, fmt.Sprintf("?cursor=%d", last))
	for range 6 {
		next(t, s)
	}
	sent(WhileDown, 2) // the backfill reaches it
	sent(WhileAway, 4)
	l = ledger()
	assert.EqualValues(t, 3, l.Sent[WhileSubscribed], "a commit is counted sent once")
	for st := range NumWriteStates {
		assert.Zero(t, l.Trimmed[st])
	}
}

// The index gives back each frame's location, kind and states, across
// segments, and drops a whole segment's run from the front.
func TestDiskIndexRoundTrips(t *testing.T) {
	var x diskIndex
	locs := []location{
		makeLocation(7, 0, true, 0b000110),
		makeLocation(7, 1500, false, 0b010000),
		makeLocation(8, 0, true, 0),
		makeLocation(8, 4_000_000_000, true, 0b101010),
	}
	for i, l := range locs {
		x.add(100+int64(i), l)
	}
	require.Equal(t, 4, x.len())
	for i, l := range locs {
		assert.Equal(t, l, x.at(i), "entry %d", i)
	}
	assert.Equal(t, locs[1:3], x.locations(1, 3))
	var gone []int64
	x.dropRun(func(seq int64, l location) { gone = append(gone, seq) })
	assert.Equal(t, []int64{100, 101}, gone, "segment 7's frames")
	assert.EqualValues(t, 102, x.first)
	assert.Equal(t, locs[2:], x.locations(0, 2))
}
