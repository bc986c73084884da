package fakepds

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/atdata"
	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
)

// deriveKey makes a secp256k1 key from the fleet's seed and a label, so the
// same seed gives the same keys (and so the same DIDs) on every run.
func deriveKey(seed int64, label string) *atcrypto.PrivateKeyK256 {
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], uint64(seed))
	for i := 0; ; i++ {
		h := sha256.New()
		h.Write(buf[:])
		fmt.Fprintf(h, "%s/%d", label, i)
		k, err := atcrypto.ParsePrivateBytesK256(h.Sum(nil))
		if err == nil {
			return k
		}
		// A digest outside the curve's order is astronomically rare; try the next.
	}
}

// plcOp is a did:plc operation as plc.directory stores it.
type plcOp struct {
	Type                string                `json:"type"`
	RotationKeys        []string              `json:"rotationKeys"`
	VerificationMethods map[string]string     `json:"verificationMethods"`
	AlsoKnownAs         []string              `json:"alsoKnownAs"`
	Services            map[string]plcService `json:"services"`
	Prev                *string               `json:"prev"`
	Sig                 string                `json:"sig,omitempty"`
}

type plcService struct {
	Type     string `json:"type"`
	Endpoint string `json:"endpoint"`
}

// cborMap is the operation as generic data, for DAG-CBOR encoding: the
// signature covers the encoding without "sig", the DID and the CID the
// encoding with it.
func (op *plcOp) cborMap(withSig bool) map[string]any {
	rot := make([]any, len(op.RotationKeys))
	for i, k := range op.RotationKeys {
		rot[i] = k
	}
	aka := make([]any, len(op.AlsoKnownAs))
	for i, a := range op.AlsoKnownAs {
		aka[i] = a
	}
	vms := map[string]any{}
	for k, v := range op.VerificationMethods {
		vms[k] = v
	}
	svcs := map[string]any{}
	for k, v := range op.Services {
		svcs[k] = map[string]any{"type": v.Type, "endpoint": v.Endpoint}
	}
	m := map[string]any{
		"type":                op.Type,
		"rotationKeys":        rot,
		"verificationMethods": vms,
		"alsoKnownAs":         aka,
		"services":            svcs,
		"prev":                nil,
	}
	if op.Prev != nil {
		m["prev"] = *op.Prev
	}
	if withSig {
		m["sig"] = op.Sig
	}
	return m
}

func (op *plcOp) sign(rotation *atcrypto.PrivateKeyK256) error {
	unsigned, err := atdata.MarshalCBOR(op.cborMap(false))
	if err != nil {
		return fmt.Errorf("encode PLC operation: %w", err)
	}
	sig, err := rotation.HashAndSign(unsigned)
	if err != nil {
		return fmt.Errorf("sign PLC operation: %w", err)
	}
	op.Sig = base64.RawURLEncoding.EncodeToString(sig)
	return nil
}

// signedBytes is the DAG-CBOR of the signed operation.
func (op *plcOp) signedBytes() ([]byte, error) {
	return atdata.MarshalCBOR(op.cborMap(true))
}

// VerifyPLCOp checks an operation's signature against a rotation key
// (did:key form). Tests and the audit check use it.
func VerifyPLCOp(opJSON []byte, rotationDIDKey string) error {
	var op plcOp
	if err := json.Unmarshal(opJSON, &op); err != nil {
		return fmt.Errorf("decode PLC operation: %w", err)
	}
	pub, err := atcrypto.ParsePublicDIDKey(rotationDIDKey)
	if err != nil {
		return fmt.Errorf("parse rotation key %q: %w", rotationDIDKey, err)
	}
	unsigned, err := atdata.MarshalCBOR(op.cborMap(false))
	if err != nil {
		return err
	}
	sig, err := base64.RawURLEncoding.DecodeString(op.Sig)
	if err != nil {
		return fmt.Errorf("decode PLC signature: %w", err)
	}
	return pub.HashAndVerify(unsigned, sig)
}

// PLCDIDFromGenesis computes the DID a signed genesis operation names:
// did:plc: and the first 24 characters of the base32 SHA-256 of its DAG-CBOR.
func PLCDIDFromGenesis(opJSON []byte) (string, error) {
	var op plcOp
	if err := json.Unmarshal(opJSON, &op); err != nil {
		return "", fmt.Errorf("decode PLC operation: %w", err)
	}
	b, err := op.signedBytes()
	if err != nil {
		return "", err
	}
	return didFromSignedBytes(b), nil
}

func didFromSignedBytes(b []byte) string {
	sum := sha256.Sum256(b)
	enc := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:]))
	return "did:plc:" + enc[:24]
}

// plcEntry is one operation in the directory's log.
type plcEntry struct {
	Seq int64  `json:"seq"`
	DID string `json:"did"`
	// Operation is the signed operation as JSON, not the parsed struct
	// with its two maps: every live DID's whole chain is kept, so an
	// entry's size is what identity churn grows the directory by.
	Operation json.RawMessage `json:"operation"`
	CID       string          `json:"cid"`
	Nullified bool            `json:"nullified"`
	CreatedAt time.Time       `json:"createdAt"`
}

func pdsService(scheme, host string) map[string]plcService {
	return map[string]plcService{"atproto_pds": {Type: "AtprotoPersonalDataServer", Endpoint: scheme + "://" + host}}
}

// newPLCOp builds and signs an operation for an account's current state.
func newPLCOp(rotation *atcrypto.PrivateKeyK256, signing atcrypto.PublicKey, handle, scheme, host string, prev *string) (*plcOp, []byte, error) {
	rotPub, err := rotation.PublicKey()
	if err != nil {
		return nil, nil, err
	}
	op := &plcOp{
		Type:                "plc_operation",
		RotationKeys:        []string{rotPub.DIDKey()},
		VerificationMethods: map[string]string{"atproto": signing.DIDKey()},
		AlsoKnownAs:         []string{"at://" + handle},
		Services:            pdsService(scheme, host),
		Prev:                prev,
	}
	if err := op.sign(rotation); err != nil {
		return nil, nil, err
	}
	b, err := op.signedBytes()
	if err != nil {
		return nil, nil, err
	}
	return op, b, nil
}

// didDocument renders the document plc.directory serves for the latest op.
func didDocument(did string, op *plcOp) (identity.DIDDocument, error) {
	doc := identity.DIDDocument{AlsoKnownAs: op.AlsoKnownAs}
	doc.DID = syntax.DID(did)
	if k, ok := op.VerificationMethods["atproto"]; ok {
		pub, err := atcrypto.ParsePublicDIDKey(k)
		if err != nil {
			return doc, fmt.Errorf("verification method of %s: %w", did, err)
		}
		doc.VerificationMethod = []identity.DocVerificationMethod{{
			ID: did + "#atproto", Type: "Multikey", Controller: did, PublicKeyMultibase: pub.Multibase(),
		}}
	}
	if s, ok := op.Services["atproto_pds"]; ok {
		doc.Service = []identity.DocService{{ID: "#atproto_pds", Type: s.Type, ServiceEndpoint: s.Endpoint}}
	}
	return doc, nil
}

// didDocJSON adds the JSON-LD context plc.directory sends.
func didDocJSON(doc identity.DIDDocument) ([]byte, error) {
	return json.Marshal(struct {
		Context []string `json:"@context"`
		identity.DIDDocument
	}{
		Context:     []string{"https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1", "https://w3id.org/security/suites/secp256k1-2019/v1"},
		DIDDocument: doc,
	})
}
