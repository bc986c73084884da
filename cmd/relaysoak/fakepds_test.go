package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/repo"
	"github.com/bluesky-social/indigo/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/relaysoak/relaysoak/internal/testkit"
)

// buildBinary builds relaysoak once per test binary.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "relaysoak")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

// What a new user does: run `relaysoak fakepds`, read where it listens, and
// watch valid frames from pds0001.test with a websocket client.
func TestFakePDSCommandServesValidFrames(t *testing.T) {
	bin := buildBinary(t)
	cmd := exec.Command(bin, "fakepds", "--hosts", "3", "--listen", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "RELAYSOAK_RATE=50") // flags are environment variables too
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	defer func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }()

	lines := bufio.NewScanner(stdout)
	require.True(t, lines.Scan(), "no output; stderr: %s", stderr.String())
	first := lines.Text()
	require.Contains(t, first, "listening on ")
	addr := strings.Fields(strings.SplitN(first, "listening on ", 2)[1])[0]
	var banner []string
	for i := 0; i < 5 && lines.Scan(); i++ {
		banner = append(banner, lines.Text())
	}
	assert.Contains(t, strings.Join(banner, "\n"), "pds0001.test")
	assert.Contains(t, strings.Join(banner, "\n"), "plc.test")
	go func() {
		for lines.Scan() {
		}
	}()

	conn, _, err := testkit.DialerAt(addr).Dial("ws://pds0001.test/xrpc/com.atproto.sync.subscribeRepos", nil)
	require.NoError(t, err)
	defer conn.Close()
	commits := 0
	deadline := time.Now().Add(20 * time.Second)
	for commits < 3 && time.Now().Before(deadline) {
		conn.SetReadDeadline(deadline)
		_, b, err := conn.ReadMessage()
		require.NoError(t, err)
		r := bytes.NewReader(b)
		var hdr events.EventHeader
		require.NoError(t, hdr.UnmarshalCBOR(r))
		if hdr.MsgType != "#commit" {
			continue
		}
		var c comatproto.SyncSubscribeRepos_Commit
		require.NoError(t, c.UnmarshalCBOR(r))
		_, err = repo.VerifyCommitMessage(context.Background(), &c)
		require.NoError(t, err)
		commits++
	}
	assert.Equal(t, 3, commits, "three verified commits from pds0001.test within 20s")
}

func TestFakePDSCommandRejectsBadFlags(t *testing.T) {
	bin := buildBinary(t)
	out, err := exec.Command(bin, "fakepds", "--hosts", "many").CombinedOutput()
	require.Error(t, err)
	assert.Equal(t, exitUsage, cmdExit(err))
	assert.Contains(t, string(out), `--hosts (RELAYSOAK_HOSTS): "many" is not a whole number`)
	cmd := exec.Command(bin, "fakepds")
	cmd.Env = append(os.Environ(), "RELAYSOAK_HOSTS=lots")
	out, err = cmd.CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), "RELAYSOAK_HOSTS")
}

func TestSoakCommandRejectsBadProfileAndSizes(t *testing.T) {
	bin := buildBinary(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"soak", "--relay-profile", "nonesuch"}, "is not a profile"},
		{[]string{"soak", "--relay-profile", "zlay"}, "needs --relay-image"},
		{[]string{"soak", "--mem-limit", "lots"}, "is not a size"},
		{[]string{"soak", "--target-url", "ws://x"}, "needs --target-metrics"},
	} {
		out, err := exec.Command(bin, c.args...).CombinedOutput()
		require.Error(t, err, "%v", c.args)
		assert.Equal(t, 2, cmdExit(err), "%v: bad flags exit 2", c.args)
		assert.Contains(t, string(out), c.want, "%v", c.args)
	}
}

func cmdExit(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}
