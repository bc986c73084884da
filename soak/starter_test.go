package soak

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/relaysoak/relaysoak/relay"
	"github.com/relaysoak/relaysoak/soak/harness/harnesstest"
)

// The controller's behaviours (interrupt, crash, restart, A/B, the report)
// are tested here against the test relay run as a process beside the test,
// not in a container: its real firehose, metrics and /proc, sampled every
// 100 ms, in seconds. Each has one end-to-end test against a container in
// the e2e tier (TestE2ESoak…).

// testRelayBinary is soak/testdata/testrelay built once per test binary.
var testRelayBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "relaysoak-testrelay-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "testrelay")
	return bin, relay.GoBuild{}.Build(context.Background(), "", "./testdata/testrelay", bin, nil)
})

// newProcessHarness runs the test relay as a process for each arm.
func newProcessHarness(t *testing.T) *harnesstest.Processes {
	t.Helper()
	_, err := testRelayBinary()
	require.NoError(t, err)
	return harnesstest.NewProcesses(t, func(string) (string, error) { return testRelayBinary() })
}
