package fakepds

import (
	"bytes"
	"fmt"
	"sort"

	cbg "github.com/whyrusleeping/cbor-gen"
)

// marshalRecord encodes a generated record as DAG-CBOR. Records here hold
// only strings, string lists and nested maps, so a direct encoder does the
// job at a fraction of the generic encoder's cost, on a path run for every
// record of every commit.
func marshalRecord(rec map[string]any) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(256)
	if err := writeCBORValue(cbg.NewCborWriter(&buf), rec); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func writeCBORValue(w *cbg.CborWriter, v any) error {
	switch v := v.(type) {
	case string:
		if err := w.WriteMajorTypeHeader(cbg.MajTextString, uint64(len(v))); err != nil {
			return err
		}
		_, err := w.WriteString(v)
		return err
	case []any:
		if err := w.WriteMajorTypeHeader(cbg.MajArray, uint64(len(v))); err != nil {
			return err
		}
		for _, e := range v {
			if err := writeCBORValue(w, e); err != nil {
				return err
			}
		}
		return nil
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		// DAG-CBOR's canonical order: shorter keys first, then bytewise.
		sort.Slice(keys, func(i, j int) bool {
			if len(keys[i]) != len(keys[j]) {
				return len(keys[i]) < len(keys[j])
			}
			return keys[i] < keys[j]
		})
		if err := w.WriteMajorTypeHeader(cbg.MajMap, uint64(len(v))); err != nil {
			return err
		}
		for _, k := range keys {
			if err := writeCBORValue(w, k); err != nil {
				return err
			}
			if err := writeCBORValue(w, v[k]); err != nil {
				return err
			}
		}
		return nil
	default:
		return fmt.Errorf("fakepds: cannot encode %T in a generated record", v)
	}
}
