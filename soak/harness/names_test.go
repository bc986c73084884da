package harness

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/relaysoak/relaysoak/fakepds"
	"github.com/relaysoak/relaysoak/relay"
)

// A PLC or upstream URL the fleet does not answer to is refused before
// any container starts: the relay would resolve nothing.
func TestCheckNamed(t *testing.T) {
	f, err := fakepds.New(fakepds.Config{Hosts: 1, PLCAliases: []string{"plc.directory"}})
	require.NoError(t, err)
	defer f.Close()
	r := &Harness{fleet: f}
	assert.NoError(t, r.checkNamed("PLC", "https://plc.directory"))
	assert.NoError(t, r.checkNamed("PLC", "https://PLC.test:443"))
	err = r.checkNamed("upstream", "https://bsky.network")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "UpstreamAliases")
	assert.Error(t, r.checkNamed("PLC", "::"))
}

func TestHandshakeErrorsExplain(t *testing.T) {
	var h handshakeErrors
	assert.Empty(t, h.explain())
	h.Write([]byte("http: TLS handshake error from 10.0.0.2:5555: remote error: tls: unknown certificate authority\n"))
	h.Write([]byte("http: something else\n"))
	msg := h.explain()
	assert.Contains(t, msg, "1 failed TLS handshakes")
	assert.Contains(t, msg, "unknown certificate authority")
	assert.Contains(t, msg, "does not trust the run's CA")
}

func TestProfileNeeds(t *testing.T) {
	assert.Equal(t, relay.NetworkNeeds{}, profileFacts(nil).Network, "default indigo: nothing")
	assert.Equal(t, relay.NetworkNeeds{}, profileFacts(&relay.Indigo{}).Network)
	n := profileFacts(relay.Zlay(nil)).Network
	assert.Equal(t, []string{"plc.directory"}, n.PLCNames)
	assert.True(t, n.TLSHosts)
}

func TestOpenFilesFit(t *testing.T) {
	assert.NoError(t, openFilesFit(15000, 1, 20000, 20000), "15,000 hosts fit under this machine's 20,000")
	err := openFilesFit(15000, 2, 20000, 20000) // an A/B soak: two relays dial every host
	require.Error(t, err)
	assert.Contains(t, err.Error(), "15000 hosts need about 31024 open files")
	assert.Contains(t, err.Error(), "at most 9488 hosts")
	assert.Contains(t, err.Error(), "ulimit -Hn")
	assert.NoError(t, checkOpenFiles(10, 1), "a small fleet fits anywhere")
}
