package harnesstest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/relaysoak/relaysoak/internal/testkit"
	"github.com/relaysoak/relaysoak/relay"
	"github.com/relaysoak/relaysoak/soak/harness"
)

// Processes starts each arm's rig around a relay it runs as a process on
// this machine (a soak.Starter): the relay's real firehose, metrics and
// /proc, in seconds rather than a container's start. It keeps the relays
// so a test can kill one.
type Processes struct {
	t testing.TB
	// binary is the executable for an arm's image (Config.Relay.Image):
	// the same for every arm, or one per image (a bisect's builds).
	binary func(image string) (string, error)
	mu     sync.Mutex
	relays []*ProcessRelay
}

// NewProcesses runs binary(image) for each arm. The relay is configured
// by its profile's environment (Profile.Command) and told its addresses
// and the fleet's as the test relay reads them (API_LISTEN,
// METRICS_LISTEN, FLEET_ADDR, FLEET_TLS_ADDR).
func NewProcesses(t testing.TB, binary func(image string) (string, error)) *Processes {
	return &Processes{t: t, binary: binary}
}

// Start launches the arm's relay once its fleet listens.
func (h *Processes) Start(ctx context.Context, cfg harness.Config) (*harness.Harness, error) {
	bin, err := h.binary(cfg.Relay.Image)
	if err != nil {
		return nil, fmt.Errorf("the relay binary for %q: %w", cfg.Relay.Image, err)
	}
	// Its addresses stay the same across a restart: its consumers know them.
	p := &ProcessRelay{bin: bin, prof: cfg.Relay.Profile, exited: make(chan struct{}), api: testkit.FreeAddr(h.t), met: testkit.FreeAddr(h.t)}
	cfg.Attach = p
	if cfg.Share == nil {
		cfg.FleetAddr, cfg.FleetTLSAddr = "127.0.0.1:0", "127.0.0.1:0"
	}
	cfg.ConnectWithin = 20 * time.Second
	h.mu.Lock()
	h.relays = append(h.relays, p)
	h.mu.Unlock()
	return harness.Start(ctx, cfg)
}

// Relay is the i-th relay launched (A is 0, B is 1).
func (h *Processes) Relay(i int) *ProcessRelay {
	h.mu.Lock()
	defer h.mu.Unlock()
	require.Greater(h.t, len(h.relays), i, "relay %d was launched", i)
	return h.relays[i]
}

// ProcessRelay is a relay run as a process on this machine: a
// harness.Launcher, with its /proc for the probes.
type ProcessRelay struct {
	bin  string
	prof relay.Profile

	api, met string // loopback addresses of its firehose and metrics

	mu       sync.Mutex
	w        harness.LaunchWiring
	cmd      *exec.Cmd
	done     chan struct{} // closed when cmd has been waited for
	exited   chan struct{}
	exit     *relay.Exit
	stopping bool
}

func (p *ProcessRelay) Image() string { return "relay process " + p.bin }
func (p *ProcessRelay) FirehoseURL() string {
	return "ws://" + p.api + "/xrpc/com.atproto.sync.subscribeRepos"
}
func (p *ProcessRelay) MetricsURL() string      { return "http://" + p.met + "/metrics" }
func (p *ProcessRelay) MemoryMetrics() []string { return p.prof.Facts().MemoryMetrics }
func (p *ProcessRelay) LogPath() string         { return filepath.Join(p.w.RunDir, relay.LogFile) }
func (p *ProcessRelay) Exited() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exited
}
func (p *ProcessRelay) Exit() *relay.Exit {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exit
}

func (p *ProcessRelay) PID(context.Context) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.exit != nil || p.stopping {
		return 0
	}
	return p.cmd.Process.Pid
}

func (p *ProcessRelay) Launch(ctx context.Context, w harness.LaunchWiring) error {
	p.mu.Lock()
	p.w = w
	p.mu.Unlock()
	return p.start(ctx)
}

// start runs the process on its loopback addresses and waits for health.
func (p *ProcessRelay) start(ctx context.Context) error {
	_, env := p.prof.Command(p.w.Wiring)
	env["API_LISTEN"], env["METRICS_LISTEN"] = p.api, p.met
	env["FLEET_ADDR"], env["FLEET_TLS_ADDR"] = p.w.FleetAddr, p.w.FleetTLSAddr
	log, err := os.OpenFile(p.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.bin)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return err
	}
	done := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	exited := p.exited
	p.mu.Unlock()
	go func() {
		err := cmd.Wait()
		log.Close()
		p.mu.Lock()
		if !p.stopping && p.exit == nil && p.cmd == cmd {
			p.exit = &relay.Exit{Code: exitCode(cmd, err), At: time.Now()}
			close(exited)
		}
		p.mu.Unlock()
		close(done)
	}()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get("http://" + p.api + "/xrpc/_health"); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-done:
			return fmt.Errorf("the relay %s exited before it became healthy (see %s)", p.bin, p.LogPath())
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("the relay %s never became healthy at %s", p.bin, p.api)
		}
	}
}

// exitCode is the process's exit status, 128+signal for a signal (as a
// container's).
func exitCode(cmd *exec.Cmd, err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	return cmd.ProcessState.ExitCode()
}

// Kill SIGKILLs the relay, as a crash would.
func (p *ProcessRelay) Kill() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.Process.Kill()
}

func (p *ProcessRelay) Restart(ctx context.Context) error {
	p.mu.Lock()
	if p.exit == nil || p.stopping {
		p.mu.Unlock()
		return errors.New("restart is for a relay that died")
	}
	p.exit, p.exited = nil, make(chan struct{})
	p.mu.Unlock()
	return p.start(ctx)
}

// Stop sends SIGTERM and waits (SIGKILL after 5 s); safe to call again.
func (p *ProcessRelay) Stop(context.Context) (*relay.Exit, error) {
	p.mu.Lock()
	if p.cmd == nil || p.stopping {
		e := p.exit
		p.mu.Unlock()
		return e, nil
	}
	p.stopping = true
	cmd, done, died := p.cmd, p.done, p.exit
	p.mu.Unlock()
	if died != nil {
		return died, nil
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		<-done
	}
	e := &relay.Exit{Expected: true, Code: cmd.ProcessState.ExitCode(), At: time.Now()}
	p.mu.Lock()
	p.exit = e
	close(p.exited)
	p.mu.Unlock()
	return e, nil
}
