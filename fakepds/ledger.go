package fakepds

import (
	"net"
	"time"
)

// The ledger accounts for every commit a host sequences, for each reader
// (a relay, told apart by the address it dials from; an A/B run has two on
// one fleet): what held for that reader when the commit was written, and
// whether the fleet ever wrote it to that reader's socket or let it leave
// the history first. With the measuring consumer's counts it splits the
// commits written into delivered, lost inside the relay and never offered.

// maxReaders is how many readers the ledger tells apart (an A/B run has
// two); a further address is not accounted.
const maxReaders = 3

// WriteState is what held for a reader when a commit was written.
type WriteState uint8

const (
	// WhileSubscribed: the reader held a subscription to the host.
	WhileSubscribed WriteState = iota
	// WhileDown: it held none, and the host was in a planted outage.
	WhileDown
	// WhileAway: it held none, and the host was up.
	WhileAway
	// NumWriteStates sizes arrays indexed by WriteState.
	NumWriteStates
)

func (s WriteState) String() string {
	return [...]string{"subscribed", "down", "away"}[s]
}

// readerLedger is one reader's account at one host. Guarded by host.mu.
type readerLedger struct {
	subs     int   // subscriptions held now
	since    int64 // unix ns when subs last went from or to 0
	lastSent int64 // highest seq written to the reader: a seq is counted once
	written  [NumWriteStates]uint64
	sent     [NumWriteStates]uint64
	expired  [NumWriteStates]uint64
}

// HostLedger is one host's account for one reader. Every commit the host
// wrote is in Written under its state; of those, Sent reached the reader's
// socket and Trimmed left the history (Config.History) before it did. The
// rest, Written − Sent − Trimmed, are still in the history, never sent.
type HostLedger struct {
	Host                   string
	Written, Sent, Trimmed [NumWriteStates]uint64
	Subscribed             bool
	Since                  time.Time // when Subscribed last changed; zero: never subscribed
	DownUntil              time.Time // the end of the host's last planted outage; zero: none
}

// NeverSent is the commits written in state s still in the history and
// never sent: Written − Sent − Trimmed.
func (l HostLedger) NeverSent(s WriteState) uint64 {
	return l.Written[s] - min(l.Sent[s]+l.Trimmed[s], l.Written[s])
}

// readerSlot is the ledger slot of the reader dialling from remoteAddr
// (host:port), -1 past maxReaders.
func (f *Fleet) readerSlot(remoteAddr string) int {
	ip, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		ip = remoteAddr
	}
	f.readersMu.Lock()
	defer f.readersMu.Unlock()
	for i, r := range f.readers {
		if r == ip {
			return i
		}
	}
	if len(f.readers) == maxReaders {
		return -1
	}
	f.readers = append(f.readers, ip)
	return len(f.readers) - 1
}

// Readers are the addresses the ledger accounts for, in the order they
// first subscribed.
func (f *Fleet) Readers() []string {
	f.readersMu.Lock()
	defer f.readersMu.Unlock()
	return append([]string(nil), f.readers...)
}

// Ledger is every host's account for the reader at address reader (an IP,
// as Readers lists it); nil when no subscription came from it.
func (f *Fleet) Ledger(reader string) []HostLedger {
	slot := -1
	for i, r := range f.Readers() {
		if r == reader {
			slot = i
		}
	}
	if slot < 0 {
		return nil
	}
	f.hostsMu.RLock()
	hosts := f.hosts
	f.hostsMu.RUnlock()
	out := make([]HostLedger, len(hosts))
	for i, h := range hosts {
		h.mu.Lock()
		r := &h.readers[slot]
		hl := HostLedger{Host: h.name, Written: r.written, Sent: r.sent, Trimmed: r.expired, Subscribed: r.subs > 0}
		if r.since != 0 {
			hl.Since = time.Unix(0, r.since)
		}
		h.mu.Unlock()
		if d := h.downUntil.Load(); d != 0 {
			hl.DownUntil = time.Unix(0, d)
		}
		out[i] = hl
	}
	return out
}

// writeStates is each reader's state for a frame written now, 2 bits a
// reader; a commit is counted as written. Callers hold h.mu.
func (h *host) writeStates(now int64, commit bool) uint8 {
	down := now < h.downUntil.Load()
	var states uint8
	for k := range h.readers {
		r := &h.readers[k]
		st := WhileAway
		switch {
		case r.subs > 0:
			st = WhileSubscribed
		case down:
			st = WhileDown
		}
		if commit {
			r.written[st]++
		}
		states |= uint8(st) << (2 * k)
	}
	return states
}

func stateOf(states uint8, reader int) WriteState { return WriteState(states>>(2*reader)) & 3 }

// sent counts a frame written to reader's socket; a seq at or below the
// reader's last is a resend and not counted again.
func (h *host) sent(reader int, seq int64, commit bool, states uint8) {
	if reader < 0 || !commit {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	r := &h.readers[reader]
	if seq <= r.lastSent {
		return
	}
	r.lastSent = seq
	r.sent[stateOf(states, reader)]++
}

// leftHistory counts a frame leaving the history against every reader it
// was never sent to. Callers hold h.mu.
func (h *host) leftHistory(seq int64, commit bool, states uint8) {
	if !commit {
		return
	}
	for k := range h.readers {
		if r := &h.readers[k]; seq > r.lastSent {
			r.expired[stateOf(states, k)]++
		}
	}
}

// addSub and removeSub keep the subscriber set and each reader's count.
// Callers hold h.mu; removing one already gone does nothing.
func (h *host) addSub(s *subscriber) {
	h.subs[s] = struct{}{}
	if s.reader >= 0 {
		r := &h.readers[s.reader]
		if r.subs == 0 {
			r.since = time.Now().UnixNano()
		}
		r.subs++
	}
}

func (h *host) removeSub(s *subscriber) {
	if _, ok := h.subs[s]; !ok {
		return
	}
	delete(h.subs, s)
	if s.reader >= 0 {
		r := &h.readers[s.reader]
		r.subs--
		if r.subs == 0 {
			r.since = time.Now().UnixNano()
		}
	}
}
