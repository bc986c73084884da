package fakepds

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// plcGet fetches a DID document the way a resolver does, reporting whether
// the connection was reused from the client's pool.
func plcGet(ctx context.Context, n *testNet, did string) (code int, body []byte, reused bool, err error) {
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodGet, "http://plc.test/"+did, nil)
	if err != nil {
		return 0, nil, false, err
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return 0, nil, reused, err
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(resp.Body)
	return resp.StatusCode, body, reused, err
}

// noRetry makes every failure visible: net/http retries idempotent requests
// on a reused connection that dies, which would hide resets and closes.
func noRetry(n *testNet) {
	tr := n.client.Transport.(*http.Transport)
	tr.DisableKeepAlives = true
}

func TestPLCResetsConnections(t *testing.T) {
	n := startNet(t, Config{Hosts: 1, AccountsPerHost: 1, PLC: PLCBehaviour{ResetRate: 1}})
	noRetry(n)
	did := n.fleet.hosts[0].accounts[0].did
	for i := 0; i < 10; i++ {
		_, _, _, err := plcGet(context.Background(), n, did)
		require.Error(t, err)
		assert.True(t, errors.Is(err, syscall.ECONNRESET), "a reset, not a polite close: %v", err)
	}
	st := n.fleet.Stats()
	assert.EqualValues(t, 10, st.PLCResets)
	assert.EqualValues(t, 10, st.PLCRequests)
	assert.Zero(t, st.PLCCloses)

	// Health checks are never faulted.
	code, _, _ := n.get(t, "http://plc.test/_health")
	assert.Equal(t, http.StatusOK, code)
}

func TestPLCClosesConnections(t *testing.T) {
	n := startNet(t, Config{Hosts: 1, AccountsPerHost: 1, PLC: PLCBehaviour{CloseRate: 1}})
	noRetry(n)
	did := n.fleet.hosts[0].accounts[0].did
	for i := 0; i < 10; i++ {
		_, _, _, err := plcGet(context.Background(), n, did)
		require.Error(t, err)
		assert.True(t, errors.Is(err, io.EOF), "a clean close with no answer reads as EOF: %v", err)
	}
	assert.EqualValues(t, 10, n.fleet.Stats().PLCCloses)
	assert.Zero(t, n.fleet.Stats().PLCResets)
}

func TestPLCMixedFaultRates(t *testing.T) {
	n := startNet(t, Config{Hosts: 1, AccountsPerHost: 1,
		PLC: PLCBehaviour{ResetRate: 0.2, CloseRate: 0.2, ErrorRate: 0.25}})
	noRetry(n)
	did := n.fleet.hosts[0].accounts[0].did
	const total = 400
	var failed, served500, ok int
	for i := 0; i < total; i++ {
		code, _, _, err := plcGet(context.Background(), n, did)
		switch {
		case err != nil:
			failed++
		case code == http.StatusInternalServerError:
			served500++
		default:
			require.Equal(t, http.StatusOK, code)
			ok++
		}
	}
	st := n.fleet.Stats()
	assert.EqualValues(t, failed, st.PLCResets+st.PLCCloses, "every failed request is a reset or a close")
	assert.EqualValues(t, served500, st.PLCErrors)
	assert.InDelta(t, 0.4*total, failed, 0.1*total)
	// Errors are drawn among the requests that got through: 0.6 × 0.25.
	assert.InDelta(t, 0.15*total, served500, 0.07*total)
	assert.EqualValues(t, total, st.PLCRequests)
}

func TestPLCKeepAliveOff(t *testing.T) {
	for _, off := range []bool{false, true} {
		n := startNet(t, Config{Hosts: 1, AccountsPerHost: 1, PLC: PLCBehaviour{NoKeepAlive: off}})
		did := n.fleet.hosts[0].accounts[0].did
		reusedN := 0
		for i := 0; i < 10; i++ {
			code, _, reused, err := plcGet(context.Background(), n, did)
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, code)
			if reused {
				reusedN++
			}
		}
		if off {
			assert.Zero(t, reusedN, "keep-alive off: every request needs a new connection")
		} else {
			assert.Equal(t, 9, reusedN, "keep-alive on: the pool reuses one connection")
		}
	}
}

func TestPLCLatencyDistribution(t *testing.T) {
	const base, jitter = 20 * time.Millisecond, 15 * time.Millisecond
	n := startNet(t, Config{Hosts: 1, AccountsPerHost: 1,
		PLC: PLCBehaviour{Latency: base, Jitter: jitter, JitterSigma: 0.5}})
	did := n.fleet.hosts[0].accounts[0].did
	var took []time.Duration
	for i := 0; i < 40; i++ {
		start := time.Now()
		code, _, _, err := plcGet(context.Background(), n, did)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, code)
		took = append(took, time.Since(start))
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	assert.GreaterOrEqual(t, took[0], base, "never faster than the base latency")
	median := took[len(took)/2]
	assert.Greater(t, median, base+jitter/2, "the jitter's median is added")
	assert.Less(t, median, base+3*jitter, "median %s", median)
	assert.Greater(t, took[len(took)-1]-took[0], jitter/2, "latencies spread out: %v", took)
}

func TestPLCSlowBodies(t *testing.T) {
	const slow = 400 * time.Millisecond
	n := startNet(t, Config{Hosts: 1, AccountsPerHost: 1, PLC: PLCBehaviour{SlowRate: 1, SlowFor: slow}})
	did := n.fleet.hosts[0].accounts[0].did
	trace := &httptrace.ClientTrace{}
	var firstByte time.Time
	trace.GotFirstResponseByte = func() { firstByte = time.Now() }
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, "http://plc.test/"+did, nil)
	require.NoError(t, err)
	start := time.Now()
	resp, err := n.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var doc map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&doc), "the trickled body is whole")
	done := time.Now()
	assert.Equal(t, did, doc["id"])
	assert.Less(t, firstByte.Sub(start), slow/2, "headers come at once")
	assert.GreaterOrEqual(t, done.Sub(start), slow*3/4, "the body drips over SlowFor")
	assert.EqualValues(t, 1, n.fleet.Stats().PLCSlow)

	// A client that gives up mid-body costs the server nothing more.
	ctx, cancel := context.WithTimeout(context.Background(), slow/4)
	defer cancel()
	_, _, _, err = plcGet(ctx, n, did)
	var ne net.Error
	require.Error(t, err)
	assert.True(t, errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()), "%v", err)
}

func TestPLCBehaviourValidated(t *testing.T) {
	for _, b := range []PLCBehaviour{{ResetRate: 1.5}, {SlowRate: -0.1}, {ResetRate: 0.6, CloseRate: 0.6}, {Jitter: -time.Second}} {
		_, err := New(Config{Hosts: 1, PLC: b})
		assert.Error(t, err, "%+v", b)
	}
}

func TestPLCAndUpstreamAliases(t *testing.T) {
	n := startNet(t, Config{Hosts: 2, AccountsPerHost: 1,
		PLCAliases: []string{"PLC.directory."}, UpstreamAliases: []string{"bsky.network"}})
	did := n.fleet.hosts[0].accounts[0].did
	for _, u := range []string{"http://plc.test/" + did, "http://plc.directory/" + did} {
		code, body, _ := n.get(t, u)
		require.Equal(t, http.StatusOK, code, "%s: %s", u, body)
	}
	for _, u := range []string{"http://relay.test/xrpc/com.atproto.sync.listHosts", "http://bsky.network/xrpc/com.atproto.sync.listHosts"} {
		code, body, _ := n.get(t, u)
		require.Equal(t, http.StatusOK, code, "%s: %s", u, body)
		var out struct{ Hosts []struct{ Hostname string } }
		require.NoError(t, json.Unmarshal(body, &out))
		assert.Len(t, out.Hosts, 2)
	}
	assert.ElementsMatch(t, []string{"plc.test", "relay.test", "plc.directory", "bsky.network"}, n.fleet.Names())

	_, err := New(Config{Hosts: 1, PLCAliases: []string{"x.test"}, UpstreamAliases: []string{"x.test"}})
	assert.Error(t, err, "one name cannot be both faces")
}

// Over HTTP/2 (what a Go resolver negotiates with the fleet's TLS port) a
// connection cannot be taken over: the request's stream is reset instead.
func TestPLCResetOverHTTP2(t *testing.T) {
	f, err := New(Config{Hosts: 1, AccountsPerHost: 1, PLC: PLCBehaviour{ResetRate: 1}})
	require.NoError(t, err)
	defer f.Close()
	srv := httptest.NewUnstartedServer(f)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	c := srv.Client()
	did := f.hosts[0].accounts[0].did
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/"+did, nil)
	require.NoError(t, err)
	req.Host = "plc.test"
	_, err = c.Do(req)
	require.Error(t, err)
	assert.EqualValues(t, 1, f.Stats().PLCResets)

	// The health check still answers, on the same client.
	req, err = http.NewRequest(http.MethodGet, srv.URL+"/_health", nil)
	require.NoError(t, err)
	req.Host = "plc.test"
	resp, err := c.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 2, resp.ProtoMajor)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}
