package fakepds

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
)

// HostImported makes the fleet host an identity that is not its own (one
// whose frames a replay publishes verbatim): an account record on host
// hostIndex, and its DID document served by the fleet's PLC with the
// #atproto_pds endpoint rewritten to that host, so a relay accepts the
// account's first event from there and checks its signatures with its real
// key. The fleet holds no key or repository for it and never writes for it.
//
// doc is the document as the capture stored it; nil makes one up (the host,
// a key derived from the seed): such an account's #identity and #account
// pass a relay's checks, but its commits cannot verify, and madeUp tells
// the caller to count them apart. Hosting a DID again moves it.
func (f *Fleet) HostImported(did string, doc []byte, hostIndex int) (madeUp bool, err error) {
	if hostIndex < 0 || hostIndex >= len(f.hosts) {
		return false, fmt.Errorf("fakepds: host %s on host %d: the fleet has hosts 0 to %d", did, hostIndex, len(f.hosts)-1)
	}
	if _, err := syntax.ParseDID(did); err != nil || !strings.HasPrefix(did, "did:plc:") {
		return false, fmt.Errorf("fakepds: host imported identity: %q is not a did:plc (the fleet's PLC serves only those)", did)
	}
	h := f.hosts[hostIndex]
	endpoint := f.cfg.PDSScheme + "://" + h.name
	var d identity.DIDDocument
	var docJSON []byte
	if doc == nil {
		madeUp = true
		pub, err := deriveKey(f.cfg.Seed, "imported/"+did).PublicKey()
		if err != nil {
			return false, fmt.Errorf("fakepds: key for %s: %w", did, err)
		}
		d = identity.DIDDocument{
			DID:         syntax.DID(did),
			AlsoKnownAs: []string{"at://" + strings.TrimPrefix(did, "did:plc:") + "." + h.name},
			VerificationMethod: []identity.DocVerificationMethod{{
				ID: did + "#atproto", Type: "Multikey", Controller: did, PublicKeyMultibase: pub.Multibase(),
			}},
			Service: []identity.DocService{{ID: "#atproto_pds", Type: "AtprotoPersonalDataServer", ServiceEndpoint: endpoint}},
		}
		if docJSON, err = didDocJSON(d); err != nil {
			return false, fmt.Errorf("fakepds: document for %s: %w", did, err)
		}
	} else {
		if docJSON, err = RewritePDSEndpoint(did, doc, endpoint); err != nil {
			return false, fmt.Errorf("fakepds: %w", err)
		}
		if err := json.Unmarshal(docJSON, &d); err != nil {
			return false, fmt.Errorf("fakepds: DID document of %s: %w", did, err)
		}
	}

	f.hostsMu.Lock()
	a := f.accounts[did]
	switch {
	case a == nil:
		a = &account{did: did, host: hostIndex, imported: true}
		a.active.Store(true)
		f.accounts[did] = a
		f.importedN.Add(1)
		h.accounts = append(h.accounts, a)
	case !a.imported:
		f.hostsMu.Unlock()
		return false, fmt.Errorf("fakepds: %s is one of the fleet's own accounts, not an imported one", did)
	case a.host != hostIndex:
		from := f.hosts[a.host]
		for i, c := range from.accounts {
			if c == a {
				from.accounts = append(from.accounts[:i], from.accounts[i+1:]...)
				break
			}
		}
		a.host = hostIndex
		h.accounts = append(h.accounts, a)
	}
	f.hostsMu.Unlock()
	f.plc.setDocument(did, d, docJSON)
	return madeUp, nil
}

// RewritePDSEndpoint returns a DID document (JSON) whose #atproto_pds
// service points at endpoint; everything else in it is kept. The document's
// id must be did.
func RewritePDSEndpoint(did string, doc []byte, endpoint string) ([]byte, error) {
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		return nil, fmt.Errorf("DID document of %s is not a JSON object: %w", did, err)
	}
	if id, _ := m["id"].(string); id != did {
		return nil, fmt.Errorf("DID document stored for %s has id %q", did, m["id"])
	}
	svcs, _ := m["service"].([]any)
	found := false
	for _, s := range svcs {
		sm, ok := s.(map[string]any)
		if !ok {
			continue
		}
		if id, _ := sm["id"].(string); id == "#atproto_pds" || id == did+"#atproto_pds" {
			sm["serviceEndpoint"] = endpoint
			found = true
		}
	}
	if !found {
		m["service"] = append(svcs, map[string]any{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": endpoint})
	}
	out, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("DID document of %s: %w", did, err)
	}
	return out, nil
}

// setDocument serves a document that has no operation log of ours (an
// imported identity): lookups find it, the export and audit log do not.
func (p *plcDirectory) setDocument(did string, doc identity.DIDDocument, docJSON []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.byDID == nil {
		p.byDID = map[string]*plcRecord{}
	}
	r := p.byDID[did]
	if r == nil {
		r = &plcRecord{}
		p.byDID[did] = r
	}
	r.doc, r.docJSON = doc, docJSON
}

// IsImported says whether did is an identity hosted for a replayed capture
// (its frames are real, signed with real keys), not one of the fleet's own.
func (f *Fleet) IsImported(did string) bool {
	// Asked for every delivered commit: a fleet that hosts no capture
	// answers without the lock.
	if f.importedN.Load() == 0 {
		return false
	}
	f.hostsMu.RLock()
	defer f.hostsMu.RUnlock()
	a, ok := f.accounts[did]
	return ok && a.imported
}
