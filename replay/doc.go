// Package replay decides what happens when: it turns a capture (or a
// synthetic shape) and a schedule into writes on the fleet's hosts. It is
// the project's one pacer: soaks, A/B soaks, `relaysoak run`, `replay`
// and `fakepds --rate` all drive the fleet through it.
//
// It must not know how frames reach the relay, nor anything about the relay:
// it talks to the fleet through the small Fleet interface and counts what
// it handed over; what the relay did with it is measured elsewhere.
//
// # The schedule
//
// A Pacer says how many frames are due by each moment (Schedule: a target
// rate, a linear ramp-up, periodic K× bursts). The sender sends the
// difference between that and what it has sent, so a sender that was held
// up catches up: the model is open and never slows down because a
// receiver is slow. How late each frame went out after it was due is kept
// in a bounded log-scaled histogram (p50/p90/p99 to within 5%), for the
// whole run and per reporting window; windows are kept up to a bound, so
// memory stays flat for runs of hours.
//
// Hosts are picked by weight (uniform, Zipf with exponent S — by default
// skewed like the live network — or the capture's own) in constant time.
// Host churn takes hosts down for a while (Outages); outages at least as
// long as the relay's give-up time are reported as abandoned hosts and no
// longer written to.
//
// # Modes
//
// Verbatim plays a capture once: each frame byte for byte but its seq,
// each account's frames always from the same fleet host, which hosts the
// account's identity with the capture's DID document (endpoint rewritten to
// that host), so a validating relay checks real signatures with real keys.
// Accounts without a document get a made-up one and are counted apart.
// At Rate, or with the capture's own timing scaled by Speed. With
// ThenRehosted the run goes on re-hosted after the capture, on the same
// clock: the real frames first, then as long a run as asked.
//
// Rehosted runs for as long as asked: the fleet's own accounts write fresh,
// validly signed commits shaped like the capture (ProfileFromCapture gives
// the fleet's Shape and the replay's Churn; too small a capture leaves
// defaults, each named in the Profile). Which event comes next — a commit
// or, at its rate per 1,000 frames, an identity change, a key rotation, a
// new account, a move, a status change or a #sync — is drawn here; the
// fleet performs it (fakepds.Fleet.Perform).
package replay
