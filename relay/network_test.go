package relay

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestZlayAndRskyProfiles(t *testing.T) {
	w := Wiring{PLCURL: "https://plc.directory", UpstreamURL: "https://relay.test", CACertFile: "/etc/ssl/certs/ca-certificates.crt"}

	z := Zlay(map[string]string{"DATABASE_URL": "postgres://db/zlay"})
	zf := z.Facts()
	assert.Equal(t, 3000, zf.APIPort)
	assert.Equal(t, 3001, zf.MetricsPort)
	assert.Equal(t, 3001, zf.HealthPort, "zlay answers health on its metrics port")
	assert.Contains(t, zf.MemoryMetrics, "relay_smaps_anon_kb")
	assert.Equal(t, 60*time.Second, zf.StopGrace)
	assert.Equal(t, NetworkNeeds{PLCNames: []string{"plc.directory"}, TLSHosts: true}, zf.Network)
	_, env := z.Command(w)
	assert.Equal(t, "relay.test", env["RELAY_UPSTREAM"], "zlay is pointed at the fleet's upstream face")
	assert.Equal(t, "postgres://db/zlay", env["DATABASE_URL"])
	assert.NotContains(t, env, "SSL_CERT_FILE", "Zig ignores it: the CA must work from the fixed path alone")
	assert.Equal(t, "/etc/ssl/certs/ca-certificates.crt", zf.CACertMount)

	r := Rsky(nil)
	rf := r.Facts()
	assert.Equal(t, 9000, rf.APIPort)
	assert.Equal(t, 9100, rf.HealthPort)
	assert.Empty(t, rf.MemoryMetrics, "rsky-relay has no memory gauges")
	_, env = r.Command(w)
	assert.Equal(t, "relay.test", env["RELAY_DISCOVERY_UPSTREAMS"])
	assert.Equal(t, "0.0.0.0:9100", env["RELAY_METRICS_LISTEN"])
	assert.Equal(t, RskyCATrustLimit, rf.Network.CATrustLimit)
}

// zlay's diagnostic build prints a leak report at shutdown: the report
// counts its entries (soak/leaks reads the whole of it); rsky prints none.
func TestLeakPatternIsCounted(t *testing.T) {
	assert.Contains(t, Zlay(nil).Facts().LogPatterns, "error(gpa): memory address")
	assert.Empty(t, Rsky(nil).Facts().LogPatterns)
}

type refuseController struct{}

func (refuseController) HostDataDir() string { return "" }
func (refuseController) Stop(context.Context) error {
	return errors.New("onboarding must fail before touching the relay")
}
func (refuseController) Start(context.Context) error { return nil }

// indigo's slurper dials TLS hosts through its SSRF guard, which refuses
// the private addresses a Docker network has: say so at onboarding rather
// than wait for connections that never come.
func TestIndigoRefusesTLSHosts(t *testing.T) {
	err := (&Indigo{}).Onboard(context.Background(), refuseController{}, []Host{{Name: "pds0001.test", TLS: true}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "SSRF")
	assert.Contains(t, err.Error(), "pds0001.test")
}
