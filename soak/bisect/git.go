package bisect

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/relaysoak/relaysoak/soak/report"
)

// Commit is one commit of the relay's history.
type Commit = report.Revision

// repo is a git checkout, read only: commits are built from worktrees of
// their own, so the user's working tree and index are never touched.
type repo struct{ dir string }

// git runs a git command in the checkout and returns its trimmed output.
func (r repo) git(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", r.dir}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		if msg := strings.TrimSpace(errb.String()); msg != "" {
			return "", fmt.Errorf("git %s in %s: %s", strings.Join(args, " "), r.dir, msg)
		}
		return "", fmt.Errorf("git %s in %s: %w", strings.Join(args, " "), r.dir, err)
	}
	return strings.TrimSpace(out.String()), nil
}

// commit resolves a revision (a hash, a tag, HEAD~3) to its commit.
func (r repo) commit(ctx context.Context, rev string) (Commit, error) {
	out, err := r.git(ctx, "log", "-1", "--format=%H%x00%s", rev+"^{commit}", "--")
	if err != nil {
		return Commit{}, fmt.Errorf("no commit %q: %w", rev, err)
	}
	hash, subject, _ := strings.Cut(out, "\x00")
	return Commit{Hash: hash, Subject: subject}, nil
}

// between lists the commits after good up to and including bad, oldest
// first, along bad's first parents: the line a bisect searches. good must
// be an ancestor of bad.
func (r repo) between(ctx context.Context, good, bad Commit) ([]Commit, error) {
	if _, err := r.git(ctx, "merge-base", "--is-ancestor", good.Hash, bad.Hash); err != nil {
		return nil, fmt.Errorf("the good commit %s is not an ancestor of the bad commit %s: a bisect searches the history between them", good.Short(), bad.Short())
	}
	out, err := r.git(ctx, "log", "--reverse", "--first-parent", "--format=%H%x00%s", good.Hash+".."+bad.Hash, "--")
	if err != nil {
		return nil, err
	}
	var cs []Commit
	for line := range strings.SplitSeq(out, "\n") {
		if line == "" {
			continue
		}
		hash, subject, _ := strings.Cut(line, "\x00")
		cs = append(cs, Commit{Hash: hash, Subject: subject})
	}
	if len(cs) == 0 || cs[len(cs)-1].Hash != bad.Hash {
		return nil, fmt.Errorf("no first-parent line from %s to %s", good.Short(), bad.Short())
	}
	return cs, nil
}

// worktree checks c out in a temporary worktree (detached) and returns its
// path and a function that removes it.
func (r repo) worktree(ctx context.Context, c Commit) (string, func(), error) {
	parent, err := os.MkdirTemp("", "relaysoak-bisect-")
	if err != nil {
		return "", nil, fmt.Errorf("making a worktree directory: %w", err)
	}
	dir := parent + "/" + c.Short()
	if _, err := r.git(ctx, "worktree", "add", "--detach", "--quiet", dir, c.Hash); err != nil {
		os.RemoveAll(parent)
		return "", nil, err
	}
	return dir, func() {
		// A fresh context: the removal must happen after a cancelled run too.
		if _, err := r.git(context.Background(), "worktree", "remove", "--force", dir); err != nil {
			os.RemoveAll(dir)
			r.git(context.Background(), "worktree", "prune")
		}
		os.RemoveAll(parent)
	}, nil
}

// checkRepo says whether dir is a git checkout, in words a user can act on.
func checkRepo(ctx context.Context, dir string) (repo, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return repo{}, fmt.Errorf("the relay source %s: %w", dir, err)
	}
	if !st.IsDir() {
		return repo{}, fmt.Errorf("the relay source %s is not a directory", dir)
	}
	r := repo{dir: dir}
	if _, err := r.git(ctx, "rev-parse", "--git-dir"); err != nil {
		var ee *exec.Error
		if errors.As(err, &ee) {
			return repo{}, fmt.Errorf("git is needed to bisect: %w", err)
		}
		return repo{}, fmt.Errorf("the relay source %s is not a git checkout: %w", dir, err)
	}
	return r, nil
}
