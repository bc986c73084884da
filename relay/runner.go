package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	mnetwork "github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/relaysoak/relaysoak/internal/useragent"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/network"
)

// What a Runner leaves in its run directory: the relay's complete log and
// its data directory (mounted at Profile.DataDir).
const (
	LogFile     = "relay.log"
	DataDirName = "relay-data"
)

// Config of a Runner. Zero values are sensible defaults unless marked required.
type Config struct {
	// RunDir holds everything of this run: data dir, hosts file, log.
	// Required.
	RunDir string
	// Image of the relay; default the indigo image at the pinned version,
	// built when missing. A named image must exist locally (there is no
	// registry to pull from).
	Image string
	// Profile of the relay; default &Indigo{}.
	Profile Profile
	// Memory limit in bytes (swap included, so none); default 2 GiB.
	Memory int64
	// StopGrace overrides the profile's stop grace (SIGTERM, then SIGKILL
	// after this long).
	StopGrace time.Duration
	// NanoCPUs limits CPU (1e9 = one core); default unlimited.
	NanoCPUs int64
	// PLCURL where the relay resolves DIDs, and UpstreamURL the upstream
	// relay face it may learn hosts from; "" tells the relay neither (the
	// caller knows the network it built: the rig fills in its own names).
	PLCURL      string
	UpstreamURL string
	// CACertFile is the run's CA certificate on the host (pki.CA.CertPath),
	// mounted read-only at Profile.CACertMount. Required when PLCURL or
	// UpstreamURL is https.
	CACertFile string
	// HealthTimeout for each start; default 60s.
	HealthTimeout time.Duration
	// PollInterval of the exit watcher; default 500ms.
	PollInterval time.Duration
	// RunID labels the container and network (org.relaysoak.run=…), so a
	// run's leftovers can be found; default the base name of RunDir.
	RunID string
	// TailLines kept for reports; default 40.
	TailLines int
	// Log receives progress (image build, starts, stops); default discard.
	Log io.Writer
}

// StartOptions say what the relay is connected to.
type StartOptions struct {
	// Names that must resolve to the fleet inside the container (PLC,
	// upstream, extra names). Host names are added automatically.
	Names []string
	// Hosts are onboarded by the profile.
	Hosts []Host
}

// Exit is how the relay stopped.
type Exit struct {
	// Expected: the rig stopped it (Stop/Close). Otherwise it exited,
	// was killed or restarted on its own.
	Expected  bool
	Code      int
	OOMKilled bool
	// Restarted: the engine restarted it (restart policy); Restarts counts them.
	Restarted  bool
	Restarts   int
	Error      string // the engine's State.Error
	StartedAt  string
	FinishedAt string
	At         time.Time // when the rig noticed
	Tail       []string  // last log lines
}

func (e *Exit) String() string {
	if e == nil {
		return "running"
	}
	var b strings.Builder
	switch {
	case e.Expected:
		b.WriteString("relay stopped by the rig")
	case e.Restarted:
		fmt.Fprintf(&b, "relay restarted (%d restarts)", e.Restarts)
	default:
		b.WriteString("relay exited unexpectedly")
	}
	fmt.Fprintf(&b, " with code %d", e.Code)
	if e.OOMKilled {
		b.WriteString(", OOM-killed")
	} else if e.Code == 137 {
		b.WriteString(" (SIGKILL)")
	}
	if e.Error != "" {
		fmt.Fprintf(&b, ", engine error %q", e.Error)
	}
	if e.FinishedAt != "" {
		fmt.Fprintf(&b, " at %s", e.FinishedAt)
	}
	fmt.Fprintf(&b, "; last log lines:\n%s", indent(e.Tail))
	return b.String()
}

// Runner runs one relay container on its own Docker network.
type Runner struct {
	cfg     Config
	prof    Profile
	facts   Facts // prof's, read once
	cli     *testcontainers.DockerClient
	net     *testcontainers.DockerNetwork
	gateway netip.Addr
	runID   string

	dataDir, hostsPath, logPath string
	tail                        *tail

	mu           sync.Mutex
	ctr          testcontainers.Container
	ip           netip.Addr
	armed        bool // the relay should be running: an exit is news
	baseRestarts int
	baseStarted  string
	exit         *Exit
	exited       chan struct{}
	logFile      *os.File
	follow       context.CancelFunc
	followDone   chan struct{}
	watchStop    context.CancelFunc
	watchDone    chan struct{}
	stopped      bool
	closed       bool
}

// New prepares a run: the image (built when it is the default and missing),
// the run directory and a Docker network of its own, whose gateway is where
// the fleet must listen before Start.
func New(ctx context.Context, cfg Config) (*Runner, error) {
	disableRyuk()
	if cfg.RunDir == "" {
		return nil, errors.New("relay: Config.RunDir is required")
	}
	if cfg.Profile == nil {
		cfg.Profile = &Indigo{}
	}
	if cfg.Memory <= 0 {
		cfg.Memory = 2 << 30
	}
	if cfg.HealthTimeout <= 0 {
		cfg.HealthTimeout = 60 * time.Second
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 500 * time.Millisecond
	}
	if cfg.TailLines <= 0 {
		cfg.TailLines = 40
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if cfg.CACertFile == "" && strings.HasPrefix(cfg.PLCURL, "https:") {
		return nil, fmt.Errorf("relay: PLC at %s needs Config.CACertFile (the run's CA) for the relay to trust it", cfg.PLCURL)
	}
	if cfg.CACertFile != "" {
		abs, err := filepath.Abs(cfg.CACertFile)
		if err != nil {
			return nil, fmt.Errorf("relay: CA file %s: %w", cfg.CACertFile, err)
		}
		if _, err := os.Stat(abs); err != nil {
			return nil, fmt.Errorf("relay: CA file: %w", err)
		}
		cfg.CACertFile = abs
	}
	runDir, err := filepath.Abs(cfg.RunDir)
	if err != nil {
		return nil, fmt.Errorf("relay: run dir %s: %w", cfg.RunDir, err)
	}
	cfg.RunDir = runDir
	r := &Runner{cfg: cfg, prof: cfg.Profile, facts: cfg.Profile.Facts(), tail: newTail(cfg.TailLines), exited: make(chan struct{}),
		dataDir:   filepath.Join(runDir, DataDirName),
		hostsPath: filepath.Join(runDir, "hosts"),
		logPath:   filepath.Join(runDir, LogFile),
		runID:     cfg.RunID,
	}
	if r.runID == "" {
		r.runID = filepath.Base(runDir)
	}
	if err := os.MkdirAll(r.dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("relay: making data dir: %w", err)
	}
	if r.cfg.Image == "" {
		di, ok := cfg.Profile.(DefaultImager)
		if !ok {
			return nil, fmt.Errorf("relay: Config.Image is required: the %s profile has no default image (name one, e.g. --relay-image myrelay:dev)", r.facts.Name)
		}
		tag, err := di.DefaultImage(ctx, cfg.Log)
		if err != nil {
			return nil, fmt.Errorf("relay: default image of the %s profile: %w", r.facts.Name, err)
		}
		r.cfg.Image = tag
	}
	r.cli, err = dockerClient(ctx)
	if err != nil {
		return nil, err
	}
	// A missing image would make testcontainers try a pull, retried until
	// the context ends; there is no registry, so say so now.
	if _, err := r.cli.ImageInspect(ctx, r.cfg.Image); err != nil {
		r.cli.Close()
		return nil, fmt.Errorf("relay: image %s is not in the local engine (there is no registry to pull from; build it first): %w", r.cfg.Image, err)
	}
	r.net, err = network.New(ctx, network.WithLabels(map[string]string{Label: "true", Label + ".run": r.runID}))
	if err != nil {
		r.cli.Close()
		return nil, fmt.Errorf("relay: creating the run's Docker network: %w", err)
	}
	ni, err := r.cli.NetworkInspect(ctx, r.net.ID, client.NetworkInspectOptions{})
	if err == nil {
		for _, c := range ni.Network.IPAM.Config {
			if c.Gateway.Is4() {
				r.gateway = c.Gateway
				break
			}
		}
	}
	if !r.gateway.IsValid() {
		r.net.Remove(context.WithoutCancel(ctx))
		r.cli.Close()
		return nil, fmt.Errorf("relay: network %s has no IPv4 gateway (inspect error: %v)", r.net.Name, err)
	}
	return r, nil
}

// Gateway is the address of this run's network on the host: the fleet
// listens there (port 80 for ws/http, 443 for https), not on 0.0.0.0.
func (r *Runner) Gateway() netip.Addr { return r.gateway }

// NetworkName of the run's Docker network.
func (r *Runner) NetworkName() string { return r.net.Name }

// Image the relay runs.
func (r *Runner) Image() string { return r.cfg.Image }

// LogPath is the relay's log in the run dir: streamed while it runs,
// rewritten complete after Stop.
func (r *Runner) LogPath() string { return r.logPath }

// HostDataDir is the run directory mounted at Profile.DataDir.
func (r *Runner) HostDataDir() string { return r.dataDir }

// Tail is the last lines the relay printed.
func (r *Runner) Tail() []string { return r.tail.Lines() }

// ContainerID of the relay ("" before Start).
func (r *Runner) ContainerID() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ctr == nil {
		return ""
	}
	return r.ctr.GetContainerID()
}

func (r *Runner) url(scheme string, port int, path string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return fmt.Sprintf("%s://%s%s", scheme, netip.AddrPortFrom(r.ip, uint16(port)), path)
}

// APIURL is http://<container ip>:<api port>.
func (r *Runner) APIURL() string { return r.url("http", r.facts.APIPort, "") }

// FirehoseURL is the relay's subscribeRepos as ws://.
func (r *Runner) FirehoseURL() string { return r.url("ws", r.facts.APIPort, r.facts.FirehosePath) }

// MetricsURL is the relay's Prometheus endpoint.
func (r *Runner) MetricsURL() string {
	return r.url("http", r.facts.MetricsPort, r.facts.MetricsPath)
}

// HealthURL is where readiness is checked.
func (r *Runner) HealthURL() string {
	port := r.facts.HealthPort
	if port == 0 {
		port = r.facts.APIPort
	}
	return r.url("http", port, r.facts.HealthPath)
}

// Profile of the relay.
func (r *Runner) Profile() Profile { return r.prof }

// Exited is closed when the relay exits, is killed or restarts without the
// rig asking (Exit then says how), and at the latest by Stop.
func (r *Runner) Exited() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.exited
}

// Exit is the unexpected exit, or after Stop the final state; nil while the
// relay runs as intended.
func (r *Runner) Exit() *Exit {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.exit
}

// Start writes the hosts file, starts the container, waits for health,
// onboards the hosts and arms the exit watcher.
func (r *Runner) Start(ctx context.Context, opts StartOptions) error {
	r.mu.Lock()
	if r.ctr != nil {
		r.mu.Unlock()
		return errors.New("relay: Start called twice")
	}
	r.mu.Unlock()
	names := append([]string(nil), opts.Names...)
	for _, h := range opts.Hosts {
		names = append(names, h.Name)
	}
	if err := writeHostsFile(r.hostsPath, r.gateway, names); err != nil {
		return err
	}
	wiring := Wiring{PLCURL: r.cfg.PLCURL, UpstreamURL: r.cfg.UpstreamURL}
	binds := []string{r.hostsPath + ":/etc/hosts:ro"}
	if d := r.facts.DataDir; d != "" {
		binds = append(binds, r.dataDir+":"+d)
	}
	if r.cfg.CACertFile != "" {
		binds = append(binds, r.cfg.CACertFile+":"+r.facts.CACertMount+":ro")
		wiring.CACertFile = r.facts.CACertMount
	}
	args, env := r.prof.Command(wiring)
	ports := []string{fmt.Sprintf("%d/tcp", r.facts.APIPort), fmt.Sprintf("%d/tcp", r.facts.MetricsPort)}
	loopback := netip.MustParseAddr("127.0.0.1")
	req := testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			Image:        r.cfg.Image,
			Cmd:          args,
			Env:          env,
			ExposedPorts: ports,
			Labels:       map[string]string{Label: "true", Label + ".run": r.runID, Label + ".profile": r.facts.Name},
			Networks:     []string{r.net.Name},
			ConfigModifier: func(c *container.Config) {
				c.StopSignal = r.facts.StopSignal
				grace := int(r.grace().Seconds())
				c.StopTimeout = &grace
			},
			// Everything host-side is set here: a modifier replaces the
			// default one, and the request's deprecated fields are ignored.
			HostConfigModifier: func(hc *container.HostConfig) {
				hc.NetworkMode = container.NetworkMode(r.net.Name)
				hc.Binds = binds
				hc.Tmpfs = map[string]string{"/tmp": "rw,size=64m"}
				hc.Memory = r.cfg.Memory
				hc.MemorySwap = r.cfg.Memory
				hc.NanoCPUs = r.cfg.NanoCPUs
				// The rig reaches the relay at its container IP; ports are
				// also published, but on loopback only.
				hc.PortBindings = mnetwork.PortMap{}
				for _, p := range ports {
					hc.PortBindings[mnetwork.MustParsePort(p)] = []mnetwork.PortBinding{{HostIP: loopback}}
				}
			},
		},
		Started: true,
	}
	prepared := false
	if p, ok := r.prof.(Preparer); ok {
		var err error
		if prepared, err = p.PrepareData(ctx, r.cfg.Image, r.dataDir, opts.Hosts); err != nil {
			return fmt.Errorf("relay: onboarding %d hosts before the first start of %s: %w", len(opts.Hosts), r.cfg.Image, err)
		}
	}
	fmt.Fprintf(r.cfg.Log, "relaysoak: starting %s (%s) on network %s, fleet at %s, %d hosts\n",
		r.cfg.Image, r.facts.Name, r.net.Name, r.gateway, len(opts.Hosts))
	began := time.Now()
	ctr, err := testcontainers.GenericContainer(ctx, req)
	if ctr != nil {
		r.mu.Lock()
		r.ctr = ctr
		r.mu.Unlock()
	}
	if err != nil {
		return fmt.Errorf("relay: starting container from %s: %w", r.cfg.Image, err)
	}
	if err := r.afterStart(ctx); err != nil {
		return err
	}
	how := "its hosts written before it started"
	if !prepared {
		how = "onboarded by its profile"
		if err := r.prof.Onboard(ctx, controller{r}, opts.Hosts); err != nil {
			return err
		}
	}
	fmt.Fprintf(r.cfg.Log, "relaysoak: %s ready in %.1f s, %s\n", r.cfg.Image, time.Since(began).Seconds(), how)
	r.mu.Lock()
	r.armed = true
	wctx, cancel := context.WithCancel(context.Background())
	r.watchStop, r.watchDone = cancel, make(chan struct{})
	r.mu.Unlock()
	go r.watch(wctx)
	return nil
}

// startAgain starts the stopped container again and waits for health.
// Outside onboarding, use it only after Stop with the watcher disarmed.
func (r *Runner) startAgain(ctx context.Context) error {
	if err := r.ctr.Start(ctx); err != nil {
		return fmt.Errorf("relay: restarting container: %w", err)
	}
	return r.afterStart(ctx)
}

// afterStart learns the new address and start time, follows the log from
// there and waits for health.
func (r *Runner) afterStart(ctx context.Context) error {
	st, err := r.ctr.Inspect(ctx)
	if err != nil {
		return fmt.Errorf("relay: inspecting container after start: %w", err)
	}
	var ip netip.Addr
	if st.NetworkSettings != nil {
		if ep := st.NetworkSettings.Networks[r.net.Name]; ep != nil {
			ip = ep.IPAddress
		}
	}
	if !ip.IsValid() {
		return fmt.Errorf("relay: container has no address on network %s", r.net.Name)
	}
	r.mu.Lock()
	r.ip = ip
	r.baseRestarts = st.RestartCount
	if st.State != nil {
		r.baseStarted = st.State.StartedAt
	}
	since := r.baseStarted
	r.mu.Unlock()
	if err := r.startFollowing(since); err != nil {
		return err
	}
	return r.waitHealthy(ctx)
}

// startFollowing streams the log from since (the container's StartedAt) to
// the log file and the tail.
func (r *Runner) startFollowing(startedAt string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.logFile == nil {
		f, err := os.OpenFile(r.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("relay: opening log file: %w", err)
		}
		r.logFile = f
	}
	var since string
	if t, err := time.Parse(time.RFC3339Nano, startedAt); err == nil {
		since = fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	r.follow, r.followDone = cancel, done
	id, w := r.ctr.GetContainerID(), io.MultiWriter(r.logFile, r.tail)
	go func() {
		defer close(done)
		rc, err := r.cli.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Follow: true, Since: since})
		if err != nil {
			fmt.Fprintf(w, "relaysoak: following the relay's log failed: %v\n", err)
			return
		}
		defer rc.Close()
		_, _ = stdcopy.StdCopy(w, w, rc)
	}()
	return nil
}

// stopFollowing waits briefly for the stream to end on its own (it does
// when the container stops), then cuts it.
func (r *Runner) stopFollowing() {
	r.mu.Lock()
	cancel, done := r.follow, r.followDone
	r.follow, r.followDone = nil, nil
	r.mu.Unlock()
	if cancel == nil {
		return
	}
	select {
	case <-done:
	case <-time.After(2 * time.Second):
	}
	cancel()
	<-done
}

func (r *Runner) waitHealthy(ctx context.Context) error {
	url := r.HealthURL()
	deadline := time.Now().Add(r.cfg.HealthTimeout)
	hc := &http.Client{Timeout: 2 * time.Second}
	var last string
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		req.Header.Set("User-Agent", useragent.For(useragent.Scrape))
		resp, err := hc.Do(req)
		if err == nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		// A relay that died will never answer: say why now.
		if st, err := r.ctr.State(ctx); err == nil && !st.Running && !st.Restarting {
			e := r.exitFrom(ctx, st, 0, false)
			return fmt.Errorf("relay exited before it became healthy at %s: %s", url, e)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("relay never became healthy at %s within %s (last answer: %s); last log lines:\n%s",
				url, r.cfg.HealthTimeout, last, indent(r.logTail(ctx)))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("relay: waiting for health at %s: %w", url, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// logTail asks the engine for the last lines: complete even when the
// follower lags behind.
func (r *Runner) logTail(ctx context.Context) []string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	rc, err := r.cli.ContainerLogs(ctx, r.ctr.GetContainerID(), client.ContainerLogsOptions{
		ShowStdout: true, ShowStderr: true, Tail: strconv.Itoa(r.cfg.TailLines)})
	if err != nil {
		return r.tail.Lines()
	}
	defer rc.Close()
	var b strings.Builder
	_, _ = stdcopy.StdCopy(&b, &b, rc)
	return lastLines(b.String(), r.cfg.TailLines)
}

func (r *Runner) exitFrom(ctx context.Context, st *container.State, restarts int, restarted bool) *Exit {
	return &Exit{Code: st.ExitCode, OOMKilled: st.OOMKilled, Error: st.Error, StartedAt: st.StartedAt,
		FinishedAt: st.FinishedAt, Restarts: restarts, Restarted: restarted, At: time.Now(), Tail: r.logTail(ctx)}
}

// watch polls the engine: an exit, an OOM kill or a restart the rig did not
// ask for ends the run's validity, and is reported with the log tail.
func (r *Runner) watch(ctx context.Context) {
	defer close(r.watchDone)
	t := time.NewTicker(r.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ins, err := r.ctr.Inspect(ctx)
		if err != nil || ins.State == nil {
			continue // the engine hiccuped; the next poll decides
		}
		r.mu.Lock()
		armed, baseRestarts, baseStarted := r.armed, r.baseRestarts, r.baseStarted
		r.mu.Unlock()
		if !armed {
			return
		}
		st := ins.State
		restarted := ins.RestartCount != baseRestarts || st.Restarting || (st.Running && st.StartedAt != baseStarted)
		if st.Running && !restarted {
			continue
		}
		if !st.Running && !restarted {
			// Caught between the stop and the start of a restart? Look again
			// shortly: a restart is reported as one, not as an exit.
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			if again, err := r.ctr.Inspect(ctx); err == nil && again.State != nil && again.State.StartedAt != baseStarted {
				ins, st, restarted = again, again.State, true
			}
		}
		e := r.exitFrom(ctx, st, ins.RestartCount, restarted)
		r.mu.Lock()
		if r.armed && r.exit == nil {
			r.exit = e
			r.armed = false
			close(r.exited)
		}
		r.mu.Unlock()
		fmt.Fprintf(r.cfg.Log, "relaysoak: %s\n", e)
		return
	}
}

// Kill sends a signal (default SIGKILL) to the relay, as a crash would.
func (r *Runner) Kill(ctx context.Context, signal string) error {
	if signal == "" {
		signal = "SIGKILL"
	}
	if _, err := r.cli.ContainerKill(ctx, r.ContainerID(), client.ContainerKillOptions{Signal: signal}); err != nil {
		return fmt.Errorf("relay: sending %s: %w", signal, err)
	}
	return nil
}

// stopContainer stops gracefully with the profile's grace.
func (r *Runner) stopContainer(ctx context.Context) error {
	grace := r.grace()
	if err := r.ctr.Stop(ctx, &grace); err != nil {
		return fmt.Errorf("relay: stopping container (%s, %s grace): %w", r.facts.StopSignal, grace, err)
	}
	r.stopFollowing()
	return nil
}

// controller is the Runner as seen by a Profile during onboarding.
type controller struct{ r *Runner }

func (c controller) HostDataDir() string             { return c.r.dataDir }
func (c controller) Stop(ctx context.Context) error  { return c.r.stopContainer(ctx) }
func (c controller) Start(ctx context.Context) error { return c.r.startAgain(ctx) }

// Stop ends the run gracefully: disarms the watcher, stops the relay (if
// it still runs), rewrites the log file from the engine's complete log (so
// output printed at shutdown is kept) and returns the final state. An
// unexpected exit recorded earlier is returned as it was, with the complete
// log's tail.
func (r *Runner) Stop(ctx context.Context) (*Exit, error) {
	r.mu.Lock()
	if r.stopped || r.ctr == nil {
		e := r.exit
		r.mu.Unlock()
		return e, nil
	}
	r.stopped = true
	r.armed = false
	wstop, wdone := r.watchStop, r.watchDone
	r.mu.Unlock()
	if wstop != nil {
		wstop()
		<-wdone
	}
	var errs []error
	if st, err := r.ctr.State(ctx); err == nil && st.Running {
		if err := r.stopContainer(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	r.stopFollowing()
	full, err := r.completeLog(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	ins, err := r.ctr.Inspect(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.logFile != nil {
		r.logFile.Close()
		r.logFile = nil
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("relay: inspecting after stop: %w", err))
		return r.exit, errors.Join(errs...)
	}
	if r.exit == nil {
		st := ins.State
		r.exit = &Exit{Expected: true, Code: st.ExitCode, OOMKilled: st.OOMKilled, Error: st.Error,
			StartedAt: st.StartedAt, FinishedAt: st.FinishedAt, Restarts: ins.RestartCount, At: time.Now()}
		close(r.exited)
	}
	if full != "" {
		r.exit.Tail = lastLines(full, r.cfg.TailLines)
	}
	return r.exit, errors.Join(errs...)
}

// completeLog reads the whole log from the engine and replaces the
// streamed file with it (the stream can miss lines; the engine keeps all).
func (r *Runner) completeLog(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second)
	defer cancel()
	rc, err := r.ctr.Logs(ctx)
	if err != nil {
		return "", fmt.Errorf("relay: reading the complete log: %w", err)
	}
	defer rc.Close()
	tmp := r.logPath + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return "", fmt.Errorf("relay: writing the complete log: %w", err)
	}
	// Keep the last lines in memory for the report; the whole goes to disk.
	t := newTail(r.cfg.TailLines)
	if _, err := io.Copy(io.MultiWriter(f, t), rc); err != nil && !errors.Is(err, io.EOF) {
		f.Close()
		return "", fmt.Errorf("relay: reading the complete log: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("relay: writing the complete log: %w", err)
	}
	if err := os.Rename(tmp, r.logPath); err != nil {
		return "", fmt.Errorf("relay: replacing the log file: %w", err)
	}
	return strings.Join(t.Lines(), "\n"), nil
}

// Close stops the relay if needed, removes the container and the network.
// Safe to call more than once and after a failed Start; tests call it from
// t.Cleanup so nothing is left behind when they fail.
func (r *Runner) Close(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	ctr := r.ctr
	r.mu.Unlock()
	ctx = context.WithoutCancel(ctx)
	var errs []error
	if ctr != nil {
		if _, err := r.Stop(ctx); err != nil {
			errs = append(errs, err)
		}
		if err := ctr.Terminate(ctx, testcontainers.StopTimeout(r.facts.StopGrace)); err != nil {
			errs = append(errs, fmt.Errorf("relay: removing container: %w", err))
		}
	}
	r.stopFollowing()
	if r.net != nil {
		if err := r.net.Remove(ctx); err != nil {
			errs = append(errs, fmt.Errorf("relay: removing network %s: %w", r.net.Name, err))
		}
	}
	if r.cli != nil {
		r.cli.Close()
	}
	return errors.Join(errs...)
}
