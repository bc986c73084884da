package fakepds

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/repo/mst"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"
)

const stateFile = "fleet.json"

// savedFleet is what a state dir holds. Records are not stored: they are
// regenerated from the seed and checked against each repository's root.
type savedFleet struct {
	Version     int            `json:"version"`
	Clean       bool           `json:"clean"` // written by Close, not by a checkpoint
	Seed        int64          `json:"seed"`
	Domain      string         `json:"domain"`
	PDSScheme   string         `json:"pds_scheme"`
	Hosts       []savedHost    `json:"hosts"`
	NextAccount int            `json:"next_account"`
	Accounts    []savedAccount `json:"accounts"`
}

type savedHost struct {
	Name string `json:"name"`
	Seq  int64  `json:"seq"`
}

type savedAccount struct {
	DID         string      `json:"did"`
	Handle      string      `json:"handle"`
	Host        int         `json:"host"`
	Rotation    []byte      `json:"rotation_key"`
	Signing     []byte      `json:"signing_key"`
	KeyGen      int         `json:"key_gen"`
	PLC         []*plcEntry `json:"plc"`
	Records     []string    `json:"records"`
	Profile     []byte      `json:"profile,omitempty"`
	Rev         string      `json:"rev,omitempty"`
	CommitBytes []byte      `json:"commit,omitempty"`
	DataCID     string      `json:"data,omitempty"`
	Active      bool        `json:"active"`
	Status      string      `json:"status,omitempty"`
	NeedSync    bool        `json:"need_sync,omitempty"`
}

// Checkpoint saves the fleet to its state dir without closing it. A fleet
// restored from a checkpoint (not from Close) cannot know what it emitted
// after it, so it jumps its seqs ahead and re-syncs every account.
func (f *Fleet) Checkpoint() error { return f.writeState(false) }

func (f *Fleet) saveState() error { return f.writeState(true) }

func (f *Fleet) writeState(clean bool) error {
	if f.cfg.StateDir == "" {
		return nil
	}
	s := savedFleet{Version: 1, Clean: clean, Seed: f.cfg.Seed, Domain: f.cfg.Domain, PDSScheme: f.cfg.PDSScheme}
	f.hostsMu.RLock()
	s.NextAccount = f.nextAcct
	accts := make([]*account, 0, len(f.accounts))
	for _, a := range f.accounts {
		if !a.imported { // a replay's identities: it hosts them again each run
			accts = append(accts, a)
		}
	}
	f.hostsMu.RUnlock()
	for _, h := range f.hosts {
		s.Hosts = append(s.Hosts, savedHost{Name: h.name, Seq: h.headSeq()})
	}
	sort.Slice(accts, func(i, j int) bool { return accts[i].did < accts[j].did })
	for _, a := range accts {
		a.mu.Lock()
		sa := savedAccount{
			DID: a.did, Handle: a.handle, Host: a.host, Rotation: a.rotation.Bytes(), Signing: a.signing.Bytes(),
			KeyGen: a.keyGen, PLC: f.plc.entries(a.did), Records: a.recordPaths(), Profile: a.profile,
			Rev: a.rev, CommitBytes: a.commitBytes, Active: a.active.Load(), Status: a.status, NeedSync: a.needSync,
		}
		if a.dataCID.Defined() {
			sa.DataCID = a.dataCID.String()
		}
		a.mu.Unlock()
		s.Accounts = append(s.Accounts, sa)
	}
	if err := os.MkdirAll(f.cfg.StateDir, 0o755); err != nil {
		return fmt.Errorf("fakepds: state dir %s: %w", f.cfg.StateDir, err)
	}
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("fakepds: encode state: %w", err)
	}
	path := filepath.Join(f.cfg.StateDir, stateFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("fakepds: write state %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("fakepds: write state %s: %w", path, err)
	}
	return nil
}

// loadState restores a saved fleet; false when the state dir holds none.
func (f *Fleet) loadState() (bool, error) {
	if f.cfg.StateDir == "" {
		return false, nil
	}
	path := filepath.Join(f.cfg.StateDir, stateFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("fakepds: read state %s: %w", path, err)
	}
	var s savedFleet
	if err := json.Unmarshal(b, &s); err != nil {
		return false, fmt.Errorf("fakepds: state %s is not a saved fleet (%w); remove it or use another --state-dir", path, err)
	}
	if s.Version != 1 {
		return false, fmt.Errorf("fakepds: state %s has version %d, this build reads version 1", path, s.Version)
	}
	if len(s.Hosts) != f.cfg.Hosts || s.Seed != f.cfg.Seed || s.Domain != f.cfg.Domain {
		return false, fmt.Errorf("fakepds: state %s holds a fleet of %d hosts (seed %d, domain %q), asked for %d hosts (seed %d, domain %q): use another --state-dir or remove it",
			path, len(s.Hosts), s.Seed, s.Domain, f.cfg.Hosts, f.cfg.Seed, f.cfg.Domain)
	}
	now := time.Now().UnixMicro()
	for i, sh := range s.Hosts {
		seq := sh.Seq
		if !s.Clean {
			seq = max(seq, now) // never reuse a seq emitted after the checkpoint
		}
		h := newHost(i, sh.Name, f.hist, seq)
		f.hosts = append(f.hosts, h)
		f.byName[h.name] = h
	}
	f.nextAcct = s.NextAccount
	var entries []*plcEntry
	for _, sa := range s.Accounts {
		a, err := f.restoreAccount(sa, !s.Clean)
		if err != nil {
			return false, fmt.Errorf("fakepds: state %s: %w", path, err)
		}
		f.accounts[a.did] = a
		if a.status == "deactivated" {
			f.deactivated[a] = struct{}{}
		}
		f.hosts[a.host].accounts = append(f.hosts[a.host].accounts, a)
		entries = append(entries, sa.PLC...)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Seq < entries[j].Seq })
	if err := f.plc.restore(entries); err != nil {
		return false, fmt.Errorf("fakepds: state %s: %w", path, err)
	}
	f.log.Info("fleet restored", "state", path, "accounts", len(f.accounts), "clean", s.Clean)
	return true, nil
}

func (f *Fleet) restoreAccount(sa savedAccount, resync bool) (*account, error) {
	if sa.Host < 0 || sa.Host >= len(f.hosts) {
		return nil, fmt.Errorf("account %s on host %d, fleet has %d", sa.DID, sa.Host, len(f.hosts))
	}
	rot, err := atcrypto.ParsePrivateBytesK256(sa.Rotation)
	if err != nil {
		return nil, fmt.Errorf("rotation key of %s: %w", sa.DID, err)
	}
	sig, err := atcrypto.ParsePrivateBytesK256(sa.Signing)
	if err != nil {
		return nil, fmt.Errorf("signing key of %s: %w", sa.DID, err)
	}
	a := &account{
		did: sa.DID, handle: sa.Handle, host: sa.Host, rotation: rot, signing: sig, keyGen: sa.KeyGen,
		profile: sa.Profile, rev: sa.Rev, commitBytes: sa.CommitBytes,
		status: sa.Status, needSync: sa.NeedSync || resync, clock: syntax.NewTIDClock(0),
	}
	a.active.Store(sa.Active)
	m := map[string]cid.Cid{}
	for _, p := range sa.Records {
		r, err := parseRecordPath(p)
		if err != nil {
			return nil, fmt.Errorf("records of %s: %w", sa.DID, err)
		}
		a.records = append(a.records, r)
		c, err := cidOfCBOR(f.recordBytes(a.did, p))
		if err != nil {
			return nil, err
		}
		m[p] = c
	}
	if a.profile != nil {
		c, err := cidOfCBOR(a.profile)
		if err != nil {
			return nil, err
		}
		m[profilePath] = c
	}
	tree, err := mst.LoadTreeFromMap(m)
	if err != nil {
		return nil, fmt.Errorf("rebuild repository of %s: %w", a.did, err)
	}
	if len(m) == 0 {
		t := mst.NewEmptyTree()
		tree = &t
	}
	root, err := tree.WriteDiffBlocks(context.Background(), nil)
	if err != nil {
		return nil, err
	}
	a.tree = *tree
	if sa.DataCID != "" {
		want, err := cid.Decode(sa.DataCID)
		if err != nil {
			return nil, fmt.Errorf("data CID of %s: %w", a.did, err)
		}
		if *root != want {
			return nil, fmt.Errorf("repository of %s rebuilt to root %s, saved root is %s (was the state written by another seed?)", a.did, root, want)
		}
		a.dataCID = want
	}
	if len(a.commitBytes) > 0 {
		c, err := cidOfCBOR(a.commitBytes)
		if err != nil {
			return nil, err
		}
		a.commitCID = c
	}
	if a.rev != "" {
		tid, err := syntax.ParseTID(a.rev)
		if err != nil {
			return nil, fmt.Errorf("rev of %s: %w", a.did, err)
		}
		clk := syntax.ClockFromTID(tid)
		a.clock = &clk
	}
	return a, nil
}

func (p *plcDirectory) restore(entries []*plcEntry) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.byDID = map[string]*plcRecord{}
	for _, e := range entries {
		r := p.byDID[e.DID]
		if r == nil {
			r = &plcRecord{}
			p.byDID[e.DID] = r
		}
		r.entries = append(r.entries, e)
		p.log = append(p.log, e)
		p.seq = max(p.seq, e.Seq)
	}
	for did, r := range p.byDID {
		last := r.entries[len(r.entries)-1]
		var op plcOp
		if err := json.Unmarshal(last.Operation, &op); err != nil {
			return fmt.Errorf("PLC operation %d of %s: %w", last.Seq, did, err)
		}
		doc, err := didDocument(did, &op)
		if err != nil {
			return fmt.Errorf("PLC operation %d: %w", last.Seq, err)
		}
		r.doc = doc
		if r.docJSON, err = didDocJSON(doc); err != nil {
			return fmt.Errorf("document of %s: %w", did, err)
		}
	}
	return nil
}
