package relay

import (
	"context"
	"errors"
	"slices"
	"time"
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
	cli, err := dockerClient(ctx)
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

// Restart starts a relay that died (exited, or was OOM-killed) again, as a
// Kubernetes restart policy would, and re-arms the exit watcher; Exited
// then returns a fresh channel. The relay keeps its data directory, so it
// resumes its hosts without onboarding.
func (r *Runner) Restart(ctx context.Context) error {
	r.mu.Lock()
	if r.exit == nil || r.stopped || r.ctr == nil {
		r.mu.Unlock()
		return errors.New("relay: Restart is for a relay that died; this one runs or was stopped")
	}
	wstop, wdone := r.watchStop, r.watchDone
	r.mu.Unlock()
	if wstop != nil {
		wstop()
		<-wdone
	}
	if st, err := r.ctr.State(ctx); err == nil && (st.Running || st.Restarting) {
		// The engine restarted it already: stop it, so it starts clean here.
		if err := r.stopContainer(ctx); err != nil {
			return err
		}
	}
	if err := r.startAgain(ctx); err != nil {
		return err
	}
	r.mu.Lock()
	r.exit = nil
	r.exited = make(chan struct{})
	r.armed = true
	wctx, cancel := context.WithCancel(context.Background())
	r.watchStop, r.watchDone = cancel, make(chan struct{})
	r.mu.Unlock()
	go r.watch(wctx)
	return nil
}

// MemoryMetrics are the profile's gauges that carry the relay's memory.
func (r *Runner) MemoryMetrics() []string { return slices.Clone(r.facts.MemoryMetrics) }

// grace is how long the relay may take to stop: the run's setting, else
// the profile's (a diagnostic build printing a leak report needs minutes).
func (r *Runner) grace() time.Duration {
	if r.cfg.StopGrace > 0 {
		return r.cfg.StopGrace
	}
	return r.facts.StopGrace
}

// PprofURL is the relay's heap profile URL, "" when its profile serves
// none.
func (r *Runner) PprofURL() string {
	if r.facts.PprofPath == "" {
		return ""
	}
	return r.url("http", r.facts.MetricsPort, r.facts.PprofPath)
}
