package soak

import (
	"context"

	"github.com/relaysoak/relaysoak/soak/harness"
)

// Starter starts one arm's harness: the fake network (or a share of
// another arm's, in an A/B soak) and the relay under test. The soak
// drives, samples, judges and reports through the harness whatever started
// it, so a test can soak a relay it runs itself (harness.Config.Attach) in
// seconds.
type Starter interface {
	Start(ctx context.Context, cfg harness.Config) (*harness.Harness, error)
}

// StarterFunc is a Starter of one function.
type StarterFunc func(ctx context.Context, cfg harness.Config) (*harness.Harness, error)

// Start calls f.
func (f StarterFunc) Start(ctx context.Context, cfg harness.Config) (*harness.Harness, error) {
	return f(ctx, cfg)
}

// containerStarter is the default: harness.Start runs the relay in a
// container (or attaches to Config.External's).
var containerStarter Starter = StarterFunc(harness.Start)
