package replay

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/events"
	"github.com/ipld/go-car"
	cbg "github.com/whyrusleeping/cbor-gen"

	"github.com/relaysoak/relaysoak/captures"
	"github.com/relaysoak/relaysoak/fakepds"
)

// Profile is what a capture says synthetic traffic should look like: the
// fleet's commit Shape and the rates of the other event kinds (its Churn).
type Profile struct {
	Shape fakepds.Shape
	// Churn is DefaultChurn with the rates the capture holds enough of.
	Churn Churn
	// Frames and Commits read; FromCapture names the settings taken from
	// the capture, Defaulted those left to the defaults because the
	// capture held too few samples of them.
	Frames, Commits int64
	FromCapture     []string
	Defaulted       []string
}

// ShapeConfig sets how much of a capture is enough.
type ShapeConfig struct {
	// MinCommits: below this many commits the commit shape (collections,
	// ops per commit, update and delete shares, post sizes) is the
	// fleet's default (default 100).
	MinCommits int64
	// MinEvents: below this many #identity, #account or #sync frames that
	// kind's rate is the fleet's default (default 20): one event in 150
	// frames says little about its rate.
	MinEvents int64
	// MaxPostSizes bounds the post sizes kept (a uniform sample; default 1,000).
	MaxPostSizes int
}

// ProfileFromCapture reads a capture once, streaming, and derives the
// shape of re-hosted traffic from it.
func ProfileFromCapture(path string, cfg ShapeConfig) (Profile, error) {
	if cfg.MinCommits <= 0 {
		cfg.MinCommits = 100
	}
	if cfg.MinEvents <= 0 {
		cfg.MinEvents = 20
	}
	if cfg.MaxPostSizes <= 0 {
		cfg.MaxPostSizes = 1000
	}
	r, err := captures.Open(path, captures.ReaderConfig{})
	if err != nil {
		return Profile{}, fmt.Errorf("replay: shape from capture: %w", err)
	}
	defer r.Close()
	var (
		p        Profile
		kinds    = map[string]int64{}
		colls    = map[string]float64{}
		opsHist  []float64
		updates  int64
		deletes  int64
		posts    []int
		seenPost int
		rng      = rand.New(rand.NewPCG(1, 2))
	)
	p.Churn = DefaultChurn
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return Profile{}, fmt.Errorf("replay: shape from capture: %w", err)
		}
		p.Frames++
		cr := cbg.NewCborReader(bytes.NewReader(rec.Frame))
		var h events.EventHeader
		if err := h.UnmarshalCBOR(cr); err != nil || h.Op != events.EvtKindMessage {
			continue
		}
		kinds[h.MsgType]++
		if h.MsgType != captures.KindCommit {
			continue
		}
		var evt comatproto.SyncSubscribeRepos_Commit
		if err := evt.UnmarshalCBOR(cr); err != nil {
			continue // counted as a frame; its shape is unknown
		}
		p.Commits++
		creates := 0
		for _, op := range evt.Ops {
			switch op.Action {
			case "create":
				creates++
				colls[captures.Op{Path: op.Path}.Collection()]++
			case "update":
				updates++
			case "delete":
				deletes++
			}
		}
		if creates > 0 {
			for len(opsHist) < min(creates, 100) {
				opsHist = append(opsHist, 0)
			}
			opsHist[min(creates, 100)-1]++
		}
		for _, size := range postSizes(&evt) {
			seenPost++
			if len(posts) < cfg.MaxPostSizes {
				posts = append(posts, size)
			} else if j := rng.IntN(seenPost); j < len(posts) {
				posts[j] = size
			}
		}
	}
	if p.Commits >= cfg.MinCommits {
		names := make([]string, 0, len(colls))
		for c := range colls {
			names = append(names, c)
		}
		sort.Slice(names, func(i, j int) bool {
			return colls[names[i]] > colls[names[j]] || colls[names[i]] == colls[names[j]] && names[i] < names[j]
		})
		for _, c := range names {
			p.Shape.Collections = append(p.Shape.Collections, fakepds.Weighted{Name: c, Weight: colls[c]})
		}
		p.Shape.OpsPerCommit = opsHist
		// A zero share would mean "default" to the fleet; a tiny one means none.
		p.Shape.Update = max(float64(updates)/float64(p.Commits), 1e-9)
		p.Shape.Delete = max(float64(deletes)/float64(p.Commits), 1e-9)
		p.Shape.PostBytes = posts
		p.FromCapture = append(p.FromCapture, "collections", "ops per commit", "update share", "delete share")
		if len(posts) > 0 {
			p.FromCapture = append(p.FromCapture, "post sizes")
		}
	} else {
		p.Defaulted = append(p.Defaulted, fmt.Sprintf("commit shape (%d commits < %d)", p.Commits, cfg.MinCommits))
	}
	perK := func(kind string, dst *float64, name string) {
		if n := kinds[kind]; n >= cfg.MinEvents {
			*dst = float64(n) * 1000 / float64(p.Frames)
			p.FromCapture = append(p.FromCapture, fmt.Sprintf("%s rate (%.2f per 1,000 frames)", name, *dst))
		} else {
			p.Defaulted = append(p.Defaulted, fmt.Sprintf("%s rate (%d in the capture < %d)", name, n, cfg.MinEvents))
		}
	}
	perK(captures.KindIdentity, &p.Churn.Identity, "#identity")
	perK(captures.KindAccount, &p.Churn.Status, "#account")
	perK(captures.KindSync, &p.Churn.Sync, "#sync")
	if p.Frames == 0 {
		return p, errors.New("replay: shape from capture: " + path + " holds no frames")
	}
	return p, nil
}

// postSizes are the sizes of the post records a commit creates.
func postSizes(evt *comatproto.SyncSubscribeRepos_Commit) []int {
	var want map[string]bool
	for _, op := range evt.Ops {
		if op.Action == "create" && op.Cid != nil && (captures.Op{Path: op.Path}).Collection() == "app.bsky.feed.post" {
			if want == nil {
				want = map[string]bool{}
			}
			want[op.Cid.String()] = true
		}
	}
	if want == nil {
		return nil
	}
	cr, err := car.NewCarReader(bytes.NewReader(evt.Blocks))
	if err != nil {
		return nil
	}
	var out []int
	for {
		b, err := cr.Next()
		if err != nil {
			return out
		}
		if want[b.Cid().String()] {
			out = append(out, len(b.RawData()))
		}
	}
}
