package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/relaysoak/relaysoak/internal/testkit"
	"github.com/relaysoak/relaysoak/relay"
	"github.com/relaysoak/relaysoak/soak/rundir"
)

// The compose file names the default relay by its tag, which must follow
// the version pinned in go.mod (relay-image builds exactly that tag).
func TestComposeDefaultRelayIsThePinnedIndigo(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "docker-compose.yml"))
	require.NoError(t, err)
	var f struct {
		Services map[string]struct {
			Image string `yaml:"image"`
		} `yaml:"services"`
	}
	require.NoError(t, yaml.Unmarshal(b, &f))
	v, err := relay.IndigoVersion(context.Background(), repoRoot)
	require.NoError(t, err)
	assert.Equal(t, "${RELAYSOAK_RELAY_IMAGE:-"+relay.IndigoImageTag(v)+"}", f.Services["relay"].Image)
	for _, s := range []string{"onboard", "relay", "soak"} {
		assert.Contains(t, f.Services, s)
	}
}

// compose itself accepts the file, as make runs it (settings given on make's
// command line reach it as RELAYSOAK_*): every service resolves to a locally
// built image and the settings land where the file says. The full compose
// soak is TestE2EComposeUpRunsASoak.
func TestSmokeComposeFileValidates(t *testing.T) {
	compose := []string{"docker-compose"}
	if _, err := exec.LookPath("docker-compose"); err != nil {
		require.NoError(t, exec.Command("docker", "compose", "version").Run(), "neither docker-compose nor docker compose is installed")
		compose = []string{"docker", "compose"}
	}
	cmd := exec.Command(compose[0], append(compose[1:], "config")...)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "RELAYSOAK_HOSTS=8", "RELAYSOAK_MEM_LIMIT=1g", "RELAYSOAK_RELAY_IMAGE=relaysoak/indigo-relay:smoke")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s config: %s", compose, out)
	var f struct {
		Services map[string]struct {
			Image       string         `yaml:"image"`
			Environment map[string]any `yaml:"environment"`
			MemLimit    any            `yaml:"mem_limit"`
		} `yaml:"services"`
	}
	require.NoError(t, yaml.Unmarshal(out, &f), "compose's resolved file parses: %s", out)
	for _, s := range []string{"onboard", "relay", "soak"} {
		require.Contains(t, f.Services, s)
		assert.NotEmpty(t, f.Services[s].Image, "service %s names a local image (there is no registry)", s)
	}
	assert.Equal(t, "relaysoak/indigo-relay:smoke", f.Services["relay"].Image, "RELAYSOAK_RELAY_IMAGE picks the relay")
	for _, s := range []string{"onboard", "soak"} {
		assert.Equal(t, "8", fmt.Sprint(f.Services[s].Environment["RELAYSOAK_HOSTS"]), "RELAYSOAK_HOSTS reaches %s", s)
	}
	assert.Equal(t, "1g", fmt.Sprint(f.Services["relay"].MemLimit), "RELAYSOAK_MEM_LIMIT limits the relay")
}

// `make compose-up` for real, with Debian's docker-compose (or the plugin):
// the static rig image and the indigo relay come up, the relay dials the
// fleet's hosts through the fleet's DNS, frames are delivered and samples
// written to the bind-mounted runs directory; compose-down removes it all.
func TestE2EComposeUpRunsASoak(t *testing.T) {
	if _, err := exec.LookPath("docker-compose"); err != nil {
		require.NoError(t, exec.Command("docker", "compose", "version").Run(), "neither docker-compose nor docker compose is installed")
	}
	runs := t.TempDir()
	project := "relaysoak-compose-test"
	// Stray shell variables named like make's settings change nothing: the
	// settings reach compose from make's command line only.
	env := append(os.Environ(), "COMPOSE_PROJECT_NAME="+project, "CI=1", "HOSTS=999", "RATE=999", "ID=stray")
	settings := []string{"HOSTS=8", "RATE=20", "DURATION=45s", "SAMPLE_EVERY=5s",
		"ID=compose", "RUNS_DIR=" + runs, "SUBNET=172.30.78.0/24", "FLEET_IP=172.30.78.10", "MEM_LIMIT=1g"}
	make := func(target string, timeout time.Duration) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, "make", append([]string{target}, settings...)...)
		cmd.Dir = repoRoot
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	down := func() {
		out, err := make("compose-down", 2*time.Minute)
		assert.NoError(t, err, "compose-down: %s", out)
	}
	down() // a crashed earlier run's leftovers
	t.Cleanup(down)

	out, err := make("compose-up", 12*time.Minute)
	t.Logf("make compose-up: %v\n%s", err, tail(out, 40))
	// A 45-second soak is too short to judge: INCONCLUSIVE is exit status 3,
	// which make reports as its own failure. Anything else is a failure here.
	if err != nil {
		require.Contains(t, out, "exited with code 3", "the soak must end with a verdict")
	}
	dir := filepath.Join(runs, "compose")
	var v struct {
		Verdict struct {
			Verdict string `json:"verdict"`
		} `json:"verdict"`
		Hosts       int     `json:"hosts"`
		Rate        float64 `json:"rate"`
		Delivery    float64 `json:"delivery"`
		CommitsSent int64   `json:"commits_sent"`
		PLCRequests int64   `json:"plc_requests"`
	}
	b, err := os.ReadFile(filepath.Join(dir, rundir.Verdict))
	require.NoError(t, err, "the controller writes into RUNS_DIR through the bind mount")
	require.NoError(t, json.Unmarshal(b, &v))
	assert.Contains(t, []string{"PASS", "INCONCLUSIVE"}, v.Verdict.Verdict)
	assert.Equal(t, 8, v.Hosts, "HOSTS reaches the controller through make and compose")
	assert.Equal(t, 20.0, v.Rate)
	assert.Greater(t, v.CommitsSent, int64(600), "the fleet wrote at RATE for DURATION (20/s for 45 s)")
	assert.GreaterOrEqual(t, v.Delivery, 0.99, "frames went through the relay")
	assert.Positive(t, v.PLCRequests, "the relay resolved DIDs at the fleet's PLC, found through its DNS")
	samples, err := os.ReadFile(filepath.Join(dir, rundir.Samples))
	require.NoError(t, err)
	assert.GreaterOrEqual(t, strings.Count(string(samples), "\n"), 6, "a sample every 5 s reached disk")

	// compose-down leaves no container, network or volume of the project.
	down()
	testkit.AssertNoneLeft(t, "com.docker.compose.project="+project, testkit.Containers, testkit.Volumes)
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
