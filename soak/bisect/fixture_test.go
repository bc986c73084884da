package bisect

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/relaysoak/relaysoak/relay"
)

// moduleRoot is this module's root, from the package's directory.
const moduleRoot = "../.."

// git runs git in dir as a fixed author, for a test's throwaway
// repository.
func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=relaysoak", "GIT_AUTHOR_EMAIL=test@relaysoak.test",
		"GIT_COMMITTER_NAME=relaysoak", "GIT_COMMITTER_EMAIL=test@relaysoak.test", "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "git %s: %s", strings.Join(args, " "), out)
	return strings.TrimSpace(string(out))
}

// fixtureCommit is one commit of the throwaway repository: the files it
// writes.
type fixtureCommit struct {
	subject string
	files   map[string]string
}

// leakCommit keeps a copy of every frame the relay receives: the test
// relay's own per-frame retention, switched on by default.
var leakCommit = fixtureCommit{"keep a copy of every frame", map[string]string{"keepframes.go": `package main

import "os"

// Every frame received is kept: the regression a bisect must find.
func init() {
	if os.Getenv("LEAK_BYTES_PER_FRAME") == "" {
		os.Setenv("LEAK_BYTES_PER_FRAME", "16KiB")
	}
}
`}}

// harmlessCommit changes nothing the relay does.
var harmlessCommit = fixtureCommit{"say what the option is for", map[string]string{"option.go": "package main\n\n// option does nothing yet.\nfunc option() {}\n"}}

// testRelayRepo makes a git repository of the test relay's source in a
// module of its own (this module's requirements, so it builds offline)
// with eight commits, returned by number (hashes[1] … hashes[8]): commit
// 3 does not build (4 mends it), commit 5 is fifth (leakCommit, or
// harmlessCommit), the others change nothing the relay does.
func testRelayRepo(t *testing.T, fifth fixtureCommit) (dir string, hashes []string) {
	t.Helper()
	dir = t.TempDir()
	git(t, dir, "init", "--quiet", "--initial-branch=main")
	first := map[string]string{}
	srcs, err := filepath.Glob(filepath.Join(moduleRoot, "soak/testdata/testrelay/*.go"))
	require.NoError(t, err)
	for _, p := range srcs {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		first[filepath.Base(p)] = string(b)
	}
	mod, err := os.ReadFile(filepath.Join(moduleRoot, "go.mod"))
	require.NoError(t, err)
	first["go.mod"] = strings.Replace(string(mod), "module github.com/relaysoak/relaysoak", "module example.test/testrelay", 1)
	sum, err := os.ReadFile(filepath.Join(moduleRoot, "go.sum"))
	require.NoError(t, err)
	first["go.sum"] = string(sum)
	note := func(n int) fixtureCommit {
		return fixtureCommit{fmt.Sprintf("notes, part %d", n), map[string]string{"NOTES": strings.Repeat("a note\n", n)}}
	}
	commits := []fixtureCommit{
		{"the test relay", first},
		note(2),
		{"start an option (does not build)", map[string]string{"option.go": "package main\n\nfunc option( {\n"}},
		{"finish the option", map[string]string{"option.go": "package main\n\nfunc option() {}\n"}},
		fifth,
		note(6),
		note(7),
		note(8),
	}
	hashes = []string{""}
	for _, c := range commits {
		for name, content := range c.files {
			require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644))
		}
		git(t, dir, "add", "-A")
		git(t, dir, "commit", "--quiet", "-m", c.subject)
		hashes = append(hashes, git(t, dir, "rev-parse", "HEAD"))
	}
	return dir, hashes
}

// binaryBuilder builds a commit of the test relay into a binary, the
// "image" a process relay runs (harnesstest.Processes): real builds of
// real commits, without an image around them.
type binaryBuilder struct{ dir string }

func (b binaryBuilder) Build(ctx context.Context, worktree string, c Commit, log io.Writer) (string, error) {
	out := filepath.Join(b.dir, c.Short())
	return out, relay.GoBuild{}.Build(ctx, worktree, ".", out, log)
}

// testRelayProfile is the test relay's generic profile (testdata).
func testRelayProfile(t *testing.T) relay.Profile {
	t.Helper()
	p, err := relay.LoadGeneric("testdata/testrelay.yaml")
	require.NoError(t, err)
	return p
}
