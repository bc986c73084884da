package fakepds

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
)

// plcDirectory is the fleet's PLC: every DID's operation log and current
// document, and the global export order.
type plcDirectory struct {
	mu    sync.RWMutex
	seq   int64
	byDID map[string]*plcRecord
	log   []*plcEntry // export order (seq ascending); deleted DIDs compacted away
	dead  int         // entries in log whose DID was deleted
}

type plcRecord struct {
	entries []*plcEntry
	doc     identity.DIDDocument
	docJSON []byte
}

// append signs nothing: op is already signed; it records it as the DID's
// newest operation and renders the document.
func (p *plcDirectory) append(a *account, op *plcOp, signed []byte) error {
	c, err := cidOfCBOR(signed)
	if err != nil {
		return err
	}
	doc, err := didDocument(a.did, op)
	if err != nil {
		return err
	}
	docJSON, err := didDocJSON(doc)
	if err != nil {
		return err
	}
	opJSON, err := json.Marshal(op)
	if err != nil {
		return fmt.Errorf("operation of %s as JSON: %w", a.did, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.byDID == nil {
		p.byDID = map[string]*plcRecord{}
	}
	p.seq++
	e := &plcEntry{Seq: p.seq, DID: a.did, Operation: opJSON, CID: c.String(), CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}
	r := p.byDID[a.did]
	if r == nil {
		r = &plcRecord{}
		p.byDID[a.did] = r
	}
	r.entries = append(r.entries, e)
	r.doc, r.docJSON = doc, docJSON
	p.log = append(p.log, e)
	return nil
}

// lastCID is the CID of a DID's newest operation: the prev of the next.
func (p *plcDirectory) lastCID(did string) (string, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	r := p.byDID[did]
	if r == nil || len(r.entries) == 0 {
		return "", false
	}
	return r.entries[len(r.entries)-1].CID, true
}

// remove forgets a deleted account, so the directory does not grow with
// account churn. Its log entries are compacted out of the export in batches
// of a sixteenth of the log: the scan stays amortised, and dead entries
// never pile up for long (batches of half the log take an hour of
// production-shape churn to fill, a slow sawtooth a memory judge reads as
// growth).
func (p *plcDirectory) remove(did string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.byDID[did]
	if r == nil {
		return
	}
	delete(p.byDID, did)
	p.dead += len(r.entries)
	if p.dead > compactMinDead && p.dead > len(p.log)/16 {
		live := p.log[:0]
		for _, e := range p.log {
			if p.byDID[e.DID] != nil {
				live = append(live, e)
			}
		}
		clear(p.log[len(live):])
		p.log = live
		p.dead = 0
	}
}

// compactMinDead keeps a small directory from rescanning its log on every
// deletion.
const compactMinDead = 256

func (p *plcDirectory) document(did string) (identity.DIDDocument, []byte, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	r := p.byDID[did]
	if r == nil {
		return identity.DIDDocument{}, nil, false
	}
	return r.doc, r.docJSON, true
}

func (p *plcDirectory) entries(did string) []*plcEntry {
	p.mu.RLock()
	defer p.mu.RUnlock()
	r := p.byDID[did]
	if r == nil {
		return nil
	}
	return append([]*plcEntry(nil), r.entries...)
}

// export pages through the log after a seq or after a time.
func (p *plcDirectory) export(afterSeq int64, afterTime time.Time, count int) []*plcEntry {
	p.mu.RLock()
	defer p.mu.RUnlock()
	i := sort.Search(len(p.log), func(i int) bool {
		e := p.log[i]
		if !afterTime.IsZero() {
			return e.CreatedAt.After(afterTime)
		}
		return e.Seq > afterSeq
	})
	var out []*plcEntry
	for ; i < len(p.log) && len(out) < count; i++ {
		if p.byDID[p.log[i].DID] != nil {
			out = append(out, p.log[i])
		}
	}
	return out
}

// servePLCRoutes is the PLC directory face without its fault settings
// (plcfault.go applies those first).
func (f *Fleet) servePLCRoutes(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		plcError(w, http.StatusMethodNotAllowed, "only GET is served by this directory")
		return
	}
	path := strings.TrimPrefix(r.URL.Path, "/")
	switch {
	case path == "" || path == "_health":
		writeJSON(w, http.StatusOK, map[string]string{"version": "relaysoak-fakepds"})
		return
	case path == "export":
		f.servePLCExport(w, r)
		return
	}
	did, rest, _ := strings.Cut(path, "/")
	if _, err := syntax.ParseDID(did); err != nil || !strings.HasPrefix(did, "did:plc:") {
		plcError(w, http.StatusBadRequest, fmt.Sprintf("not a did:plc: %q", did))
		return
	}
	switch rest {
	case "":
		_, docJSON, ok := f.plc.document(did)
		if !ok {
			plcError(w, http.StatusNotFound, "DID not registered: "+did)
			return
		}
		w.Header().Set("Content-Type", "application/did+ld+json")
		w.Write(docJSON)
	case "log/audit", "log", "log/last", "data":
		entries := f.plc.entries(did)
		if len(entries) == 0 {
			plcError(w, http.StatusNotFound, "DID not registered: "+did)
			return
		}
		switch rest {
		case "log/audit":
			writeJSON(w, http.StatusOK, entries)
		case "log":
			ops := make([]json.RawMessage, len(entries))
			for i, e := range entries {
				ops[i] = e.Operation
			}
			writeJSON(w, http.StatusOK, ops)
		case "log/last":
			writeJSON(w, http.StatusOK, entries[len(entries)-1].Operation)
		case "data":
			var op plcOp
			if err := json.Unmarshal(entries[len(entries)-1].Operation, &op); err != nil {
				plcError(w, http.StatusInternalServerError, fmt.Sprintf("stored operation of %s: %v", did, err))
				return
			}
			writeJSON(w, http.StatusOK, map[string]any{"did": did, "verificationMethods": op.VerificationMethods,
				"rotationKeys": op.RotationKeys, "alsoKnownAs": op.AlsoKnownAs, "services": op.Services})
		}
	default:
		plcError(w, http.StatusNotFound, "no such route: /"+path)
	}
}

// servePLCExport answers /export?count=&after= with JSON lines; after is a
// timestamp or a sequence number, as plc.directory accepts both.
func (f *Fleet) servePLCExport(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	count := 10
	if c := q.Get("count"); c != "" {
		n, err := strconv.Atoi(c)
		if err != nil || n < 1 {
			plcError(w, http.StatusBadRequest, fmt.Sprintf("count must be a positive integer, got %q", c))
			return
		}
		count = min(n, 1000)
	}
	var afterSeq int64
	var afterTime time.Time
	if a := q.Get("after"); a != "" {
		if n, err := strconv.ParseInt(a, 10, 64); err == nil && n >= 0 {
			afterSeq = n
		} else if t, err := time.Parse(time.RFC3339Nano, a); err == nil {
			afterTime = t
		} else {
			plcError(w, http.StatusBadRequest, fmt.Sprintf("after must be an RFC 3339 timestamp or a non-negative sequence number, got %q", a))
			return
		}
	}
	w.Header().Set("Content-Type", "application/jsonlines")
	enc := json.NewEncoder(w)
	for _, e := range f.plc.export(afterSeq, afterTime, count) {
		if err := enc.Encode(e); err != nil {
			return
		}
	}
}

func plcError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"message": msg})
}

// Directory resolves DIDs from the fleet's own PLC state, in process, for
// checks that must not depend on a network path (tests use the HTTP face).
func (f *Fleet) Directory() identity.Directory { return fleetDirectory{f} }

type fleetDirectory struct{ f *Fleet }

var errNotHandles = errors.New("fakepds directory resolves DIDs only")

func (d fleetDirectory) LookupDID(_ context.Context, did syntax.DID) (*identity.Identity, error) {
	doc, _, ok := d.f.plc.document(did.String())
	if !ok {
		return nil, fmt.Errorf("%w: %s", identity.ErrDIDNotFound, did)
	}
	ident := identity.ParseIdentity(&doc)
	return &ident, nil
}

func (d fleetDirectory) LookupHandle(context.Context, syntax.Handle) (*identity.Identity, error) {
	return nil, errNotHandles
}

func (d fleetDirectory) Lookup(ctx context.Context, atid syntax.AtIdentifier) (*identity.Identity, error) {
	did, err := atid.AsDID()
	if err != nil {
		return nil, errNotHandles
	}
	return d.LookupDID(ctx, did)
}

func (d fleetDirectory) Purge(context.Context, syntax.AtIdentifier) error { return nil }
