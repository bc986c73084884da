package fakepds

import (
	"fmt"
	"net/http"
	"time"
)

// Outage takes host hostIndex down for d: its subscribers are disconnected
// at once (the connection just ends, as when a PDS dies) and
// subscribeRepos answers 503 until d has passed. The host keeps sequencing:
// frames published on it meanwhile stay in its history, so a relay that
// comes back with its cursor gets them.
// Another outage of a host that is down extends it.
func (f *Fleet) Outage(hostIndex int, d time.Duration) error {
	if hostIndex < 0 || hostIndex >= len(f.hosts) {
		return fmt.Errorf("fakepds: outage of host %d: the fleet has hosts 0 to %d", hostIndex, len(f.hosts)-1)
	}
	h := f.hosts[hostIndex]
	until := time.Now().Add(d).UnixNano()
	for {
		cur := h.downUntil.Load()
		if cur >= until || h.downUntil.CompareAndSwap(cur, until) {
			break
		}
	}
	h.mu.Lock()
	for s := range h.subs {
		h.removeSub(s)
		close(s.drop)
	}
	h.mu.Unlock()
	return nil
}

// HostDown says whether host hostIndex is in an outage now.
func (f *Fleet) HostDown(hostIndex int) bool {
	if hostIndex < 0 || hostIndex >= len(f.hosts) {
		return false
	}
	return time.Now().UnixNano() < f.hosts[hostIndex].downUntil.Load()
}

// refuseIfDown answers 503 to a subscriber of a host in an outage.
func (f *Fleet) refuseIfDown(w http.ResponseWriter, h *host) bool {
	until := h.downUntil.Load()
	if time.Now().UnixNano() >= until {
		return false
	}
	w.Header().Set("Retry-After", fmt.Sprint(int(time.Until(time.Unix(0, until)).Seconds())+1))
	xrpcError(w, http.StatusServiceUnavailable, "HostDown", fmt.Sprintf("%s is in an injected outage until %s", h.name, time.Unix(0, until).UTC().Format(time.RFC3339)))
	return true
}
