package fakepds

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/repo"
	"github.com/bluesky-social/indigo/atproto/repo/mst"
	"github.com/bluesky-social/indigo/atproto/syntax"
	lexutil "github.com/bluesky-social/indigo/lex/util"
	"github.com/ipfs/go-cid"
)

// account is one synthetic (or imported) identity and its repository.
// Everything in it is guarded by mu; host is read without it by the router.
type account struct {
	mu sync.Mutex

	did    string
	handle string
	host   int // index of the current host; guarded by the fleet's hostsMu for moves

	rotation *atcrypto.PrivateKeyK256
	signing  *atcrypto.PrivateKeyK256
	keyGen   int

	tree    mst.Tree
	records []recordRef // the records, oldest first: the delete order
	profile []byte      // the app.bsky.actor.profile/self record, if any

	clock       *syntax.TIDClock
	rev         string
	commitCID   cid.Cid
	commitBytes []byte
	dataCID     cid.Cid

	// active mirrors status == "" for lock-free reads by pickers; set both
	// with setStatus, holding mu.
	active   atomic.Bool
	status   string // "" when active; "deactivated"…
	needSync bool   // the next event must be a #sync (fresh start without state)
	imported bool   // an identity hosted for a capture: no repo of ours
}

// setStatus sets the account's upstream status ("" is active). Callers
// hold a.mu.
func (a *account) setStatus(status string) {
	a.status = status
	a.active.Store(status == "")
}

// writeOp is one change to a repository.
type writeOp struct {
	action string // create, update, delete
	path   string
	data   []byte // record bytes for create and update
}

// commitOptions plants faults for tests of a relay's checks.
type commitOptions struct {
	wrongPrevData bool
}

// commit applies ops to the account's repository and returns the signed
// #commit event (seq and time are set when it is sequenced). The event's
// blocks live in sc until the frame is encoded. Callers hold a.mu.
func (a *account) commit(ops []writeOp, opt commitOptions, sc *commitScratch) (*comatproto.SyncSubscribeRepos_Commit, error) {
	prevData := a.dataCID
	since := a.rev
	var recordBlocks []block
	evtOps := make([]*comatproto.SyncSubscribeRepos_RepoOp, 0, len(ops))
	for _, op := range ops {
		blk, prev, err := a.apply(op)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", a.did, err)
		}
		rop := &comatproto.SyncSubscribeRepos_RepoOp{Action: op.action, Path: op.path}
		if blk.cid.Defined() {
			recordBlocks = append(recordBlocks, blk)
			l := lexutil.LexLink(blk.cid)
			rop.Cid = &l
		}
		if prev != nil {
			l := lexutil.LexLink(*prev)
			rop.Prev = &l
		}
		evtOps = append(evtOps, rop)
	}
	canonicalRoot(&a.tree)
	root, err := sc.writeNodes(a.tree.Root, false)
	if err != nil {
		return nil, fmt.Errorf("write MST of %s: %w", a.did, err)
	}
	cmt := repo.Commit{DID: a.did, Version: repo.ATPROTO_REPO_VERSION, Data: *root, Rev: a.clock.Next().String()}
	cblk, err := a.signCommit(&cmt)
	if err != nil {
		return nil, err
	}
	sc.car = appendCAR(sc.car, cblk.cid, []block{cblk}, sc.nodes, recordBlocks)
	evt := &comatproto.SyncSubscribeRepos_Commit{
		Repo:   a.did,
		Rev:    cmt.Rev,
		Commit: lexutil.LexLink(cblk.cid),
		Blocks: sc.car,
		Ops:    evtOps,
		Blobs:  []lexutil.LexLink{},
	}
	if since != "" {
		evt.Since = &since
	}
	if prevData.Defined() {
		l := lexutil.LexLink(prevData)
		if opt.wrongPrevData {
			wrong, _ := cidOfCBOR([]byte(fmt.Sprintf("not the previous data of %s at %s", a.did, since)))
			l = lexutil.LexLink(wrong)
		}
		evt.PrevData = &l
	}
	a.dataCID = *root
	return evt, nil
}

// canonicalRoot trims the top of the tree to its canonical form. indigo's
// MST leaves an empty root at a raised height when the last key of that
// height goes, and a later insert then wraps the tree in a node holding a
// single child; its root CID then differs from the one a relay computes by
// inverting the next commit (about one commit in 50,000 failed indigo's
// inversion check before this). The new root is marked dirty so the commit
// carries it.
func canonicalRoot(t *mst.Tree) {
	for {
		r := t.Root
		switch {
		case len(r.Entries) == 0 && r.Height != 0:
			t.Root = &mst.Node{Height: 0, Dirty: true}
			return
		case len(r.Entries) == 1 && r.Entries[0].IsChild() && r.Entries[0].Child != nil:
			t.Root = r.Entries[0].Child
			t.Root.Dirty = true
		default:
			return
		}
	}
}

// signCommit signs c with the account's current key and makes it the head.
func (a *account) signCommit(c *repo.Commit) (block, error) {
	if err := c.Sign(a.signing); err != nil {
		return block{}, fmt.Errorf("sign commit of %s: %w", a.did, err)
	}
	var buf bytes.Buffer
	if err := c.MarshalCBOR(&buf); err != nil {
		return block{}, fmt.Errorf("encode commit of %s: %w", a.did, err)
	}
	blk, err := newBlock(buf.Bytes())
	if err != nil {
		return block{}, err
	}
	a.rev = c.Rev
	a.commitCID = blk.cid
	a.commitBytes = blk.data
	return blk, nil
}

// syncEvent re-signs the current tree under a new rev and returns the
// #sync event carrying that commit alone.
func (a *account) syncEvent() (*comatproto.SyncSubscribeRepos_Sync, error) {
	sc := getScratch()
	defer putScratch(sc)
	root, err := sc.writeNodes(a.tree.Root, false)
	if err != nil {
		return nil, fmt.Errorf("MST root of %s: %w", a.did, err)
	}
	cmt := repo.Commit{DID: a.did, Version: repo.ATPROTO_REPO_VERSION, Data: *root, Rev: a.clock.Next().String()}
	blk, err := a.signCommit(&cmt)
	if err != nil {
		return nil, err
	}
	a.dataCID = *root
	return &comatproto.SyncSubscribeRepos_Sync{
		Did:    a.did,
		Rev:    cmt.Rev,
		Blocks: appendCAR(nil, blk.cid, []block{blk}),
	}, nil
}

// apply writes one op into the tree and the record list: the step a
// commit and a new account's fill share. blk is the record's block (nil for
// a delete); prev the CID the path held before, if any.
func (a *account) apply(op writeOp) (blk block, prev *cid.Cid, err error) {
	var ref recordRef
	if op.path != profilePath {
		if ref, err = parseRecordPath(op.path); err != nil {
			return block{}, nil, err
		}
	}
	var val *cid.Cid
	if op.action != "delete" {
		if blk, err = newBlock(op.data); err != nil {
			return block{}, nil, fmt.Errorf("record %s: %w", op.path, err)
		}
		c := blk.cid
		val = &c
	}
	applied, err := repo.ApplyOp(&a.tree, op.path, val)
	if err != nil {
		return block{}, nil, fmt.Errorf("apply %s %s: %w", op.action, op.path, err)
	}
	switch {
	case op.path == profilePath && op.action == "delete":
		a.profile = nil
	case op.path == profilePath:
		a.profile = op.data
	case op.action == "create":
		a.records = append(a.records, ref)
	case op.action == "delete":
		if i := slices.Index(a.records, ref); i >= 0 {
			a.records = slices.Delete(a.records, i, i+1)
		}
	}
	return blk, applied.Prev, nil
}

// recordPaths lists the repository's record paths, the profile aside,
// oldest first.
func (a *account) recordPaths() []string {
	out := make([]string, len(a.records))
	for i, r := range a.records {
		out[i] = r.path()
	}
	return out
}

const profilePath = "app.bsky.actor.profile/self"

// collection mix of creates, after the live network's: likes dominate,
// then follows, posts and reposts.
var createMix = []struct {
	collection string
	weight     int
}{
	{"app.bsky.feed.like", 50},
	{"app.bsky.graph.follow", 15},
	{"app.bsky.feed.post", 20},
	{"app.bsky.feed.repost", 12},
	{"app.bsky.graph.block", 3},
}

// nextOps picks the next change for an account: mostly a create; a few
// updates (profile) and deletes, as in the shared capture (144 creates, 2
// updates, 4 deletes in 148 commits); past maxRecords the commit also
// deletes the oldest record, so repositories stay bounded.
func (a *account) nextOps(seed int64, rng *rand.Rand, maxRecords int) []writeOp {
	r := rng.IntN(148)
	if r < 2 {
		rev := a.clock.Next().String()
		action := "update"
		if a.profile == nil {
			action = "create"
		}
		return []writeOp{{action: action, path: profilePath, data: profileRecord(seed, a.did, rev)}}
	}
	if r < 6 && len(a.records) > 0 {
		return []writeOp{{action: "delete", path: a.records[rng.IntN(len(a.records))].path()}}
	}
	w := rng.IntN(100)
	coll := createMix[0].collection
	for _, m := range createMix {
		if w < m.weight {
			coll = m.collection
			break
		}
		w -= m.weight
	}
	path := coll + "/" + a.clock.Next().String()
	ops := []writeOp{{action: "create", path: path, data: recordBytes(seed, a.did, path)}}
	if len(a.records) >= maxRecords {
		ops = append(ops, writeOp{action: "delete", path: a.records[0].path()})
	}
	return ops
}

// recordRNG draws a record's content from (seed, did, path) alone.
func recordRNG(seed int64, did, path string, stream uint64) *rand.Rand {
	h := fnv.New64a()
	var sb [8]byte
	binary.LittleEndian.PutUint64(sb[:], uint64(seed))
	h.Write(sb[:])
	h.Write([]byte(did))
	h.Write([]byte(path))
	return rand.New(rand.NewPCG(h.Sum64(), stream))
}

// recordBytes generates a record from (seed, did, path) alone, so the fleet
// never stores record bytes: getRepo and restarts regenerate them.
func recordBytes(seed int64, did, path string) []byte {
	rng := recordRNG(seed, did, path, 0x5eed)
	coll, rkey, _ := strings.Cut(path, "/")
	created := "2026-01-01T00:00:00.000Z"
	if tid, err := syntax.ParseTID(rkey); err == nil {
		created = tid.Time().UTC().Format("2006-01-02T15:04:05.000Z")
	}
	subjectDID := fakeDID(rng)
	var rec map[string]any
	switch coll {
	case "app.bsky.feed.post":
		rec = map[string]any{"$type": coll, "text": fakeText(rng, 20+rng.IntN(260)), "createdAt": created, "langs": []any{"en"}}
	case "app.bsky.feed.like", "app.bsky.feed.repost":
		subj := "at://" + subjectDID + "/app.bsky.feed.post/" + syntax.NewTIDFromInteger(rng.Uint64()>>1).String()
		c, _ := cidOfCBOR([]byte(subj))
		rec = map[string]any{"$type": coll, "subject": map[string]any{"uri": subj, "cid": c.String()}, "createdAt": created}
	default: // follows and blocks
		rec = map[string]any{"$type": coll, "subject": subjectDID, "createdAt": created}
	}
	b, err := marshalRecord(rec)
	if err != nil {
		panic(fmt.Sprintf("fakepds: encode generated record %s: %v", path, err)) // generated data is always encodable
	}
	return b
}

func profileRecord(seed int64, did, rev string) []byte {
	rng := rand.New(rand.NewPCG(uint64(seed), uint64(len(rev))^fnv64(did+rev)))
	b, err := marshalRecord(map[string]any{
		"$type":       "app.bsky.actor.profile",
		"displayName": fakeText(rng, 8+rng.IntN(16)),
		"description": fakeText(rng, 40+rng.IntN(120)),
	})
	if err != nil {
		panic(fmt.Sprintf("fakepds: encode profile of %s: %v", did, err))
	}
	return b
}

func fnv64(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

const b32 = "abcdefghijklmnopqrstuvwxyz234567"

func fakeDID(rng *rand.Rand) string {
	var b [24]byte
	for i := range b {
		b[i] = b32[rng.IntN(32)]
	}
	return "did:plc:" + string(b[:])
}

var words = strings.Fields("the a relay soak memory post like follow sky blue network firehose test fleet host commit repo tree leak stream frame cursor identity handle account sync bird cloud morning coffee today great")

func fakeText(rng *rand.Rand, n int) string {
	var sb strings.Builder
	for sb.Len() < n {
		if sb.Len() > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(words[rng.IntN(len(words))])
	}
	return sb.String()
}
