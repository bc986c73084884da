package harness

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/relaysoak/relaysoak/relay"
)

// The rig end to end (fleet, real relay, consumer) is in the e2e tests of
// package rig_test; here only its log reading, which needs no Docker.
func TestCountAndGrepLog(t *testing.T) {
	p := filepath.Join(t.TempDir(), "relay.log")
	require.NoError(t, os.WriteFile(p, []byte(
		`{"level":"WARN","msg":"commit with miss-matching prevData","did":"did:plc:a"}
{"level":"WARN","msg":"failed to invert commit MST","did":"did:plc:a"}
{"level":"WARN","msg":"failed to invert commit MST","did":"did:plc:b"}
{"level":"INFO","msg":"startup complete"}
`), 0o644))
	c, err := CountLog(p, (&relay.Indigo{}).Facts().LogPatterns)
	require.NoError(t, err)
	assert.Equal(t, 1, c[relay.IndigoLogBadPrevData])
	assert.Equal(t, 2, c[relay.IndigoLogBadInversion])
	assert.Equal(t, 0, c[relay.IndigoLogFailedHandling])
	lines, err := GrepLog(p, 10, relay.IndigoLogBadInversion, "did:plc:b")
	require.NoError(t, err)
	assert.Len(t, lines, 1)
	_, err = CountLog(filepath.Join(t.TempDir(), "missing"), nil)
	assert.Error(t, err)
}
