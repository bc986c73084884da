package bisect

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/relaysoak/relaysoak/internal/testkit"
	"github.com/relaysoak/relaysoak/relay"
	"github.com/relaysoak/relaysoak/soak/report"
)

func TestImageTagsSayRelayCommitAndHow(t *testing.T) {
	c := report.Revision{Hash: "0123456789abcdef0123456789abcdef01234567"}
	a := imageTag("My Relay", c, "docker build .")
	assert.Regexp(t, `^relaysoak/bisect-my-relay:0123456789ab-[0-9a-f]{8}$`, a)
	assert.NotEqual(t, a, imageTag("My Relay", c, "make image"), "another build, another image")
	assert.Equal(t, a, imageTag("My Relay", c, "docker build ."))
}

// Both ways to build a commit, for real: the profile's Go build facts
// (static, cgo off for the test relay) and a user's command (go build and
// docker build by hand). Each image is found again by commit afterwards;
// a failing command and one that leaves no image say what went wrong.
func TestE2EBuildersMakeImagesCachedByCommit(t *testing.T) {
	testkit.RequireDocker(t)
	src, h := testRelayRepo(t, harmlessCommit)
	r := repo{dir: src}
	c, err := r.commit(t.Context(), h[1])
	require.NoError(t, err)
	wt, remove, err := r.worktree(t.Context(), c)
	require.NoError(t, err)
	defer remove()

	cmdBuild := `CGO_ENABLED=0 go build -trimpath -o relay . && printf 'FROM scratch\nCOPY relay /relay\nENTRYPOINT ["/relay"]\n' > Dockerfile.relaysoak && DOCKER_BUILDKIT=0 docker build -q -f Dockerfile.relaysoak -t "$2" .`
	for _, b := range []Builder{GoBuilder{Profile: testRelayProfile(t)}, CmdBuilder{Cmd: cmdBuild, Name: "testrelay"}} {
		cb := b.(Cacher)
		tag, _ := cb.Cached(t.Context(), c)
		exec.Command("docker", "rmi", "-f", tag).Run() // an earlier run's, were the commit the same
		_, ok := cb.Cached(t.Context(), c)
		require.False(t, ok, "%s is not built yet", tag)
		var log strings.Builder
		image, err := b.Build(t.Context(), wt, c, &log)
		require.NoError(t, err, "%T: %s", b, log.String())
		t.Cleanup(func() { exec.Command("docker", "rmi", "-f", image).Run() })
		assert.Equal(t, tag, image)
		again, ok := cb.Cached(t.Context(), c)
		assert.True(t, ok, "%T: the image is found again by commit", b)
		assert.Equal(t, image, again)
		assert.NotEmpty(t, relay.ImageID(t.Context(), image))
	}

	var log strings.Builder
	_, err = CmdBuilder{Cmd: "echo compiling; echo 'main.go:1: no such thing' >&2; exit 3", Name: "testrelay"}.Build(t.Context(), wt, c, &log)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "main.go:1: no such thing")
	assert.Contains(t, log.String(), "compiling")
	_, err = CmdBuilder{Cmd: "true", Name: "testrelay"}.Build(t.Context(), wt, c, &log)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "left no image")
}
