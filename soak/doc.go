// Package soak is the controller: Run starts a soak (one relay, an A/B
// pair, or an attribution plan) through a harness, drives its load,
// samples the relay's memory and its own into the run directory as it goes,
// judges the series and has soak/report write the outcome; Rebuild judges
// and reports a finished run again from its files.
//
// It must not know how the load is produced beyond the counters the fleet
// and replay expose, nor write markdown itself (soak/report does).
package soak
