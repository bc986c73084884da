package fakepds

import (
	"fmt"
	"strings"
	"sync"

	"github.com/bluesky-social/indigo/atproto/syntax"
)

// recordRef is one record of a repository in 16 bytes instead of its path
// string (~64 with its header): its collection, interned, and its record
// key, a TID, as the integer it encodes. Thousands of accounts each keep a
// list of them, oldest first, to know what to delete next.
type recordRef struct {
	coll *string
	tid  uint64
}

// path is the record's path, "collection/rkey".
func (r recordRef) path() string {
	b := make([]byte, 0, len(*r.coll)+14)
	b = append(b, *r.coll...)
	b = append(b, '/')
	var key [13]byte
	v := r.tid
	for i := 12; i >= 0; i-- {
		key[i] = syntax.Base32SortAlphabet[v&0x1f]
		v >>= 5
	}
	return string(append(b, key[:]...))
}

// parseRecordPath reads a record path whose key is a TID, as every record
// the fleet writes has.
func parseRecordPath(path string) (recordRef, error) {
	i := strings.LastIndexByte(path, '/')
	if i <= 0 {
		return recordRef{}, fmt.Errorf("record path %q has no collection", path)
	}
	rkey := path[i+1:]
	v := syntax.TID(rkey).Integer()
	if len(rkey) != 13 || v == 0 || v>>63 != 0 {
		return recordRef{}, fmt.Errorf("record path %q: its key is not a TID", path)
	}
	return recordRef{coll: internCollection(path[:i]), tid: v}, nil
}

// collections interns collection names: a handful, shared by every record.
var collections = struct {
	sync.RWMutex
	m map[string]*string
}{m: map[string]*string{}}

func internCollection(name string) *string {
	collections.RLock()
	p, ok := collections.m[name]
	collections.RUnlock()
	if ok {
		return p
	}
	collections.Lock()
	defer collections.Unlock()
	if p, ok := collections.m[name]; ok {
		return p
	}
	p = new(string)
	*p = strings.Clone(name)
	collections.m[name] = p
	return p
}
