// Package firehose consumes the relay's own com.atproto.sync.subscribeRepos
// stream and measures what comes out: counts by kind and by origin host,
// end-to-end lag (fleet emission → relay emission) as percentiles, delivery
// against the commits the fleet says it sent, and verification of delivered
// commits (complete in tests, sampled in long runs). It also reads the relay's
// Prometheus text to cross-check delivery against the relay's own counters.
//
// It must not know how the load is produced or which relay runs: the caller
// supplies the URL, the commits-in counter, a DID → host function and an
// identity directory. Everything it keeps is bounded: a run of a week costs
// the same memory as a run of a minute.
package firehose
