package bisect

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/relaysoak/relaysoak/internal/testkit"
	"github.com/relaysoak/relaysoak/relay"
)

// git bisect run drives relaysoak bisect-step over the control repository
// (commit 5 keeps 16 KiB of every frame, commit 3 does not build): each
// commit it checks out is built into an image (cached by commit) and
// judged against commit 1 by a 2-minute A/B soak of two containers, the
// judge's window a minute. It names commit 5. Three or four such steps
// and their builds: the long tier.
func TestLongBisectStepUnderGitBisectRun(t *testing.T) {
	if os.Getenv("RELAYSOAK_LONG") == "" {
		t.Skip("long tier: set RELAYSOAK_LONG=1 (make test-long)")
	}
	testkit.RequireDocker(t)
	src, h := testRelayRepo(t, leakCommit)
	bin := filepath.Join(t.TempDir(), "relaysoak")
	require.NoError(t, relay.GoBuild{}.Build(t.Context(), moduleRoot, "./cmd/relaysoak", bin, nil))
	profile, err := filepath.Abs("testdata/testrelay.yaml")
	require.NoError(t, err)
	runs := t.TempDir()

	git(t, src, "bisect", "start", h[8], h[1])
	cmd := exec.CommandContext(t.Context(), "git", "-C", src, "bisect", "run", bin, "bisect-step",
		"--relay-source", src, "--baseline", h[1], "--relay-profile", profile, "--runs-dir", runs,
		"--hosts", "20", "--rate", "100", "--duration", "2m", "--judge-window", "1m", "--sample-every", "1s",
		// The leak keeps ~5.5 GiB/h: a good commit must rule out a third of it.
		"--resolve", "2000")
	cmd.Env = append(os.Environ(), "CI=1")
	t0 := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("git bisect run (%s):\n%s", time.Since(t0).Round(time.Second), out)
	require.NoError(t, err, "git bisect run ends 0 when it names a commit")
	t.Logf("git bisect log:\n%s", git(t, src, "bisect", "log"))
	first := regexp.MustCompile(`(?m)^([0-9a-f]{40}) is the first bad commit`).FindStringSubmatch(string(out))
	require.NotNil(t, first, "git bisect names a first bad commit")
	assert.Equal(t, h[5], first[1])
	steps, err := filepath.Glob(filepath.Join(runs, "bisect-step-*"))
	require.NoError(t, err)
	assert.NotEmpty(t, steps)
	assert.LessOrEqual(t, len(steps), 4, "one bisect-step per commit git bisect tried")
	if strings.Contains(git(t, src, "bisect", "log"), "skip: ["+h[3]) {
		t.Logf("commit 3 was tried and skipped (exit 125)")
	}
	git(t, src, "bisect", "reset")
}
