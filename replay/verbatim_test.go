package replay

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/repo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/relaysoak/relaysoak/captures"
	"github.com/relaysoak/relaysoak/fakepds"
)

// The seq rewrite touches the seq's bytes and nothing else, on every real
// frame of the shared capture.
func TestSeqRewriteLeavesOtherBytesIdentical(t *testing.T) {
	recs := captureFrames(t, sharedCapture(t))
	require.Len(t, recs, 150)
	newSeq := time.Now().UnixMicro() // the fleet's seqs: above 2^32
	for i, rec := range recs {
		fi, err := captures.ParseFrame(rec.Frame)
		require.NoError(t, err)
		slot, err := fakepds.LocateSeq(rec.Frame)
		require.NoError(t, err, "frame %d", i)
		assert.Equal(t, fi.Seq, slot.Seq, "frame %d", i)
		assert.Equal(t, fi.DID, slot.DID, "frame %d", i)
		assert.Equal(t, fi.Kind, slot.Kind, "frame %d", i)
		assert.Equal(t, 9, slot.Len, "a relay's seq above 2^32 takes 9 bytes")

		out := fakepds.RewriteSeq(rec.Frame, slot, newSeq)
		require.Len(t, out, len(rec.Frame), "same width: rewritten in place")
		for j := range out {
			if j <= slot.Off || j >= slot.Off+slot.Len {
				require.Equal(t, rec.Frame[j], out[j], "frame %d byte %d outside the seq changed", i, j)
			}
		}
		fo, err := captures.ParseFrame(out)
		require.NoError(t, err)
		assert.Equal(t, newSeq, fo.Seq)
		assert.Equal(t, fi.DID, fo.DID)

		// A narrower seq is spliced: the bytes before and after are the frame's.
		small := fakepds.RewriteSeq(rec.Frame, slot, 7)
		require.Len(t, small, len(rec.Frame)-8)
		assert.Equal(t, rec.Frame[:slot.Off], small[:slot.Off])
		assert.Equal(t, rec.Frame[slot.Off+slot.Len:], small[slot.Off+1:])
		fs, err := captures.ParseFrame(small)
		require.NoError(t, err)
		assert.Equal(t, int64(7), fs.Seq)
	}
	_, err := fakepds.LocateSeq([]byte{0xa1, 0x62, 'o', 'p'})
	assert.Error(t, err, "a cut-off frame is an error, not a panic")
}

// Verbatim mode through the fleet: every frame comes out once, byte for
// byte but its seq, each account's from one host; the imported documents
// point at that host and the real keys verify every commit.
func TestVerbatimThroughFleet(t *testing.T) {
	capPath := sharedCapture(t)
	orig := captureFrames(t, capPath)
	n := startNet(t, fakepds.Config{Hosts: 30, AccountsPerHost: 1})
	c := n.collectAll(t)
	r, err := New(n.fleet, Config{Mode: Verbatim, Capture: capPath, Rate: 1000})
	require.NoError(t, err)
	rep, err := r.Run(context.Background())
	require.NoError(t, err)
	t.Logf("report: frames %d kinds %v imported %d made-up %d (%d frames) lateness %+v", rep.Frames, rep.ByKind, rep.Imported, rep.MadeUp, rep.MadeUpFrames, rep.Lateness)
	assert.True(t, rep.CaptureEnded)
	assert.Equal(t, int64(150), rep.Frames)
	assert.Equal(t, map[string]int64{"#commit": 148, "#identity": 1, "#account": 1}, rep.ByKind)
	assert.Equal(t, 149, rep.Imported, "148 documented accounts and one without a document")
	assert.Equal(t, 1, rep.MadeUp)
	assert.Equal(t, int64(2), rep.MadeUpFrames, "the #identity and #account of the undocumented account")
	assert.Zero(t, rep.MadeUpCommits)
	assert.Zero(t, rep.Errors, "%v", rep.FirstErrors)
	s := n.fleet.Stats()
	assert.Equal(t, uint64(148), s.Commits)
	assert.Equal(t, uint64(1), s.Identity)
	assert.Equal(t, uint64(1), s.Account)

	require.Eventually(t, func() bool { return len(c.all()) == 150 }, 5*time.Second, 10*time.Millisecond)
	byOrigSeq := map[int64][]byte{}
	for _, o := range orig {
		slot, err := fakepds.LocateSeq(o.Frame)
		require.NoError(t, err)
		byOrigSeq[slot.Seq] = o.Frame
	}
	hostOfDID := map[string]string{}
	lastSeq := map[string]int64{}
	dir := n.fleet.Directory()
	matched := 0
	for _, g := range c.all() {
		slot, err := fakepds.LocateSeq(g.frame)
		require.NoError(t, err)
		assert.Greater(t, slot.Seq, lastSeq[g.host], "seqs rise per host")
		lastSeq[g.host] = slot.Seq
		if h, ok := hostOfDID[slot.DID]; ok {
			assert.Equal(t, h, g.host, "%s's frames come from one host", slot.DID)
		}
		hostOfDID[slot.DID] = g.host
		assert.Equal(t, g.host, n.fleet.HostOfDID(slot.DID))
		// Find the original: the same bytes but the seq.
		for oseq, o := range byOrigSeq {
			os, _ := fakepds.LocateSeq(o)
			if bytes.Equal(fakepds.RewriteSeq(o, os, slot.Seq), g.frame) {
				delete(byOrigSeq, oseq)
				matched++
				break
			}
		}
		if cm := decodeCommit(t, g.frame); cm != nil {
			ctx := context.Background()
			_, err := repo.VerifyCommitMessage(ctx, cm)
			require.NoError(t, err, "commit of %s", cm.Repo)
			require.NoError(t, repo.VerifyCommitSignature(ctx, dir, cm), "real key of %s", cm.Repo)
		}
	}
	assert.Equal(t, 150, matched, "every received frame is a captured frame with its seq rewritten")

	// The documents the PLC serves: the capture's, with the PDS endpoint
	// rewritten to the account's fleet host.
	docs := map[string]json.RawMessage{}
	require.NoError(t, captures.ReadDIDDocs(capPath, func(did string, doc []byte) error {
		docs[did] = bytes.Clone(doc)
		return nil
	}))
	for did, orig := range docs {
		resp, err := n.client.Get("http://" + n.fleet.PLCName() + "/" + did)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode, "%s: %s", did, body)
		var served, captured map[string]any
		require.NoError(t, json.Unmarshal(body, &served))
		require.NoError(t, json.Unmarshal(orig, &captured))
		assert.Equal(t, "http://"+hostOfDID[did], pdsEndpoint(served), did)
		assert.Equal(t, captured["verificationMethod"], served["verificationMethod"], "the real key of %s", did)
		assert.Equal(t, captured["alsoKnownAs"], served["alsoKnownAs"])
	}
}

func pdsEndpoint(doc map[string]any) string {
	svcs, _ := doc["service"].([]any)
	for _, s := range svcs {
		m, _ := s.(map[string]any)
		if id, _ := m["id"].(string); id == "#atproto_pds" {
			e, _ := m["serviceEndpoint"].(string)
			return e
		}
	}
	return ""
}

// --speed follows the capture's own timing: at speed 2 the capture's span
// (about half a second of event times) takes half as long.
func TestVerbatimSpeedFollowsCaptureTiming(t *testing.T) {
	capPath := sharedCapture(t)
	m, err := captures.ReadManifest(capPath)
	require.NoError(t, err)
	n := startNet(t, fakepds.Config{Hosts: 5, AccountsPerHost: 1})
	r, err := New(n.fleet, Config{Mode: Verbatim, Capture: capPath, Speed: 2, Weights: Weights{Kind: "capture"}})
	require.NoError(t, err)
	rep, err := r.Run(context.Background())
	require.NoError(t, err)
	want := m.Duration() / 2
	t.Logf("capture spans %s; replayed in %s", m.Duration(), rep.Elapsed)
	assert.InDelta(t, want.Seconds(), rep.Elapsed.Seconds(), 0.1)
	assert.Equal(t, int64(150), rep.Frames)
}

// Verbatim then re-hosted: the capture's 150 real frames first, then the
// fleet's own signed commits at the same rate on the same clock, with no
// burst at the switch and no window counted twice.
func TestVerbatimThenRehosted(t *testing.T) {
	capPath := sharedCapture(t)
	n := startNet(t, fakepds.Config{Hosts: 10, AccountsPerHost: 2})
	c := n.collectAll(t)
	var wins []Window
	r, err := New(n.fleet, Config{Mode: Verbatim, ThenRehosted: true, Capture: capPath, Rate: 100, Duration: 4 * time.Second,
		Window: time.Second, Churn: NoChurn, OnWindow: func(w Window) { wins = append(wins, w) }})
	require.NoError(t, err)
	rep, err := r.Run(context.Background())
	require.NoError(t, err)
	assert.True(t, rep.CaptureEnded)
	assert.Equal(t, int64(150), sumKinds(rep.ByKind), "every captured frame, once")
	assert.InDelta(t, 400, rep.Frames, 12, "the schedule runs on unbroken: 100/s for 4 s in all")
	s := n.fleet.Stats()
	assert.Greater(t, s.Commits, uint64(148+150), "re-hosted commits followed the captured ones")
	require.Len(t, wins, 4)
	for i, w := range wins {
		assert.Equal(t, i, w.Index)
		assert.InDelta(t, 100, w.Frames, 12, "window %d", i)
	}
	require.Eventually(t, func() bool { return int64(len(c.all())) == rep.Frames }, 5*time.Second, 10*time.Millisecond)
	for _, g := range c.all()[150:] {
		slot, err := fakepds.LocateSeq(g.frame)
		require.NoError(t, err)
		assert.False(t, n.fleet.IsImported(slot.DID), "after the capture, the fleet's own accounts write")
	}
	_, err = New(n.fleet, Config{Mode: Rehosted, ThenRehosted: true})
	assert.Error(t, err, "ThenRehosted follows a verbatim capture")
}

func sumKinds(m map[string]int64) (n int64) {
	for _, v := range m {
		n += v
	}
	return n
}
