package replay

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/relaysoak/relaysoak/fakepds"
)

// Churn is how often, besides commits, each kind of event happens, in
// events per 1,000 frames written, so it scales with the load. The
// defaults follow the live network's mix (the shared capture has one
// #identity and one #account in 150 frames) while keeping a relay's DID
// resolver busy for the whole run: a relay caches documents for a day, so
// without churn its resolver goes quiet after warm-up: DefaultChurn. A
// zero field is none of that kind, so each can be turned off alone; the
// zero Churn is commits only.
type Churn struct {
	// Identity: #identity events (default 5); KeyRotation is the fraction
	// of them that first rotate the signing key (default 0.1).
	Identity    float64 `json:"identity"`
	KeyRotation float64 `json:"key_rotation"`
	// NewAccount: accounts created (default 2); each host keeps its count
	// bounded by deleting its oldest account when over.
	NewAccount float64 `json:"new_account"`
	// Move: accounts migrating to another host (default 0.5).
	Move float64 `json:"move"`
	// Status: #account deactivations, each reactivated later (default 1).
	Status float64 `json:"status"`
	// Sync: #sync events (default 1).
	Sync float64 `json:"sync"`
}

// DefaultChurn is the realistic mix a run gets unless told otherwise.
var DefaultChurn = Churn{Identity: 5, KeyRotation: 0.1, NewAccount: 2, Move: 0.5, Status: 1, Sync: 1}

// NoChurn is commits only.
var NoChurn = &Churn{}

func (c Churn) validate(perSecond bool) error {
	unit := "events per 1,000 frames"
	if perSecond {
		unit = "events per second"
	}
	for name, v := range map[string]float64{"identity": c.Identity, "new account": c.NewAccount, "move": c.Move, "status": c.Status, "sync": c.Sync} {
		if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("replay: churn %s rate must be a non-negative number of %s, got %g", name, unit, v)
		}
	}
	if c.KeyRotation < 0 || c.KeyRotation > 1 {
		return fmt.Errorf("replay: key rotation must be a fraction of identity events in [0,1], got %g", c.KeyRotation)
	}
	if !perSecond && c.total() > 1000 {
		return fmt.Errorf("replay: churn adds up to more than 1,000 events per 1,000 frames")
	}
	return nil
}

type churnKind struct {
	ev   fakepds.Event
	rate float64
}

func (c Churn) kinds() []churnKind {
	return []churnKind{
		{fakepds.EventIdentity, c.Identity * (1 - c.KeyRotation)},
		{fakepds.EventKeyRotation, c.Identity * c.KeyRotation},
		{fakepds.EventNewAccount, c.NewAccount},
		{fakepds.EventMove, c.Move},
		{fakepds.EventStatus, c.Status},
		{fakepds.EventSync, c.Sync},
	}
}

// total is every kind's rate together.
func (c Churn) total() float64 { return c.Identity + c.NewAccount + c.Move + c.Status + c.Sync }

// pick draws the next event: a commit, or a churn event at its rate per
// 1,000 frames.
func (c Churn) pick(rng *rand.Rand) fakepds.Event {
	return c.draw(rng.Float64()*1000, fakepds.EventCommit)
}

// pickChurn draws a churn event (never a commit) in proportion to the
// kinds' rates.
func (c Churn) pickChurn(rng *rand.Rand) fakepds.Event {
	return c.draw(rng.Float64()*c.total(), fakepds.EventSync)
}

func (c Churn) draw(r float64, otherwise fakepds.Event) fakepds.Event {
	for _, k := range c.kinds() {
		if r < k.rate {
			return k.ev
		}
		r -= k.rate
	}
	return otherwise
}
