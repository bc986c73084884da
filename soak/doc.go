// Package soak consumes what the relay emits, samples its memory, judges the
// series and writes the report.
//
// It must not know how the load is produced beyond the counters the fleet
// and replay expose.
package soak
