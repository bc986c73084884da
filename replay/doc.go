// Package replay decides what happens when: it turns a capture (or a
// synthetic shape) and a schedule into writes on the fleet's hosts.
//
// It must not know how frames reach the relay, nor anything about the relay.
package replay
