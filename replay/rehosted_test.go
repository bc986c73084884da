package replay

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/repo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/relaysoak/relaysoak/captures"
	"github.com/relaysoak/relaysoak/fakepds"
)

func TestProfileFromSharedCapture(t *testing.T) {
	p, err := ProfileFromCapture(sharedCapture(t), ShapeConfig{})
	require.NoError(t, err)
	t.Logf("from capture: %v; defaulted: %v", p.FromCapture, p.Defaulted)
	assert.Equal(t, int64(150), p.Frames)
	assert.Equal(t, int64(148), p.Commits)
	require.NotEmpty(t, p.Shape.Collections)
	assert.Equal(t, "app.bsky.feed.like", p.Shape.Collections[0].Name, "likes dominate")
	var creates float64
	for _, c := range p.Shape.Collections {
		creates += c.Weight
	}
	assert.Equal(t, 144.0, creates, "the manifest's 144 creates")
	assert.Equal(t, []float64{141, 0, 1}, p.Shape.OpsPerCommit, "141 commits of one create, one of three")
	assert.InDelta(t, 2.0/148, p.Shape.Update, 1e-9)
	assert.InDelta(t, 4.0/148, p.Shape.Delete, 1e-9)
	assert.NotEmpty(t, p.Shape.PostBytes)
	// 1 #identity, 1 #account and no #sync in 150 frames say little: defaults.
	assert.Equal(t, DefaultChurn.Identity, p.Churn.Identity)
	assert.Equal(t, DefaultChurn.Status, p.Churn.Status)
	assert.Equal(t, DefaultChurn.Sync, p.Churn.Sync)
	assert.Len(t, p.Defaulted, 3)
}

// Re-hosted mode with the capture's shape: fresh commits, validly signed,
// in the capture's collections, on the hosts the weights choose.
func TestRehostedFollowsShapeAndWeights(t *testing.T) {
	p, err := ProfileFromCapture(sharedCapture(t), ShapeConfig{})
	require.NoError(t, err)
	p.Churn = Churn{}
	n := startNet(t, fakepds.Config{Hosts: 10, AccountsPerHost: 2, Shape: &p.Shape})
	c := n.collectAll(t)
	r, err := New(n.fleet, Config{Rate: 400, Duration: 2 * time.Second, Weights: Weights{Kind: "zipf", S: 1.5}, Churn: &p.Churn})
	require.NoError(t, err)
	rep, err := r.Run(context.Background())
	require.NoError(t, err)
	assert.InDelta(t, 800, rep.Frames, 20)
	require.Eventually(t, func() bool { return len(c.all()) == int(rep.Frames) }, 5*time.Second, 10*time.Millisecond)
	inShape := map[string]bool{"app.bsky.actor.profile": true}
	for _, w := range p.Shape.Collections {
		inShape[w.Name] = true
	}
	perHost := map[string]int{}
	dir := n.fleet.Directory()
	commits := 0
	for _, g := range c.all() {
		cm := decodeCommit(t, g.frame)
		if cm == nil {
			continue
		}
		commits++
		perHost[g.host]++
		for _, op := range cm.Ops {
			assert.True(t, inShape[captures.Op{Path: op.Path}.Collection()] || op.Action == "delete", "collection of %s", op.Path)
		}
		if commits%10 == 0 {
			_, err := repo.VerifyCommitMessage(context.Background(), cm)
			require.NoError(t, err)
			require.NoError(t, repo.VerifyCommitSignature(context.Background(), dir, cm))
		}
	}
	names := n.fleet.HostNames()
	t.Logf("commits per host: %v", perHost)
	// Zipf 1.5 over 10 hosts: host 1 carries ~48%, host 10 ~1.5%.
	assert.Greater(t, perHost[names[0]], perHost[names[9]]*5)
	assert.InDelta(t, 0.48, float64(perHost[names[0]])/float64(commits), 0.08)
}

func TestOutageDropsAndRefusesSubscribers(t *testing.T) {
	n := startNet(t, fakepds.Config{Hosts: 2, AccountsPerHost: 1})
	h := n.fleet.HostNames()[0]
	conn, _, err := n.dialer.Dial("ws://"+h+"/xrpc/com.atproto.sync.subscribeRepos", nil)
	require.NoError(t, err)
	defer conn.Close()
	require.Eventually(t, func() bool { return n.fleet.Stats().Connections == 1 }, 2*time.Second, 5*time.Millisecond)
	require.NoError(t, n.fleet.Outage(0, 700*time.Millisecond))
	assert.True(t, n.fleet.HostDown(0))
	assert.False(t, n.fleet.HostDown(1))
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, _, err = conn.ReadMessage()
	require.Error(t, err, "the subscriber is dropped")
	_, resp, err := n.dialer.Dial("ws://"+h+"/xrpc/com.atproto.sync.subscribeRepos", nil)
	require.Error(t, err)
	require.NotNil(t, resp)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.Eventually(t, func() bool { return !n.fleet.HostDown(0) }, 2*time.Second, 10*time.Millisecond)
	conn2, _, err := n.dialer.Dial("ws://"+h+"/xrpc/com.atproto.sync.subscribeRepos", nil)
	require.NoError(t, err, "back after the outage")
	conn2.Close()
	assert.Zero(t, n.fleet.Stats().SlowConsumersCut, "an outage is not a slow-consumer cut")
}

func TestOutagesAreInjectedAndLongOnesReportedAbandoned(t *testing.T) {
	n := startNet(t, fakepds.Config{Hosts: 20, AccountsPerHost: 1})
	r, err := New(n.fleet, Config{Rate: 100, Duration: 1500 * time.Millisecond, Weights: Weights{Kind: "uniform"}, Churn: NoChurn,
		Outages: Outages{Every: 100 * time.Millisecond, Length: 400 * time.Millisecond, GiveUp: 300 * time.Millisecond}})
	require.NoError(t, err)
	rep, err := r.Run(context.Background())
	require.NoError(t, err)
	t.Logf("outages %d abandoned %v frames %d", rep.Outages, rep.Abandoned, rep.Frames)
	assert.Greater(t, rep.Outages, 3)
	assert.Len(t, rep.Abandoned, rep.Outages, "every outage outlasted the give-up time")
	assert.InDelta(t, 150, rep.Frames, 10, "the schedule's total holds while hosts are down")
}
