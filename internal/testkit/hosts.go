package testkit

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// DialerAt is a websocket dialer that connects to addr whatever host the
// URL names, so virtual hosts need no DNS.
func DialerAt(addr string) *websocket.Dialer {
	return &websocket.Dialer{NetDialContext: dialAt(addr)}
}

// ClientAt is an HTTP client that connects to addr whatever host the URL
// names, as DialerAt does for websockets.
func ClientAt(addr string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: dialAt(addr)}}
}

func dialAt(addr string) func(ctx context.Context, network, _ string) (net.Conn, error) {
	return func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
}

// VirtualHosts is a handler served on loopback for one test, with clients
// that reach it whatever host a URL names, the way a hosts file does for a
// relay in a container.
type VirtualHosts struct {
	Addr   string
	Client *http.Client      // 10 s timeout
	Dialer *websocket.Dialer // 5 s handshake timeout
}

// ServeVirtualHosts serves h until the test ends.
func ServeVirtualHosts(t testing.TB, h http.Handler) *VirtualHosts {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()
	vh := &VirtualHosts{Addr: addr, Client: ClientAt(addr), Dialer: DialerAt(addr)}
	vh.Client.Timeout = 10 * time.Second
	vh.Dialer.HandshakeTimeout = 5 * time.Second
	return vh
}

// FreeAddr is a loopback address that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
