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
// order and without a gap, while the host keeps writing: live frames are
// not queued during the catch-up, so a subscriber queue far smaller than
// the backlog is not cut off.
func TestCursorBehindTheTailIsServedFromDisk(t *testing.T) {
	n := startNet(t, Config{Hosts: 1, AccountsPerHost: 2, TailFrames: 8, SendQueue: 32})
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
		require.Nil(t, ev.errf, "no error frame (a cut for being slow would be one)")
		require.Equal(t, want, ev.seq, "frames in order, none missed")
	}
	assert.Zero(t, n.fleet.Stats().PastHistory)
	assert.Zero(t, n.fleet.Stats().SlowConsumersCut)
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
	assert.EqualValues(t, 6, l[0].Sent[WhileAway], "the rest reached it")
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
	assert.EqualValues(t, 3, l.Sent[WhileSubscribed])

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
	l = ledger()
	assert.EqualValues(t, 2, l.Sent[WhileDown], "the backfill reaches it")
	assert.EqualValues(t, 4, l.Sent[WhileAway])
	assert.EqualValues(t, 3, l.Sent[WhileSubscribed], "a commit is counted sent once")
	for st := range NumWriteStates {
		assert.Zero(t, l.Trimmed[st])
	}
}
