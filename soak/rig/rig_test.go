package rig

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The rig itself is exercised end to end by package relay's tests (fleet,
// real relay, consumer); here only its log reading, which needs no Docker.
func TestCountAndGrepLog(t *testing.T) {
	p := filepath.Join(t.TempDir(), "relay.log")
	require.NoError(t, os.WriteFile(p, []byte(
		`{"level":"WARN","msg":"commit with miss-matching prevData","did":"did:plc:a"}
{"level":"WARN","msg":"failed to invert commit MST","did":"did:plc:a"}
{"level":"WARN","msg":"failed to invert commit MST","did":"did:plc:b"}
{"level":"INFO","msg":"startup complete"}
`), 0o644))
	c, err := CountLog(p, DefaultLogPatterns)
	require.NoError(t, err)
	assert.Equal(t, 1, c[LogBadPrevData])
	assert.Equal(t, 2, c[LogBadInversion])
	assert.Equal(t, 0, c[LogFailedHandling])
	lines, err := GrepLog(p, 10, LogBadInversion, "did:plc:b")
	require.NoError(t, err)
	assert.Len(t, lines, 1)
	_, err = CountLog(filepath.Join(t.TempDir(), "missing"), nil)
	assert.Error(t, err)
}
