package fakepds

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// Event is a kind of thing the fleet does when told to. Which comes next,
// and when, is the caller's choice (package replay): the fleet performs.
type Event int

const (
	// EventCommit: a commit by an active account of the given host (after
	// the #sync a fresh fleet owes the account).
	EventCommit Event = iota
	// EventIdentity: #identity of an active account.
	EventIdentity
	// EventKeyRotation: a PLC operation rotating an account's signing key,
	// then its #identity, so a relay must resolve the DID again.
	EventKeyRotation
	// EventNewAccount: an account created on the given host the way a PDS
	// does (#identity, #account, #sync of its repository, StartRecords
	// records); a surplus synthetic account is deleted (surplusAccount).
	EventNewAccount
	// EventMove: an account migrates to the given host (another, if it is
	// there already): deactivated at once, announced there MoveDelay later.
	EventMove
	// EventStatus: an account deactivated, or one reactivated.
	EventStatus
	// EventSync: #sync of an active account's repository.
	EventSync
)

var eventNames = [...]string{"commit", "identity", "key_rotation", "new_account", "move", "status", "sync"}

func (e Event) String() string {
	if int(e) < len(eventNames) {
		return eventNames[e]
	}
	return fmt.Sprintf("event(%d)", int(e))
}

// Events lists every kind, in order.
var Events = []Event{EventCommit, EventIdentity, EventKeyRotation, EventNewAccount, EventMove, EventStatus, EventSync}

// Perform does one event on host hostIndex (events of an existing account
// pick a random active one) and returns how many frames it emitted or
// will emit (a move's arrival comes MoveDelay later). rng must not be
// shared between goroutines.
func (f *Fleet) Perform(ctx context.Context, ev Event, hostIndex int, rng *rand.Rand) (int, error) {
	if hostIndex < 0 || hostIndex >= len(f.hosts) {
		return 0, fmt.Errorf("fakepds: %s on host %d: the fleet has hosts 0 to %d", ev, hostIndex, len(f.hosts)-1)
	}
	switch ev {
	case EventCommit:
		return f.writeOnHost(ctx, hostIndex, rng)
	case EventIdentity:
		return f.churnIdentity(rng, false)
	case EventKeyRotation:
		return f.churnIdentity(rng, true)
	case EventNewAccount:
		return f.churnNewAccount(ctx, hostIndex)
	case EventMove:
		return f.churnMove(hostIndex, rng)
	case EventStatus:
		return f.churnStatus(rng)
	case EventSync:
		return f.churnSync(ctx, rng)
	}
	return 0, fmt.Errorf("fakepds: unknown event %d", int(ev))
}

// churnIdentity emits #identity, after rotating the signing key when
// rotate (a new PLC operation first, so the relay finds the new key).
func (f *Fleet) churnIdentity(rng *rand.Rand, rotate bool) (int, error) {
	return f.onActive(rng, func(a *account) error {
		if rotate {
			a.keyGen++
			a.signing = deriveKey(f.cfg.Seed, fmt.Sprintf("signing/%s/%d", a.did, a.keyGen))
			if err := f.updatePLC(a); err != nil {
				return err
			}
		}
		return f.emitIdentity(a)
	})
}

// updatePLC records a new operation for a's current key and host.
func (f *Fleet) updatePLC(a *account) error {
	prev, ok := f.plc.lastCID(a.did)
	if !ok {
		return fmt.Errorf("fakepds: %s has no PLC history", a.did)
	}
	pub, err := a.signing.PublicKey()
	if err != nil {
		return err
	}
	f.hostsMu.RLock()
	hostName := f.hosts[a.host].name
	f.hostsMu.RUnlock()
	op, signed, err := newPLCOp(a.rotation, pub, a.handle, f.cfg.PDSScheme, hostName, &prev)
	if err != nil {
		return fmt.Errorf("PLC update of %s: %w", a.did, err)
	}
	return f.plc.append(a, op, signed)
}

// churnNewAccount creates an account the way a PDS does (#identity,
// #account, then a #sync of its repository) and deletes a surplus one
// (surplusAccount), so the fleet's size stays bounded.
func (f *Fleet) churnNewAccount(ctx context.Context, hi int) (int, error) {
	a, err := f.createAccount(hi)
	if err != nil {
		return 0, err
	}
	a.mu.Lock()
	err = f.emitIdentity(a)
	if err == nil {
		err = f.emitAccount(a)
	}
	if err == nil {
		err = f.emitSync(ctx, a)
	}
	a.mu.Unlock()
	if err != nil {
		return 0, err
	}
	// One in, one out: the synthetic population stays at AccountsPerHost
	// a host, and with repositories born full the fleet's memory stays
	// level.
	f.hostsMu.RLock()
	oldest := f.surplusAccount(hi, a)
	f.hostsMu.RUnlock()
	if oldest != nil {
		return 4, f.deleteAccount(oldest)
	}
	return 3, nil
}

// surplusAccount is the synthetic account to delete now that born was
// created on host hi: that host's oldest when the host is over its share;
// otherwise, when the fleet is over its total, the oldest on the host with
// the most. Moves pile accounts onto some hosts and new accounts refill the
// hosts they left, so a per-host rule alone lets the fleet grow with every
// move. nil when the fleet is within its size. Callers hold hostsMu.
func (f *Fleet) surplusAccount(hi int, born *account) *account {
	limit := f.cfg.AccountsPerHost
	synthetic := func(h *host) int {
		n := 0
		for _, c := range h.accounts {
			if !c.imported {
				n++
			}
		}
		return n
	}
	h := f.hosts[hi]
	if synthetic(h) <= limit {
		total, most := 0, -1
		for _, x := range f.hosts {
			n := synthetic(x)
			total += n
			if n > most {
				h, most = x, n
			}
		}
		if total <= limit*len(f.hosts) {
			return nil
		}
	}
	for _, c := range h.accounts {
		if !c.imported && c != born {
			return c
		}
	}
	return nil
}

// deletedDIDRetention is how long a deleted account's document stays
// resolvable; the directory's size stays bounded by deletions × this.
const deletedDIDRetention = 10 * time.Minute

// deleteAccount emits #account deleted and forgets the account.
func (f *Fleet) deleteAccount(a *account) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.setStatus("deleted")
	if err := f.emitAccount(a); err != nil {
		return err
	}
	f.hostsMu.Lock()
	delete(f.accounts, a.did)
	delete(f.deactivated, a)
	h := f.hosts[a.host]
	for i, c := range h.accounts {
		if c == a {
			h.accounts = append(h.accounts[:i], h.accounts[i+1:]...)
			break
		}
	}
	f.hostsMu.Unlock()
	// The directory keeps the document a while, as plc.directory keeps a
	// deleted account's DID: a relay that first hears of the account from
	// this very #account event must still resolve it.
	did := a.did // not a: the timer would keep the whole repository alive
	time.AfterFunc(deletedDIDRetention, func() { f.plc.remove(did) })
	return nil
}

// churnMove moves an account to host to the way a migration does (to
// another host when it lives on to already): the old host deactivates it,
// and Config.MoveDelay later a PLC operation names the new host, which
// announces it (#identity, #account) and carries its commits from then on.
// The pause lets a relay drain the old host's queue first, as the seconds
// a real migration takes do.
func (f *Fleet) churnMove(to int, rng *rand.Rand) (int, error) {
	if len(f.hosts) < 2 {
		return 0, nil
	}
	var moving *account
	n, err := f.onActive(rng, func(a *account) error {
		if to == a.host {
			to = (to + 1 + rng.IntN(len(f.hosts)-1)) % len(f.hosts)
		}
		a.setStatus("deactivated")
		moving = a
		return f.emitAccount(a)
	})
	if err != nil || moving == nil {
		return n, err
	}
	time.AfterFunc(f.cfg.MoveDelay, func() {
		if err := f.arrive(moving, to); err != nil {
			f.log.Warn("account move failed", "did", moving.did, "err", err)
		}
	})
	return 3, nil // the arrival's #identity and #account follow
}

// arrive ends a move: the account is re-hosted on host to and announced.
func (f *Fleet) arrive(a *account, to int) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	select {
	case <-f.done:
		return nil
	default:
	}
	if a.status == "deleted" {
		return nil
	}
	f.hostsMu.Lock()
	from := f.hosts[a.host]
	for i, c := range from.accounts {
		if c == a {
			from.accounts = append(from.accounts[:i], from.accounts[i+1:]...)
			break
		}
	}
	a.host = to
	f.hosts[to].accounts = append(f.hosts[to].accounts, a)
	f.hostsMu.Unlock()
	if err := f.updatePLC(a); err != nil {
		return err
	}
	a.setStatus("")
	if err := f.emitIdentity(a); err != nil {
		return err
	}
	return f.emitAccount(a)
}

// churnStatus deactivates an account, or reactivates one that is, so a
// handful at most are inactive at any time.
func (f *Fleet) churnStatus(rng *rand.Rand) (int, error) {
	f.hostsMu.Lock()
	var back *account
	for a := range f.deactivated {
		back = a
		delete(f.deactivated, a)
		break
	}
	f.hostsMu.Unlock()
	if back != nil {
		back.mu.Lock()
		defer back.mu.Unlock()
		if back.status != "deactivated" {
			return 0, nil // deleted meanwhile
		}
		back.setStatus("")
		return 1, f.emitAccount(back)
	}
	return f.onActive(rng, func(a *account) error {
		a.setStatus("deactivated")
		f.hostsMu.Lock()
		f.deactivated[a] = struct{}{}
		f.hostsMu.Unlock()
		return f.emitAccount(a)
	})
}

func (f *Fleet) churnSync(ctx context.Context, rng *rand.Rand) (int, error) {
	return f.onActive(rng, func(a *account) error { return f.emitSync(ctx, a) })
}

// onActive runs fn, which emits one frame, on a random active account,
// holding its lock; an account deactivated or deleted since it was picked
// is left alone (no frame).
func (f *Fleet) onActive(rng *rand.Rand, fn func(a *account) error) (int, error) {
	a := f.pickAccount(rng)
	if a == nil {
		return 0, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.active.Load() {
		return 0, nil
	}
	return 1, fn(a)
}
