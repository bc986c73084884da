package fakepds

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Go's own resolver, pointed at the fleet's DNS over real UDP, finds every
// fleet name and no other.
func TestDNSAnswersTheFleetsNames(t *testing.T) {
	f, err := New(Config{Hosts: 300, AccountsPerHost: 1})
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	_, err = f.NewDNS(net.ParseIP("::1"))
	assert.ErrorContains(t, err, "not an IPv4 address")
	d, err := f.NewDNS(net.ParseIP("10.1.2.3"))
	require.NoError(t, err)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx, pc) }()

	res := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "udp", pc.LocalAddr().String())
	}}
	lctx, lcancel := context.WithTimeout(ctx, 10*time.Second)
	defer lcancel()
	for _, name := range []string{"pds0001.test", "PDS0300.test", f.PLCName(), f.UpstreamName()} {
		addrs, err := res.LookupHost(lctx, name)
		require.NoError(t, err, name)
		assert.Equal(t, []string{"10.1.2.3"}, addrs, name)
	}
	_, err = res.LookupHost(lctx, "pds0301.test")
	var dnsErr *net.DNSError
	require.ErrorAs(t, err, &dnsErr, "a name the fleet does not have")
	assert.True(t, dnsErr.IsNotFound, "%v", err)

	// Garbage gets no answer and does not stop the server.
	c, err := net.Dial("udp", pc.LocalAddr().String())
	require.NoError(t, err)
	_, err = c.Write([]byte{1, 2, 3})
	require.NoError(t, err)
	c.Close()
	addrs, err := res.LookupHost(lctx, "pds0002.test")
	require.NoError(t, err)
	assert.Equal(t, []string{"10.1.2.3"}, addrs)

	cancel()
	assert.NoError(t, <-done, "Serve returns cleanly when its context ends")
}
