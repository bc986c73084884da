// Package attribute says which load factor drives a relay's memory growth,
// in bytes retained per unit of that factor. From one run's samples of
// memory and of the cumulative count of each factor (frames delivered, DID
// resolutions caused, upstream host reconnects, downstream consumer
// reconnects), and the Plan that raised one factor at a time, it fits
//
//	memory ≈ level + β_time·t + Σ βᵢ·countᵢ(t) + noise
//
// after the warm-up, robustly, with intervals that allow for autocorrelated
// noise, and gives a verdict: the factor(s) that explain the growth, growth
// with time alone (a timer or a cache with no bound on age), no growth, or
// inconclusive.
//
// It must not know how load is made, any relay's names (counters arrive as
// Factor-keyed counts), nor how samples are taken: callers pass numbers.
//
// # Method
//
// Plan: baseline, then each factor raised alone (×Multiplier), each followed
// by a repeat of the baseline: B F1 B F2 B F3 B F4 B. The raised phases sit at
// different times, so no factor's count is a linear function of time or of
// another's; the repeated baseline lets the time term be estimated from
// stretches where nothing is raised, and a leak that follows time shows the
// same slope in every phase. Phase length is the least whole minute for which
// the plan's own design (at the configured noise, its autocorrelation and the
// sample interval) gives every factor a 95% interval no wider than ±half of
// MinDetectMiBPerHour (so a factor growing memory that fast at baseline load
// is named with ≈97.5% power).
//
// Fit: least squares on centred, unit-norm columns (QR by Gram–Schmidt,
// twice); a column that is constant (factor never exercised) or a
// combination of the earlier ones (intercept, time, factors in order) is
// dropped and reported, and growth that cannot then be separated is
// inconclusive. The series is prewhitened (Cochrane–Orcutt, ρ from the first
// fit's residuals, at most 0.95), one Huber pass (k = 3 MADs) down-weights
// spikes, and intervals use Newey–West (HAC, Bartlett kernel) standard
// errors with the Andrews (1991) AR(1) plug-in lag on the whitened
// residuals. Without prewhitening the intervals were far too narrow on
// persistent memory noise (16% of null terms excluded 0 at a nominal 5%);
// with it, ≈8% at AR 0.8 plus a sawtooth, 5.7% on white noise. A
// moving-block bootstrap would need its block length chosen the same way and
// hundreds of refits; this is one pass.
//
// Floors (FitConfig.Floors): a relay that holds data between flushes has
// teeth in its memory, even in its live heap (a climb of tens of MiB over a
// minute or two, then a drop back), which scatter samples by far more than
// the growth sought. stats.FindTeeth finds them as drops larger than four times the median step, at
// least four of them, from the first sample on: a heap growing fast after
// the warm-up hides its drops, while its collector's cycle, and the noise
// each cycle adds to what it marks, go on. Then the fit takes the lowest
// sample after the warm-up of each window of 1.5 median periods (with that
// sample's counts), which is what was kept at that moment: on a sawtooth
// that narrows a factor's interval severalfold, and where growth hides the
// teeth it keeps one point per cycle, not several that share its noise.
// A window must leave 24 floors after the warm-up, or
// every sample is fitted.
//
// Verdict: memory grows if the total fitted growth exceeds MinGrowthMiB and
// its interval excludes 0 (the total is well determined even when its split
// is not: every count also rises with time). A factor is named when its
// interval excludes 0 at the Bonferroni level over the model's terms, it
// explains at least MinShare of the growth and at least the floor. If none
// is, and a joint Wald test finds the factors together explain nothing, the
// growth follows time: its slope is then refitted on time alone, far
// tighter than the full model's time term. Otherwise: inconclusive.
package attribute
