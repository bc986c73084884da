package fakepds

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"

	"github.com/bluesky-social/indigo/atproto/repo/mst"
	"github.com/ipfs/go-cid"

	"github.com/relaysoak/relaysoak/internal/cborhead"
)

// block is one encoded block: its CID and its bytes.
type block struct {
	cid  cid.Cid
	data []byte
}

// cborCIDPrefix is a CIDv1's head for DAG-CBOR hashed with SHA2-256: version
// 1, codec 0x71, multihash 0x12 of 32 bytes.
var cborCIDPrefix = [4]byte{0x01, 0x71, 0x12, 0x20}

// cidOfCBOR is the CID of DAG-CBOR bytes. The digest is taken on the stack:
// multihash.Sum allocates a hasher per call, and the fleet hashes every
// record and MST node it writes.
func cidOfCBOR(b []byte) (cid.Cid, error) {
	var raw [4 + sha256.Size]byte
	copy(raw[:], cborCIDPrefix[:])
	sum := sha256.Sum256(b)
	copy(raw[4:], sum[:])
	return cid.Cast(raw[:])
}

func newBlock(data []byte) (block, error) {
	c, err := cidOfCBOR(data)
	if err != nil {
		return block{}, err
	}
	return block{cid: c, data: data}, nil
}

// appendCAR appends a CARv1 to dst: the header naming root, then each block.
func appendCAR(dst []byte, root cid.Cid, blks ...[]block) []byte {
	// Header {roots:[root], version:1} in DAG-CBOR, written by hand: it is
	// the same handful of bytes every time and go-car's encoder allocates a lot.
	rootBytes := root.Bytes()
	var hdr [96]byte
	h := append(hdr[:0], 0xa2)                                     // map(2)
	h = append(h, 0x65, 'r', 'o', 'o', 't', 's', 0x81, 0xd8, 0x2a) // "roots": [tag 42
	h = cborhead.AppendHead(h, cborhead.Bytes, uint64(len(rootBytes)+1))
	h = append(h, 0x00)
	h = append(h, rootBytes...)
	h = append(h, 0x67, 'v', 'e', 'r', 's', 'i', 'o', 'n', 0x01)
	dst = binary.AppendUvarint(dst, uint64(len(h)))
	dst = append(dst, h...)
	for _, list := range blks {
		for _, b := range list {
			k := b.cid.KeyString() // the CID's bytes, without a copy
			dst = binary.AppendUvarint(dst, uint64(len(k)+len(b.data)))
			dst = append(dst, k...)
			dst = append(dst, b.data...)
		}
	}
	return dst
}

// commitScratch is one commit's working memory: the changed MST nodes'
// bytes and the CAR that carries them. It goes back to scratchPool once the
// frame is encoded, so a commit allocates neither: the library's
// WriteDiffBlocks gives each node a fresh, growing buffer and a block
// object, which was 40% of the bytes a commit allocated.
type commitScratch struct {
	nodes   []block
	arena   []byte          // the nodes' bytes, back to back
	enc     bytes.Buffer    // one node's CBOR
	entries []mst.EntryData // one node's entries
	car     []byte
}

var scratchPool = sync.Pool{New: func() any { return new(commitScratch) }}

func getScratch() *commitScratch {
	sc := scratchPool.Get().(*commitScratch)
	sc.reset()
	return sc
}

// reset empties sc for the next commit, keeping its buffers.
func (sc *commitScratch) reset() {
	sc.nodes, sc.arena, sc.car = sc.nodes[:0], sc.arena[:0], sc.car[:0]
}

// maxPooledScratch: a scratch grown past this (a whole repository's CAR)
// is left to the GC rather than kept for the run.
const maxPooledScratch = 256 << 10

func putScratch(sc *commitScratch) {
	if cap(sc.arena)+cap(sc.car) > maxPooledScratch {
		return
	}
	clear(sc.nodes) // no CIDs or bytes held past the commit
	clear(sc.entries)
	scratchPool.Put(sc)
}

// writeNodes encodes n's nodes into sc.nodes, children first, and returns
// n's CID: every node when all, else the dirty ones only (a commit's
// diff), as the library's WriteDiffBlocks does. Node CBOR is the library's
// (mst.NodeData.MarshalCBOR), so the CIDs are the ones a relay computes;
// TestNodeBlocksMatchTheLibrary holds them to it.
func (sc *commitScratch) writeNodes(n *mst.Node, all bool) (*cid.Cid, error) {
	if n == nil || n.Stub {
		return nil, fmt.Errorf("MST node missing (a stub or nil child)")
	}
	if !all && !n.Dirty && n.CID != nil {
		return n.CID, nil
	}
	for i := range n.Entries {
		e := &n.Entries[i]
		if !e.IsChild() || e.Child == nil || !(all || e.Dirty || e.Child.Dirty) {
			continue
		}
		c, err := sc.writeNodes(e.Child, all)
		if err != nil {
			return nil, err
		}
		e.ChildCID, e.Dirty = c, false
	}
	nd := mst.NodeData{Entries: sc.entries[:0]}
	var prevKey []byte
	for i := range n.Entries {
		e := &n.Entries[i]
		if e.IsChild() {
			if i == 0 {
				nd.Left = e.ChildCID
				continue
			}
			if len(nd.Entries) == 0 {
				return nil, fmt.Errorf("malformed MST node: two subtrees in a row at height %d", n.Height)
			}
			nd.Entries[len(nd.Entries)-1].Right = e.ChildCID
		}
		if e.IsValue() {
			p := mst.CountPrefixLen(prevKey, e.Key)
			nd.Entries = append(nd.Entries, mst.EntryData{PrefixLen: int64(p), KeySuffix: e.Key[p:], Value: *e.Value})
			prevKey = e.Key
		}
	}
	sc.entries = nd.Entries
	sc.enc.Reset()
	if err := nd.MarshalCBOR(&sc.enc); err != nil {
		return nil, fmt.Errorf("encode MST node: %w", err)
	}
	// Earlier nodes keep pointing at the arena they were written to if
	// this append moves it: their bytes do not change.
	start := len(sc.arena)
	sc.arena = append(sc.arena, sc.enc.Bytes()...)
	b, err := newBlock(sc.arena[start:len(sc.arena):len(sc.arena)])
	if err != nil {
		return nil, err
	}
	sc.nodes = append(sc.nodes, b)
	c := b.cid
	n.CID, n.Dirty = &c, false
	// Keep a changed node's entries tight: the library's inserts grow them
	// by doubling, and commits would leave that slack on every node they
	// touch, so memory would climb until every node had been touched.
	if cap(n.Entries)-len(n.Entries) > 1 {
		n.Entries = slices.Clone(n.Entries)
	}
	return n.CID, nil
}
