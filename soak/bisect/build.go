package bisect

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/relaysoak/relaysoak/relay"
)

// Builder makes, from one commit checked out in a worktree, what a soak
// runs: an image tag. An error is a commit that does not build; the bisect
// skips it and says why.
type Builder interface {
	Build(ctx context.Context, worktree string, c Commit, log io.Writer) (image string, err error)
}

// Cacher is a Builder that knows, without a worktree, the image it built
// for a commit earlier: images are kept, by commit and by how they were
// built, across bisects.
type Cacher interface {
	Cached(ctx context.Context, c Commit) (image string, ok bool)
}

// imageTag is where a commit's build is kept: the relay's name, the
// commit, and a digest of how it was built (another build command or
// other flags make another image).
func imageTag(name string, c Commit, how any) string {
	spec, _ := json.Marshal(how)
	name = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '-'
	}, strings.ToLower(name))
	digest := fmt.Sprintf("%x", sha256.Sum256(spec))
	return fmt.Sprintf("relaysoak/bisect-%s:%s-%s", name, c.Hash[:min(12, len(c.Hash))], digest[:8])
}

// GoBuilder builds a Go relay from source, statically, inside the
// checkout's own module, into a FROM scratch image: its main package and
// flags are the relay profile's build facts.
type GoBuilder struct {
	Profile relay.Profile
	// Main overrides the profile's main package ("./cmd/relay").
	Main string
}

func (b GoBuilder) build() relay.GoBuild {
	g := b.Profile.Facts().Build
	if b.Main != "" {
		g.Main = b.Main
	}
	return g
}

func (b GoBuilder) tag(c Commit) string { return imageTag(b.Profile.Facts().Name, c, b.build()) }

// Cached is the commit's image when it was built before.
func (b GoBuilder) Cached(ctx context.Context, c Commit) (string, bool) {
	tag := b.tag(c)
	return tag, relay.ImageID(ctx, tag) != ""
}

// Build runs go build in the worktree and makes the image.
func (b GoBuilder) Build(ctx context.Context, worktree string, c Commit, log io.Writer) (string, error) {
	g := b.build()
	if g.Main == "" {
		return "", fmt.Errorf("the %s profile names no main package to build: give --main, or --build-cmd", b.Profile.Facts().Name)
	}
	f := b.Profile.Facts()
	tag := b.tag(c)
	_, err := relay.BuildGoImage(ctx, relay.GoImage{Dir: worktree, Build: g, Tag: tag, Ports: []int{f.APIPort, f.MetricsPort},
		Labels: map[string]string{relay.Label + ".commit": c.Hash}, Log: log})
	return tag, err
}

// CmdBuilder builds with the user's command (a Dockerfile's build, a Zig or
// Rust build; see relay.BuildWithCommand).
type CmdBuilder struct {
	Cmd string
	// Name is the relay's, for the tag.
	Name string
}

func (b CmdBuilder) tag(c Commit) string { return imageTag(b.Name, c, b.Cmd) }

// Cached is the commit's image when it was built before.
func (b CmdBuilder) Cached(ctx context.Context, c Commit) (string, bool) {
	tag := b.tag(c)
	return tag, relay.ImageID(ctx, tag) != ""
}

// Build runs the command (relay.BuildWithCommand).
func (b CmdBuilder) Build(ctx context.Context, worktree string, c Commit, log io.Writer) (string, error) {
	tag := b.tag(c)
	return tag, relay.BuildWithCommand(ctx, worktree, b.Cmd, tag, log)
}
