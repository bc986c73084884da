// Package verdict decides, from a memory series, whether a process leaks:
// PASS (flat, or rose and plateaued), LEAK (sustained growth after warm-up,
// or an OOM sawtooth), INCONCLUSIVE (too short or too noisy, with how much
// longer the run needs) or CRASHED (the run recorded exits), and the numbers
// behind the verdict; and, from a run with a live heap, whether what the
// process keeps grows or only its resident set does (RETAINED).
//
// It knows series of (seconds, bytes) and the run's frame rate, memory limit
// and exits; it must not know containers, fleets, the relay or how samples
// are taken. The soak controller feeds it (Live during a run, Judge at the
// end); `relaysoak analyze` reads files (ReadSamples; a CSV's columns and
// their spellings are analyze's to read).
//
// # Method
//
// Samples are thinned to at most 600 bin medians (so pairwise statistics
// cost the same for an hour and a week). Sharp drops to the starting level
// are restarts: repeated, or one from near the memory limit, is an OOM
// sawtooth (LEAK). Otherwise the last process lifetime is judged: the warm-up
// is found by fitting line + saturating exponential (+ optional hinge), or
// line + logistic for an S-shaped warm-up (a cache filling as hosts
// connect), and ends at 3τ (mid + 3τ); a leak that starts after a flat
// stretch is found by a hinge fit. The judged window is fitted in up to four variants (as recorded,
// level shifts removed, warm-up tail subtracted, both) and the smallest
// Sen's slope is kept: a leak must survive every excuse. The trend test is
// Mann–Kendall with the Hamed–Rao autocorrelation correction, and the
// slope's interval is Sen's, computed with the corrected variance. LEAK needs
// all of: slope ≥ gate, interval above 0, p < α, and the window's second half
// still rising (at least half the slope, itself significant). A second half
// whose interval lies under the gate is a plateau: PASS.
//
// Slow flush cycles (memory climbs for minutes to hours and drops back to
// the same floor, no exit recorded, no drop to a fresh process's level) are
// recognised as sharp drops at the end of gradual teeth, at least ten
// minutes apart. While they recur, the judged window must hold two whole
// cycles for any verdict (a window inside one rising tooth looks exactly
// like a leak), and then the floors and the peaks are judged, not a line
// through the teeth: both flat is PASS.
//
// # Defaults (Config's zero value)
//
//   - MinSlopeMiBPerHour = 10. The relay that motivated the rig leaked
//     240–290 MiB/hour; 10 MiB/hour is 1.7 GiB a week, about the headroom
//     between a 1.5 GiB plateau and a small limit, so anything slower would
//     not kill a week-long deployment. It also sits above what thinned,
//     autocorrelated noise makes of a flat series in an hour (a few MiB/hour).
//   - MinBytesPerFrame = 2. At the network's ~700 frames/s, 2 B/frame is
//     4.8 MiB/hour, under the hourly gate, so it only bites at higher test
//     rates (above ~1,450 frames/s), where an hourly slope says little about
//     production: the leak in the notes retained ~120 B/frame. Both gates
//     must be passed.
//   - Alpha = 0.01: with thousands of samples everything is "significant";
//     the small α and the gates, not the p-value, keep healthy runs PASS.
//     Hamed–Rao still under-corrects on short persistent series (see
//     fitTrend), another reason for 0.01 rather than 0.05.
//   - MinWindow = 20 min: 120 samples at 10 s and several GC cycles.
//     MinWindowFraction is off (0): a quarter of the run would mean, after
//     a 2-hour warm-up, 40 minutes before any verdict. A late warm-up end
//     leaving a window inside one slow flush cycle is the flush rule's job
//     (two whole cycles once drops are seen); and no PASS is given while a warm-up whose fitted time
//     constant is at the cap the data length sets still climbs at half the
//     gate (it may not be over).
//   - StrongSlopeMiBPerHour = 500, EarlyWindow = 2/5 of MinWindow: growth
//     whose whole interval is over fifty times the gate, still rising in the
//     second half, is called LEAK eight minutes after a warm-up that has
//     ended, instead of twenty. The relays that motivated the rig leaked 240–750
//     MiB/hour; at 500 the early call costs no false LEAK in the library's
//     sweeps, because a flat series' interval never clears it.
//   - MaxPoints = 600: ~180,000 slope pairs, ~0.1 s for a week of samples.
//   - RestartFraction = 0.5: a Go heap under GOGC=100 drops to about half;
//     restarts also have to fall to near the run's starting level.
//
// # Signals
//
// JudgeSignals judges every signal and lets rss_anon carry the verdict, else
// vm_rss, else cgroup_working_set; heap gauges are judged and compared, and a
// disagreement (RSS rising, heap flat: fragmentation or a leak outside the
// heap) is reported.
//
// # What is kept
//
// JudgeRun adds what a garbage-collected process keeps (Report.WithKept):
// its live heap is a fast sawtooth (what it holds between flushes), and the
// lowest sample of each window of 1.5 teeth, the floor, moves only with
// what survives collections. The floors are judged like any series and
// carry the verdict, with the OS's view (rss_anon) beside them: floors
// growing is LEAK; floors flat while RSS grows is RETAINED (the allocator
// or runtime keeps freed pages); both flat is PASS. Until four teeth are
// seen the OS's view carries the verdict alone. LiveKept does the same
// during a run, in bounded memory.
//
// The goroutine count is kept memory too (Report.WithGoroutines), judged
// with its own gates (60 an hour and 2% of the level an hour): it has
// almost none of memory's noise, so a leak that keeps a goroutine per
// event shows there first, and makes the run LEAK.
//
// A result from too little data still carries the estimate so far
// (Provisional) and the warm-up's state (WarmupState), so that the live view
// can show them; numbers never computed are told apart from zeros
// (JudgedPoints 0, WarmupUnknown).
//
// The tests judge a labelled library of synthetic traces (tracegen.go) with
// fixed seeds and fresh ones on every run; VERDICT_SEED=N replays one,
// VERDICT_SEEDS=N sweeps N fresh seeds (with -v: a per-class table).
package verdict
