// Package fakepds is the whole upstream network a relay talks to, in one
// process: a fleet of PDS hosts (told apart by the HTTP Host header), a PLC
// directory and an upstream relay face listing the hosts.
//
// It owns identity and repository state: accounts, signing keys, real MST
// repositories, per-host sequencers and the PLC operation log. It must not
// know about captures, schedules or relays under test: replay decides who
// writes what and when; the fleet performs each event it is told to
// (Perform: a commit, an identity change, a new account, a move…).
package fakepds
