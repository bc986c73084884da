package captures

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Resolve returns a capture file to read for path: path itself when it is
// a capture file, or, for a directory holding a raw dump (frames.bin[.zst]
// and did_docs.json[.zst], as shared/captures has), a capture imported into
// a temporary directory that cleanup removes. logf, when set, says so.
func Resolve(ctx context.Context, path string, logf func(format string, args ...any)) (file string, cleanup func(), err error) {
	none := func() {}
	st, err := os.Stat(path)
	if err != nil {
		return "", none, fmt.Errorf("capture: %w", err)
	}
	if !st.IsDir() {
		return path, none, nil
	}
	frames, docs := DumpFiles(path)
	if frames == "" {
		return "", none, fmt.Errorf("capture: directory %s holds no frames.bin or frames.bin.zst", path)
	}
	tmp, err := os.MkdirTemp("", "relaysoak-capture-")
	if err != nil {
		return "", none, fmt.Errorf("capture: %w", err)
	}
	out := filepath.Join(tmp, "capture.rscap")
	m, err := Import(ctx, ImportConfig{Frames: frames, DIDDocs: docs, Out: out})
	if err != nil {
		os.RemoveAll(tmp)
		return "", none, err
	}
	if logf != nil {
		logf("imported %s: %d frames, %d DID documents", path, m.Frames, m.DIDDocs)
	}
	return out, func() { os.RemoveAll(tmp) }, nil
}

// DumpFiles finds a raw dump's frames and DID documents in dir ("" when
// absent), compressed or not.
func DumpFiles(dir string) (frames, didDocs string) {
	find := func(base string) string {
		for _, n := range []string{base + ".zst", base} {
			if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
				return filepath.Join(dir, n)
			}
		}
		return ""
	}
	return find("frames.bin"), find("did_docs.json")
}

// SourceDigests are the sha256 of the files a capture was given as: the
// file, or a raw dump directory's frames and DID documents. A run's record
// names what it replayed by these, not by a temporary import.
func SourceDigests(path string) (map[string]string, error) {
	files := []string{path}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		frames, docs := DumpFiles(path)
		files = files[:0]
		for _, f := range []string{frames, docs} {
			if f != "" {
				files = append(files, f)
			}
		}
	}
	out := map[string]string{}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return nil, fmt.Errorf("capture digest: %w", err)
		}
		h := sha256.New()
		_, err = io.Copy(h, fh)
		fh.Close()
		if err != nil {
			return nil, fmt.Errorf("capture digest of %s: %w", f, err)
		}
		out[f] = hex.EncodeToString(h.Sum(nil))
	}
	return out, nil
}
