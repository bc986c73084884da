package relay

import (
	"context"

	"github.com/testcontainers/testcontainers-go"
)

// PID is the relay process's host PID (0 when it is not running): the
// memory probes read /proc/<pid> and its cgroup from the host.
func (r *Runner) PID(ctx context.Context) int {
	r.mu.Lock()
	ctr := r.ctr
	r.mu.Unlock()
	if ctr == nil {
		return 0
	}
	st, err := ctr.Inspect(ctx)
	if err != nil || st.State == nil || !st.State.Running {
		return 0
	}
	return st.State.Pid
}

// ImageID is the engine's ID (digest) of a local image, "" when unknown: a
// run records it so it can be repeated with the same bytes.
func ImageID(ctx context.Context, image string) string {
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return ""
	}
	defer cli.Close()
	ins, err := cli.ImageInspect(ctx, image)
	if err != nil {
		return ""
	}
	return ins.ID
}
