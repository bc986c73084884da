package fakepds

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"time"
)

// WriteOne writes the next synthetic event: usually a commit on a random
// active account, sometimes a churn event at the configured rates. rng must
// not be shared between goroutines.
func (f *Fleet) WriteOne(ctx context.Context, rng *rand.Rand) error {
	c := f.cfg.Churn
	if !c.Off {
		r := rng.Float64() * 1000
		switch {
		case r < c.Identity:
			return f.churnIdentity(rng)
		case r < c.Identity+c.NewAccount:
			return f.churnNewAccount(ctx, rng)
		case r < c.Identity+c.NewAccount+c.Move:
			return f.churnMove(ctx, rng)
		case r < c.Identity+c.NewAccount+c.Move+c.Status:
			return f.churnStatus(rng)
		case r < c.Identity+c.NewAccount+c.Move+c.Status+c.Sync:
			return f.churnSync(ctx, rng)
		}
	}
	a := f.pickAccount(rng)
	if a == nil {
		return nil // every account is between hosts or deactivated just now
	}
	return f.writeCommit(ctx, a, rng, commitOptions{})
}

// RunWriter writes rate events per second in total until ctx ends: the
// simple synthetic writer (the replay package drives richer schedules).
// The schedule is open: a late writer catches up instead of slowing down.
func (f *Fleet) RunWriter(ctx context.Context, rate float64) error {
	if rate <= 0 {
		return fmt.Errorf("fakepds: writer rate must be positive, got %g", rate)
	}
	workers := max(1, runtime.GOMAXPROCS(0))
	tickets := make(chan struct{}, 4*workers)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(f.cfg.Seed), uint64(time.Now().UnixNano())+uint64(w)))
			for range tickets {
				if err := f.WriteOne(ctx, rng); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}(w)
	}
	defer func() { close(tickets); wg.Wait() }()

	start := time.Now()
	var sent int64
	tick := time.NewTicker(max(time.Millisecond, min(10*time.Millisecond, time.Duration(float64(time.Second)/rate))))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-f.done:
			return nil
		case err := <-errs:
			f.log.Warn("synthetic write failed", "err", err)
		case now := <-tick.C:
			due := int64(rate * now.Sub(start).Seconds())
			for ; sent < due; sent++ {
				select {
				case tickets <- struct{}{}:
				case <-ctx.Done():
					return nil
				}
			}
		}
	}
}

// churnIdentity emits #identity, rotating the signing key for a share of
// them (a new PLC operation first, so the relay finds the new key).
func (f *Fleet) churnIdentity(rng *rand.Rand) error {
	return f.onActive(rng, func(a *account) error {
		if rng.Float64() < f.cfg.Churn.KeyRotation {
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
// #account, then a #sync of its empty repository) and, when the host is
// over its share, deletes the host's oldest synthetic account, so the
// fleet's size stays bounded.
func (f *Fleet) churnNewAccount(ctx context.Context, rng *rand.Rand) error {
	hi := rng.IntN(len(f.hosts))
	a, err := f.createAccount(hi)
	if err != nil {
		return err
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
		return err
	}
	// One in, one out: the population stays at AccountsPerHost a host, so
	// the fleet's memory plateaus once repositories have filled.
	limit := f.cfg.AccountsPerHost
	f.hostsMu.RLock()
	var oldest *account
	if h := f.hosts[hi]; len(h.accounts) > limit {
		for _, c := range h.accounts {
			if !c.imported && c != a {
				oldest = c
				break
			}
		}
	}
	f.hostsMu.RUnlock()
	if oldest != nil {
		return f.deleteAccount(oldest)
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
	time.AfterFunc(deletedDIDRetention, func() { f.plc.remove(a.did) })
	return nil
}

// churnMove moves an account to another host the way a migration does:
// the old host deactivates it, and Churn.MoveDelay later a PLC operation names
// the new host, which announces it (#identity, #account) and carries its
// commits from then on. The pause lets a relay drain the old host's queue
// first, as the seconds a real migration takes do.
func (f *Fleet) churnMove(ctx context.Context, rng *rand.Rand) error {
	if len(f.hosts) < 2 {
		return nil
	}
	var moving *account
	to := rng.IntN(len(f.hosts) - 1)
	err := f.onActive(rng, func(a *account) error {
		if to >= a.host {
			to++
		}
		a.setStatus("deactivated")
		moving = a
		return f.emitAccount(a)
	})
	if err != nil || moving == nil {
		return err
	}
	time.AfterFunc(f.cfg.Churn.MoveDelay, func() {
		if err := f.arrive(moving, to); err != nil {
			f.log.Warn("account move failed", "did", moving.did, "err", err)
		}
	})
	return nil
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
func (f *Fleet) churnStatus(rng *rand.Rand) error {
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
			return nil // deleted meanwhile
		}
		back.setStatus("")
		return f.emitAccount(back)
	}
	return f.onActive(rng, func(a *account) error {
		a.setStatus("deactivated")
		f.hostsMu.Lock()
		f.deactivated[a] = struct{}{}
		f.hostsMu.Unlock()
		return f.emitAccount(a)
	})
}

func (f *Fleet) churnSync(ctx context.Context, rng *rand.Rand) error {
	return f.onActive(rng, func(a *account) error { return f.emitSync(ctx, a) })
}

// onActive runs fn on a random active account, holding its lock; an
// account deactivated or deleted since it was picked is left alone.
func (f *Fleet) onActive(rng *rand.Rand, fn func(a *account) error) error {
	a := f.pickAccount(rng)
	if a == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.active.Load() {
		return nil
	}
	return fn(a)
}
