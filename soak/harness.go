package soak

import (
	"context"

	"github.com/relaysoak/relaysoak/soak/rig"
)

// Harness starts one arm's rig: the fake network (or a share of another
// arm's, in an A/B soak) and the relay under test. The soak drives,
// samples, judges and reports through the rig whatever started it, so a
// test can soak a relay it runs itself (rig.Config.Attach) in seconds.
type Harness interface {
	Start(ctx context.Context, cfg rig.Config) (*rig.Rig, error)
}

// HarnessFunc is a Harness of one function.
type HarnessFunc func(ctx context.Context, cfg rig.Config) (*rig.Rig, error)

// Start calls f.
func (f HarnessFunc) Start(ctx context.Context, cfg rig.Config) (*rig.Rig, error) { return f(ctx, cfg) }

// containerHarness is the default: rig.Start runs the relay in a container
// (or attaches to Config.External's).
var containerHarness Harness = HarnessFunc(rig.Start)
