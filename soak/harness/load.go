package harness

import (
	"context"
	"fmt"

	"github.com/relaysoak/relaysoak/replay"
)

// Load drives the fleet with a replay of cfg — what is written when is
// the replay's choice — until it ends (cfg.Duration, or the capture) or
// ctx ends. A relay that dies does not stop it: the caller decides.
func (r *Harness) Load(ctx context.Context, cfg replay.Config) (replay.Report, error) {
	rp, err := replay.New(r.fleet, cfg)
	if err != nil {
		return replay.Report{}, fmt.Errorf("rig: %w", err)
	}
	return rp.Run(ctx)
}

// UntilExit is ctx, ended also when the relay exits: a load that should
// stop with the relay runs under it. Call cancel when done.
func (r *Harness) UntilExit(ctx context.Context) (_ context.Context, cancel context.CancelFunc) {
	ctx, cancel = context.WithCancel(ctx)
	go func() {
		select {
		case <-r.target.Exited():
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}
