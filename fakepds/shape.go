package fakepds

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/bluesky-social/indigo/atproto/syntax"
)

// Shape is what the fleet's synthetic commits look like: the collections of
// created records, the ops per commit, the share of profile updates and
// deletes, and the sizes of posts. A replay derives it from a capture; the
// zero value (and nil) is the built-in mix after the shared capture. The
// event-kind mix (#identity, #account, #sync) is the replay's choice.
type Shape struct {
	// Collections weights the collections of created records (default: the
	// live network's, likes first).
	Collections []Weighted
	// OpsPerCommit[i] weights commits of i+1 created records (default: one).
	OpsPerCommit []float64
	// Update and Delete are the shares of commits that update the profile
	// and that delete one record (defaults 2/148 and 4/148, as captured).
	Update, Delete float64
	// PostBytes are sizes of app.bsky.feed.post records to draw from; a
	// post's text is sized so its record comes out near the drawn size
	// (default: 20 to 280 characters of text). Other records keep their
	// natural sizes, which real ones share (a like is ~212 bytes either way).
	PostBytes []int
}

// Weighted is one choice with its weight.
type Weighted struct {
	Name   string
	Weight float64
}

func (s *Shape) withDefaults() (*Shape, error) {
	if s == nil {
		return nil, nil
	}
	c := *s
	if len(c.Collections) == 0 {
		for _, m := range createMix {
			c.Collections = append(c.Collections, Weighted{m.collection, float64(m.weight)})
		}
	}
	var total float64
	for _, w := range c.Collections {
		if w.Weight < 0 || w.Name == "" || !strings.Contains(w.Name, ".") {
			return nil, fmt.Errorf("fakepds: shape collection %q with weight %g: need an NSID and a weight ≥ 0", w.Name, w.Weight)
		}
		total += w.Weight
	}
	if total <= 0 {
		return nil, fmt.Errorf("fakepds: shape collections weigh nothing")
	}
	if len(c.OpsPerCommit) == 0 {
		c.OpsPerCommit = []float64{1}
	}
	if len(c.OpsPerCommit) > 100 {
		return nil, fmt.Errorf("fakepds: shape allows up to 100 ops per commit (a relay takes 200 with the bounding deletes), got %d", len(c.OpsPerCommit))
	}
	if c.Update == 0 {
		c.Update = 2.0 / 148
	}
	if c.Delete == 0 {
		c.Delete = 4.0 / 148
	}
	if c.Update < 0 || c.Delete < 0 || c.Update+c.Delete > 1 {
		return nil, fmt.Errorf("fakepds: shape update %g and delete %g shares must be ≥ 0 and sum to at most 1", c.Update, c.Delete)
	}
	return &c, nil
}

func pickWeighted(rng *rand.Rand, weights []float64) int {
	var total float64
	for _, w := range weights {
		total += w
	}
	r := rng.Float64() * total
	for i, w := range weights {
		if r < w {
			return i
		}
		r -= w
	}
	return len(weights) - 1
}

// shapedOps is nextOps following a Shape.
func (a *account) shapedOps(seed int64, rng *rand.Rand, maxRecords int, s *Shape) []writeOp {
	r := rng.Float64()
	if r < s.Update {
		rev := a.clock.Next().String()
		action := "update"
		if a.profile == nil {
			action = "create"
		}
		return []writeOp{{action: action, path: profilePath, data: profileRecord(seed, a.did, rev)}}
	}
	if r < s.Update+s.Delete && len(a.records) > 0 {
		return []writeOp{{action: "delete", path: a.records[rng.IntN(len(a.records))].path()}}
	}
	n := 1 + pickWeighted(rng, s.OpsPerCommit)
	ops := make([]writeOp, 0, n+1)
	for i := 0; i < n; i++ {
		var total float64
		for _, w := range s.Collections {
			total += w.Weight
		}
		x := rng.Float64() * total
		coll := s.Collections[len(s.Collections)-1].Name
		for _, w := range s.Collections {
			if x < w.Weight {
				coll = w.Name
				break
			}
			x -= w.Weight
		}
		path := coll + "/" + a.clock.Next().String()
		ops = append(ops, writeOp{action: "create", path: path, data: shapedRecord(seed, a.did, path, s)})
	}
	// Keep the repository bounded: delete the oldest records it would overflow by.
	for i := 0; i < len(a.records) && len(a.records)-i+n > maxRecords; i++ {
		ops = append(ops, writeOp{action: "delete", path: a.records[i].path()})
	}
	return ops
}

// shapedRecord is recordBytes with the post size drawn from the shape; the
// draw depends on (seed, did, path) only, so the record regenerates.
func shapedRecord(seed int64, did, path string, s *Shape) []byte {
	coll, rkey, _ := strings.Cut(path, "/")
	if s == nil || len(s.PostBytes) == 0 || coll != "app.bsky.feed.post" {
		return recordBytes(seed, did, path)
	}
	rng := recordRNG(seed, did, path, 0x512e)
	target := s.PostBytes[rng.IntN(len(s.PostBytes))]
	created := "2026-01-01T00:00:00.000Z"
	if tid, err := syntax.ParseTID(rkey); err == nil {
		created = tid.Time().UTC().Format("2006-01-02T15:04:05.000Z")
	}
	// The record around the text costs ~90 bytes; the text takes the rest.
	rec := map[string]any{"$type": coll, "text": "", "createdAt": created, "langs": []any{"en"}}
	empty, _ := marshalRecord(rec)
	rec["text"] = fakeText(rng, max(1, min(3000, target-len(empty)-2)))
	b, err := marshalRecord(rec)
	if err != nil {
		panic(fmt.Sprintf("fakepds: encode generated post %s: %v", path, err)) // generated data is always encodable
	}
	return b
}

// recordBytes regenerates a record of the fleet's own (getRepo, restarts).
func (f *Fleet) recordBytes(did, path string) []byte {
	return shapedRecord(f.cfg.Seed, did, path, f.shape)
}

// nextOps picks an account's next change, by the fleet's shape when it has one.
func (f *Fleet) nextOps(a *account, rng *rand.Rand) []writeOp {
	if f.shape != nil {
		return a.shapedOps(f.cfg.Seed, rng, f.cfg.MaxRecords, f.shape)
	}
	return a.nextOps(f.cfg.Seed, rng, f.cfg.MaxRecords)
}

// writeOnHost writes a commit of one of host hostIndex's active accounts
// (any active account's when the host has none just now), preceded by the
// #sync a fresh fleet owes the account, and says how many frames it emitted.
func (f *Fleet) writeOnHost(ctx context.Context, hostIndex int, rng *rand.Rand) (int, error) {
	a := f.pickOnHost(hostIndex, rng)
	if a == nil {
		// Every account of the host is inactive or moved away for now.
		if a = f.pickAccount(rng); a == nil {
			return 0, nil // every account is between hosts just now: nothing to write
		}
	}
	return f.writeCommit(ctx, a, rng, commitOptions{})
}

// pickOnHost picks an active synthetic account of host hi, or nil.
func (f *Fleet) pickOnHost(hi int, rng *rand.Rand) *account {
	f.hostsMu.RLock()
	defer f.hostsMu.RUnlock()
	accts := f.hosts[hi].accounts
	if len(accts) == 0 {
		return nil
	}
	start := rng.IntN(len(accts))
	for i := range accts {
		a := accts[(start+i)%len(accts)]
		if a.active.Load() && !a.imported {
			return a
		}
	}
	return nil
}
