package pki

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// serve starts an https server on loopback with the CA's TLS config and
// returns its address.
func serve(t *testing.T, ca *CA) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{
		TLSConfig: ca.TLSConfig(),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "hello %s", r.Host)
		}),
	}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// client trusts only pool and dials addr whatever the URL's host says, as the
// relay does through its hosts file.
func client(pool *x509.CertPool, addr string) *http.Client {
	d := &net.Dialer{}
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
	}}
}

func TestClientTrustingCAConnectsByName(t *testing.T) {
	dir := t.TempDir()
	ca, err := New(Config{Dir: dir, CacheSize: 2})
	require.NoError(t, err)
	assert.FileExists(t, filepath.Join(dir, CertFile))
	fi, err := os.Stat(filepath.Join(dir, KeyFile))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "the CA key must not be world-readable")

	// The client loads the CA the way a relay does: from the PEM file.
	pem, err := os.ReadFile(ca.CertPath())
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(pem))

	addr := serve(t, ca)
	c := client(pool, addr)
	for _, name := range []string{"plc.test", "pds0001.test", "plc.directory", "plc.test"} {
		resp, err := c.Get("https://" + name + "/")
		require.NoError(t, err, name)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, "hello "+name, string(body))
		require.NotNil(t, resp.TLS)
		assert.Equal(t, []string{name}, resp.TLS.PeerCertificates[0].DNSNames)
	}
	assert.Equal(t, uint64(3), ca.Minted(), "plc.test is minted once and then served from the cache")
	assert.Equal(t, 2, ca.Cached(), "the cache is bounded")
}

func TestUnknownCAFails(t *testing.T) {
	ca, err := New(Config{Dir: t.TempDir()})
	require.NoError(t, err)
	other, err := New(Config{Dir: t.TempDir()})
	require.NoError(t, err)
	addr := serve(t, ca)

	_, err = client(other.Pool(), addr).Get("https://plc.test/")
	require.Error(t, err)
	var uae x509.UnknownAuthorityError
	assert.ErrorAs(t, err, &uae)

	// And the system roots do not know it either.
	_, err = client(nil, addr).Get("https://plc.test/")
	assert.Error(t, err)
}

func TestNeedsDir(t *testing.T) {
	_, err := New(Config{})
	assert.Error(t, err)
}

func TestOpenReusesTheCA(t *testing.T) {
	dir := t.TempDir()
	a, err := Open(Config{Dir: dir})
	require.NoError(t, err)
	b, err := Open(Config{Dir: dir})
	require.NoError(t, err)
	assert.True(t, a.Certificate().Equal(b.Certificate()), "the second Open loads the first CA")
	leaf, err := b.Leaf("plc.test")
	require.NoError(t, err)
	x, err := x509.ParseCertificate(leaf.Certificate[0])
	require.NoError(t, err)
	_, err = x.Verify(x509.VerifyOptions{DNSName: "plc.test", Roots: a.Pool()})
	assert.NoError(t, err, "leaves minted by the reopened CA verify against the original")
	require.NoError(t, os.WriteFile(filepath.Join(dir, KeyFile), []byte("junk"), 0o600))
	_, err = Open(Config{Dir: dir})
	assert.ErrorContains(t, err, "not PEM")
}
