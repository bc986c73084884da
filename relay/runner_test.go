package relay

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/relaysoak/relaysoak/fakepds/pki"
	"github.com/relaysoak/relaysoak/internal/promtext"
	"github.com/relaysoak/relaysoak/internal/testkit"
)

// defaultImage builds the indigo image once (kept between runs).
func defaultImage(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	tag, _, err := EnsureIndigoImage(ctx, ImageConfig{Log: testkit.LogWriter{T: t}})
	require.NoError(t, err)
	return tag
}

// newRunner makes a Runner for a test, with a CA in the run dir, and
// removes everything it made when the test ends — pass or fail — then
// checks that no container of the run is left.
func newRunner(t *testing.T, cfg Config) *Runner {
	t.Helper()
	testkit.RequireDocker(t)
	if cfg.Image == "" {
		cfg.Image = defaultImage(t)
	}
	if cfg.RunDir == "" {
		cfg.RunDir = t.TempDir()
	}
	if cfg.CACertFile == "" {
		ca, err := pki.New(pki.Config{Dir: cfg.RunDir})
		require.NoError(t, err)
		cfg.CACertFile = ca.CertPath()
	}
	if cfg.Log == nil {
		cfg.Log = testkit.LogWriter{T: t}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := New(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		assert.NoError(t, r.Close(context.Background()))
		assertNoContainersLeft(t, r.runID)
	})
	return r
}

func assertNoContainersLeft(t *testing.T, runID string) {
	t.Helper()
	testkit.AssertNoneLeft(t, Label+".run="+runID, testkit.Containers)
}

func TestE2EIndigoImageIsReused(t *testing.T) {
	testkit.RequireDocker(t)
	tag := defaultImage(t)
	version, err := IndigoVersion(context.Background(), "")
	require.NoError(t, err)
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", IndigoModule).Output()
	require.NoError(t, err)
	assert.Equal(t, strings.TrimSpace(string(out)), version, "the image follows the version pinned in go.mod")
	assert.Equal(t, IndigoImageRepo+":"+version, tag)

	start := time.Now()
	tag2, built, err := EnsureIndigoImage(context.Background(), ImageConfig{})
	require.NoError(t, err)
	assert.False(t, built, "an existing tag is reused, not rebuilt")
	assert.Equal(t, tag, tag2)
	assert.Less(t, time.Since(start), 10*time.Second)
}

func TestE2EMissingImageFailsFast(t *testing.T) {
	testkit.RequireDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := New(ctx, Config{RunDir: t.TempDir(), Image: "relaysoak/no-such-image:v0", PLCURL: "http://plc.test"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not in the local engine")
}

func TestE2EBareRelayRunsAndStopsCleanly(t *testing.T) {
	r := newRunner(t, Config{Memory: 256 << 20})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	require.NoError(t, r.Start(ctx, StartOptions{Names: []string{"plc.test", "relay.test"}}))
	assert.True(t, r.Gateway().IsPrivate(), "the fleet listens on a private gateway address, got %s", r.Gateway())

	hosts, err := os.ReadFile(filepath.Join(r.cfg.RunDir, "hosts"))
	require.NoError(t, err)
	assert.Contains(t, string(hosts), r.Gateway().String()+"\tplc.test")

	m, err := promtext.Scrape(ctx, r.MetricsURL())
	require.NoError(t, err)
	rss, ok := m.Sum("process_resident_memory_bytes", nil)
	assert.True(t, ok)
	assert.Greater(t, rss, 1e6)

	// The firehose accepts a subscriber.
	conn, _, err := websocket.DefaultDialer.DialContext(ctx, r.FirehoseURL(), nil)
	require.NoError(t, err, "subscribing to %s", r.FirehoseURL())
	conn.Close()

	select {
	case <-r.Exited():
		t.Fatalf("relay exited: %s", r.Exit())
	default:
	}
	e, err := r.Stop(ctx)
	require.NoError(t, err)
	require.NotNil(t, e)
	assert.True(t, e.Expected)
	assert.Equal(t, 0, e.Code, "SIGTERM: the relay flushes and exits 0")
	assert.False(t, e.OOMKilled)
	log, err := os.ReadFile(r.LogPath())
	require.NoError(t, err)
	assert.Contains(t, string(log), `"msg":"shutdown complete"`, "the log file holds what the relay printed at shutdown")
	assert.NotEmpty(t, e.Tail)
	t.Logf("final log tail:\n%s", indent(e.Tail))
}

func TestE2EHealthTimeoutIsClear(t *testing.T) {
	// A profile whose health path never answers 200.
	r := newRunner(t, Config{Profile: &badHealth{Indigo{}}, HealthTimeout: 3 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := r.Start(ctx, StartOptions{})
	require.Error(t, err)
	assert.Regexp(t, `relay never became healthy at http://[0-9.]+:2470/no-such-health within 3s`, err.Error())
	assert.Contains(t, err.Error(), "last log lines:")
}

type badHealth struct{ Indigo }

func (b *badHealth) Facts() Facts {
	f := b.Indigo.Facts()
	f.HealthPath = "/no-such-health"
	return f
}

func TestE2EKilledRelayIsReported(t *testing.T) {
	r := newRunner(t, Config{Memory: 256 << 20, PollInterval: 100 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	require.NoError(t, r.Start(ctx, StartOptions{Names: []string{"plc.test"}}))
	require.Nil(t, r.Exit())

	require.NoError(t, r.Kill(ctx, "SIGKILL"))
	select {
	case <-r.Exited():
	case <-time.After(30 * time.Second):
		t.Fatal("the watcher did not notice the kill")
	}
	e := r.Exit()
	require.NotNil(t, e)
	assert.False(t, e.Expected)
	assert.Equal(t, 137, e.Code)
	assert.False(t, e.OOMKilled, "a SIGKILL is not an OOM")
	assert.NotEmpty(t, e.Tail)
	assert.Contains(t, e.String(), "exited unexpectedly with code 137 (SIGKILL)")

	// Stop after a crash keeps the crash, not a clean stop.
	e2, err := r.Stop(ctx)
	require.NoError(t, err)
	assert.Same(t, e, e2)
	assert.Equal(t, 137, e2.Code)
}

func TestE2ERestartIsReported(t *testing.T) {
	r := newRunner(t, Config{Memory: 256 << 20, PollInterval: 100 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	require.NoError(t, r.Start(ctx, StartOptions{}))
	// What a restart policy or an operator would do behind the rig's back.
	_, err := r.cli.ContainerRestart(ctx, r.ContainerID(), client.ContainerRestartOptions{})
	require.NoError(t, err)
	select {
	case <-r.Exited():
	case <-time.After(30 * time.Second):
		t.Fatal("the watcher did not notice the restart")
	}
	e := r.Exit()
	require.NotNil(t, e)
	assert.False(t, e.Expected)
	assert.True(t, e.Restarted, "%s", e)
	assert.Contains(t, e.String(), "relay restarted")
}
