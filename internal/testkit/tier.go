package testkit

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// ContainerTiers are the name prefixes of the tests that may use Docker,
// each run by its own make target (see the Makefile): TestSmoke in `make
// test`, TestE2E in `make test-e2e`, TestLong in `make test-long`. Every
// other test is in the Docker-free tier, which runs with DOCKER_HOST
// pointing at nothing. Benchmarks run only when asked for (-bench).
var ContainerTiers = []string{"TestSmoke", "TestE2E", "TestLong", "Benchmark"}

// InContainerTier says whether a test (or benchmark) of this name may use
// Docker: its top-level name starts with one of ContainerTiers.
func InContainerTier(name string) bool {
	top, _, _ := strings.Cut(name, "/")
	for _, p := range ContainerTiers {
		if strings.HasPrefix(top, p) {
			return true
		}
	}
	return false
}

// RequireDocker fails (never skips) a test that needs Docker when the
// engine is missing, and fails one whose name puts it in the Docker-free
// tier: it would run there without an engine, or, with one, slow down the
// tier every change waits for.
func RequireDocker(t testing.TB) {
	t.Helper()
	require.True(t, InContainerTier(t.Name()),
		"%s uses Docker, so its name must start with one of %v (the Makefile runs each prefix as a tier)", t.Name(), ContainerTiers)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput()
	require.NoError(t, err, "%s needs a running Docker engine: %s", t.Name(), out)
}
