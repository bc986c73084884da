// Package captures reads and writes recorded event streams.
//
// It must not know about fleets, relays or schedules.
package captures
