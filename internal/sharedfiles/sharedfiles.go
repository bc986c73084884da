// Package sharedfiles finds the project's shared material (notes and the
// real firehose capture) at ../shared beside the checkout, where the
// developers' machines and CI keep it. Tests read it in place and never
// copy it into the repository.
package sharedfiles

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// CaptureDir is the directory of the real capture
// (../shared/captures/bsky-firehose-2026-07-04), found by walking up from
// the test's directory to go.mod.
func CaptureDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		require.NotEqual(t, parent, dir, "no go.mod above the test's directory")
		dir = parent
	}
	p := filepath.Join(dir, "..", "shared", "captures", "bsky-firehose-2026-07-04")
	_, err = os.Stat(filepath.Join(p, "frames.bin.zst"))
	require.NoError(t, err, "the shared capture must sit at ../shared beside the checkout")
	return p
}
