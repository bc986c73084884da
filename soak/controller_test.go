package soak

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/relaysoak/relaysoak/fakepds"
	"github.com/relaysoak/relaysoak/relay"
	"github.com/relaysoak/relaysoak/replay"
	"github.com/relaysoak/relaysoak/soak/crowd"
	"github.com/relaysoak/relaysoak/soak/harness/harnesstest"
	"github.com/relaysoak/relaysoak/soak/report"
	"github.com/relaysoak/relaysoak/soak/rundir"
	"github.com/relaysoak/relaysoak/soak/verdict"
)

// processSoak is a soak of the test relay run as a process (see
// processHarness), sampled every 100 ms.
func processSoak(t *testing.T, h *harnesstest.Processes, d time.Duration) Config {
	t.Helper()
	return Config{RunsDir: t.TempDir(), ID: "proc", Hosts: 4, Rate: 100, Duration: d, SampleEvery: 100 * time.Millisecond,
		VerifyEvery: 1, Profile: &leakyRelay{}, Harness: h, DrainQuiet: 500 * time.Millisecond, Judge: verdict.Config{MinWindow: time.Second, Warmup: time.Second}}
}

// whenSampled calls f, beside the soak, once samples.jsonl holds n lines:
// what a test does to a run waits for the run, not for a clock.
func whenSampled(t *testing.T, cfg Config, n int, f func()) {
	path := filepath.Join(cfg.RunsDir, cfg.ID, rundir.Samples)
	ctx := t.Context() // ends with the test
	go func() {
		for ctx.Err() == nil {
			if b, err := os.ReadFile(path); err == nil && bytes.Count(b, []byte("\n")) >= n {
				f()
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
}

func TestControllerInterruptedStillReports(t *testing.T) {
	h := newProcessHarness(t)
	cfg := processSoak(t, h, 10*time.Minute)
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	whenSampled(t, cfg, 15, func() { cancel(errors.New("SIGINT")) })
	out, err := Run(ctx, cfg)
	require.NoError(t, err)
	s := out.Summary
	assert.True(t, s.Interrupted)
	assert.Contains(t, s.StopReason, "SIGINT")
	assert.Less(t, s.Duration, time.Minute)
	md, err := os.ReadFile(filepath.Join(out.Dir, rundir.Report))
	require.NoError(t, err)
	assert.Contains(t, string(md), "stopped early")
	assert.GreaterOrEqual(t, len(readLines(t, filepath.Join(out.Dir, rundir.Samples))), 15, "samples taken before the interrupt are kept")
	assert.Positive(t, s.CommitsOut, "the relay passed commits on before the interrupt")
}

// keptProcessJudge judges half a minute of the test relay as a process
// with HEAP_TEETH a second apart: floors 1.5 s apart need windows of 6 s
// and more; the gate is far above the noise of half a minute of floors.
var keptProcessJudge = verdict.Config{MinWindow: 15 * time.Second, Warmup: 5 * time.Second, MinSlopeMiBPerHour: 1024}

// The verdict on what the relay keeps, end to end in seconds: the test
// relay as a process with its Go heap's teeth a second apart, sampled every
// 100 ms, keeping 16 KiB per frame. Kept in the Go heap, it is LEAK on the
// live heap's floors at that rate; kept outside it (anonymous mappings),
// the floors are flat while RSS grows at that rate: RETAINED.
func TestControllerJudgesWhatTheRelayKeeps(t *testing.T) {
	const perFrame = 16 << 10 // × 100 frames/s ≈ 5.5 GiB/h
	for _, tc := range []struct {
		retainIn string
		want     verdict.Verdict
	}{{"heap", verdict.Leak}, {"mmap", verdict.Retained}} {
		t.Run(tc.retainIn, func(t *testing.T) {
			h := newProcessHarness(t)
			cfg := processSoak(t, h, 30*time.Second)
			cfg.Profile = &leakyRelay{Kept: true, Env: map[string]string{
				"RETAIN_IN": tc.retainIn, "LEAK_BYTES_PER_FRAME": strconv.Itoa(perFrame), "HEAP_TEETH": "8MiB:1s"}}
			cfg.Judge = keptProcessJudge
			out, err := Run(t.Context(), cfg)
			require.NoError(t, err)
			j := out.Summary.Judged
			floors := requireFloorsJudged(t, j)
			sys := j.OSView()
			require.NotNil(t, sys)
			t.Logf("%s: %s; floors %s %.0f MiB/h (CI %.0f to %.0f); %s %s %.0f MiB/h", tc.retainIn, j.Verdict, floors.Verdict, floors.SlopeMiBPerHour,
				floors.SlopeCIMiBPerHour[0], floors.SlopeCIMiBPerHour[1], sys.Signal, sys.Verdict, sys.SlopeMiBPerHour)
			require.Equal(t, tc.want, j.Verdict, j.Reason)
			grows := floors
			if tc.want == verdict.Retained {
				assert.Equal(t, verdict.Pass, floors.Verdict, "the heap keeps nothing more: %s", floors.Reason)
				grows = *sys
			}
			want := perFrame * windowRate(t, out.Dir, verdict.Report{Result: grows}, framesSent) / mibPerHour
			assert.InEpsilon(t, want, grows.SlopeMiBPerHour, 0.2, "%s within ±20%% of the %.0f MiB/h kept", grows.Signal, want)
		})
	}
}

// A goroutine parked per consumer coming back with a cursor (CURSOR_LEAK)
// and 1 KiB with it: the heap's floors stay under the gate while the
// goroutine count climbs one per comeback: LEAK on the goroutines.
func TestControllerJudgesTheGoroutinesKept(t *testing.T) {
	h := newProcessHarness(t)
	cfg := processSoak(t, h, 30*time.Second)
	cfg.Profile = &leakyRelay{Kept: true, Env: map[string]string{"CURSOR_LEAK": "1KiB", "HEAP_TEETH": "8MiB:1s"}}
	cfg.Consumers, cfg.ConsumerChurn, cfg.ConsumerMix = 8, 300*time.Millisecond, crowd.Mix{Resume: 1}
	cfg.Judge = keptProcessJudge
	out, err := Run(t.Context(), cfg)
	require.NoError(t, err)
	j := out.Summary.Judged
	require.NotNil(t, j.Goroutines, "the profile names the goroutine gauge")
	g := *j.Goroutines
	t.Logf("%s: %s; memory alone %s", j.Verdict, j.Reason, j.MemoryVerdict)
	require.Equal(t, verdict.Leak, j.Verdict, j.Reason)
	assert.Equal(t, verdict.Leak, g.Verdict, g.Reason)
	assert.NotEmpty(t, j.MemoryVerdict, "the goroutines, not memory, made it LEAK")
	assert.NotEqual(t, verdict.Leak, j.MemoryVerdict, "memory alone does not call it: %s", j.MemoryReason)
	comebacks := func(l rundir.Line) (float64, bool) {
		v, ok := l.Context[rundir.CrowdCursorResumes]
		return v + l.Context[rundir.CrowdOldCursors], ok
	}
	want := windowRate(t, out.Dir, verdict.Report{Result: g}, comebacks) * 3600
	assert.InEpsilon(t, want, g.SlopeMiBPerHour, 0.2, "goroutines an hour: one per comeback, %.0f an hour", want)
}

func TestControllerRelayKilledIsCrashed(t *testing.T) {
	h := newProcessHarness(t)
	cfg := processSoak(t, h, 10*time.Minute)
	whenSampled(t, cfg, 15, func() { h.Relay(0).Kill() })
	out, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	assertCrashed(t, out, 15)
	assert.Less(t, out.Summary.Duration, time.Minute)
}

// assertCrashed checks a run whose relay was SIGKILLed: CRASHED, saying
// so, with the samples taken before it kept.
func assertCrashed(t *testing.T, out Outcome, samples int) {
	t.Helper()
	s := out.Summary
	assert.Equal(t, verdict.Crashed, s.Judged.Verdict)
	assert.Equal(t, "relay died", s.StopReason)
	require.Len(t, s.Exits, 1)
	assert.Contains(t, s.Exits[0], "code 137 (SIGKILL)")
	lines := readLines(t, filepath.Join(out.Dir, rundir.Samples))
	assert.GreaterOrEqual(t, len(lines), samples, "samples taken before the crash are kept")
	assert.Equal(t, 1, lines[len(lines)-1].Exits)
	events, err := os.ReadFile(filepath.Join(out.Dir, rundir.Events))
	require.NoError(t, err)
	assert.Contains(t, string(events), `"relay_exit"`)
}

func TestControllerRestartCountsRestarts(t *testing.T) {
	h := newProcessHarness(t)
	cfg := processSoak(t, h, 6*time.Second)
	cfg.Restart = true
	whenSampled(t, cfg, 10, func() { h.Relay(0).Kill() })
	out, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	assertRestartedOnce(t, out, 10)
}

// assertRestartedOnce checks a run whose relay was killed once and
// restarted: it went on to its end, said so, and delivered again in its
// last `after` samples.
func assertRestartedOnce(t *testing.T, out Outcome, after int) {
	t.Helper()
	s := out.Summary
	assert.Equal(t, 1, s.Restarts)
	assert.Equal(t, "duration reached", s.StopReason, "the run goes on after a restart")
	md, err := os.ReadFile(filepath.Join(out.Dir, rundir.Report))
	require.NoError(t, err)
	assert.Contains(t, string(md), "| relay restarts | 1 |")
	events, err := os.ReadFile(filepath.Join(out.Dir, rundir.Events))
	require.NoError(t, err)
	assert.Contains(t, string(events), `"relay_restart"`)
	lines := readLines(t, filepath.Join(out.Dir, rundir.Samples))
	require.Greater(t, len(lines), 2*after)
	assert.Greater(t, lines[len(lines)-1].Context["commits_delivered"], lines[len(lines)-after].Context["commits_delivered"])
}

// A relay that silently drops a tenth of the busiest host's commits ends
// LOST, whatever its memory says, and the report and exit status say so;
// the same relay without the fault delivers everything due.
func TestControllerLostWhenTheRelayDropsCommits(t *testing.T) {
	h := newProcessHarness(t)
	cfg := processSoak(t, h, 6*time.Second)
	cfg.Profile = &leakyRelay{Env: map[string]string{"DROP_HOST": fakepds.HostName(0, "test") + ":10"}}
	// The test relay's Go runtime, in its first seconds, grows at hundreds
	// of MiB/h: memory's verdict stays out of the way of delivery's.
	cfg.Judge.MinSlopeMiBPerHour = 5000
	out, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	s := out.Summary
	require.NotNil(t, s.Delivered, "delivery was judged")
	d := *s.Delivered
	t.Logf("%s", report.Headline(s))
	assert.Less(t, d.Ratio, 0.99, "a tenth of the busiest host's commits is more than 1%% of all")
	assert.Greater(t, d.Ratio, 0.8)
	assert.Equal(t, DefaultMinDelivery, d.Min)
	assert.True(t, d.Lost())
	assert.InDelta(t, s.RelayReceived-float64(s.CommitsOut), d.Due-d.Delivered, 2, "what went missing is what the relay received and did not pass on")
	require.NotEmpty(t, s.HostsShort)
	assert.Equal(t, fakepds.HostName(0, "test"), s.HostsShort[0].Host, "the host whose commits were dropped is named first")
	assert.InDelta(t, d.Due-d.Delivered, float64(s.HostsShort[0].Missing()), 3)
	assert.Contains(t, report.Headline(s), "most missing from "+fakepds.HostName(0, "test"))
	// The accounting puts the planted loss where it happened, to within a
	// commit of the relay's own count of what it dropped.
	require.NotNil(t, s.Findings.Accounting, "notes: %v", s.Notes)
	a := *s.Findings.Accounting
	assert.Equal(t, a.Written, a.Sum(), "every commit in one bucket")
	dropped := relayLogValue(t, filepath.Join(out.Dir, relay.LogFile), "dropped_commits")
	require.Positive(t, dropped)
	assert.InDelta(t, dropped, float64(a.LostInRelay), 1, "%+v", a)
	assert.InDelta(t, dropped, float64(s.HostsShort[0].Missing()), 1)
	assert.Equal(t, report.Lost, report.Outcome(s), "LOST outranks %s", s.Judged.Verdict)
	assert.True(t, strings.HasPrefix(report.Headline(s), "LOST: "), report.Headline(s))
	md, err := os.ReadFile(filepath.Join(out.Dir, rundir.Report))
	require.NoError(t, err)
	assert.Contains(t, string(md), "— LOST\n", "the title names the outcome")
	j, err := os.ReadFile(filepath.Join(out.Dir, rundir.JUnit))
	require.NoError(t, err)
	assert.Contains(t, string(j), `<failure message="LOST"`, "CI fails on it")
	lines := readLines(t, filepath.Join(out.Dir, rundir.Samples))
	n := 0
	for _, l := range lines {
		if _, ok := l.Context[rundir.DeliveryInterval]; ok {
			n++
		}
	}
	assert.Greater(t, n, len(lines)/2, "most samples carry their own interval's delivery")

	cfg = processSoak(t, h, 6*time.Second)
	cfg.Judge.MinSlopeMiBPerHour = 5000
	out, err = Run(context.Background(), cfg)
	require.NoError(t, err)
	require.NotNil(t, out.Summary.Delivered)
	assert.InDelta(t, 1, out.Summary.Delivered.Ratio, 0.001, "without the fault every commit due is delivered")
	assert.NotEqual(t, report.Lost, report.Outcome(out.Summary))
}

// relayLogValue is a number the test relay logged as key in its last JSON
// line carrying it: its own count of what it did on purpose.
func relayLogValue(t *testing.T, path, key string) float64 {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	v, found := 0.0, false
	for _, line := range strings.Split(string(b), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		if x, ok := m[key].(float64); ok {
			v, found = x, true
		}
	}
	require.True(t, found, "%s logs no %s", path, key)
	return v
}

// A relay that stops reading one host (closes its connection, never dials
// it again) is found dark from the moment it let go, within a sample, and
// named with its own log line; the commits the host wrote after are
// accounted as written while the relay was away.
func TestControllerFindsTheHostTheRelayStopsReading(t *testing.T) {
	h := newProcessHarness(t)
	cfg := processSoak(t, h, 8*time.Second)
	gone := fakepds.HostName(1, "test")
	cfg.Profile = &givingUpRelay{leakyRelay{Env: map[string]string{"ABANDON_HOST": gone + ":3s"}}}
	cfg.DarkAfter = 2 * time.Second
	cfg.Judge.MinSlopeMiBPerHour = 5000 // memory's verdict stays out of the way
	out, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	s := out.Summary
	require.Len(t, s.DarkHosts, 1, "%+v", s.DarkHosts)
	d := s.DarkHosts[0]
	assert.Equal(t, gone, d.Host)
	require.NotEmpty(t, d.LogLines)
	let, ok := lineTime(d.LogLines[0])
	require.True(t, ok, d.LogLines[0])
	start := s.Started.Add(time.Duration(d.StartS * float64(time.Second)))
	assert.InDelta(t, 0, start.Sub(let).Seconds(), cfg.SampleEvery.Seconds(), "dark from when the relay let go (%s), not from when it was found", let)
	require.NotNil(t, s.Findings.Accounting)
	a := *s.Findings.Accounting
	assert.Equal(t, a.Written, a.Sum())
	assert.Positive(t, a.NeverSentAway)
	// What reached the relay from the host it let go was passed on: that
	// host's own row, where no end-of-run race can reach (the run-wide
	// bucket also holds the other hosts' commits as the run ends, to
	// within a commit, as the planted-loss test allows).
	t.Logf("%+v", a)
	assert.LessOrEqual(t, a.LostInRelay, uint64(1))
	rows, err := rundir.ReadHosts(filepath.Join(out.Dir, rundir.HostsCSV))
	require.NoError(t, err)
	i := slices.IndexFunc(rows, func(r rundir.HostRow) bool { return r.Host == gone })
	require.GreaterOrEqual(t, i, 0, "%s in %s", gone, rundir.HostsCSV)
	assert.Positive(t, rows[i].Sent)
	assert.Equal(t, rows[i].Sent, rows[i].Delivered, "what reached the relay from %s was passed on", gone)
}

// The same relay with no fault, under outages that come and go: every
// commit is accounted for (none lost in the relay but in transit as the
// last outages cut), no host is dark, and the outcome is memory's alone.
func TestControllerOutagesAloneLeaveNoDarkHost(t *testing.T) {
	h := newProcessHarness(t)
	cfg := processSoak(t, h, 10*time.Second)
	cfg.Outages = replay.Outages{Every: time.Second, Length: 500 * time.Millisecond}
	cfg.DarkAfter = 3 * time.Second
	cfg.Judge.MinSlopeMiBPerHour = 5000
	out, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	s := out.Summary
	require.Positive(t, s.Findings.Load.Report.Outages, "outages were planted")
	assert.Empty(t, s.DarkHosts)
	require.NotNil(t, s.Findings.Accounting)
	a := *s.Findings.Accounting
	t.Logf("%+v", a)
	assert.Equal(t, a.Written, a.Sum())
	// A commit written to the socket as an outage cuts the connection is
	// lost in transit; the relay's cursor gets it again when it redials,
	// unless the run ends first. The ledger cannot tell that from the
	// relay's own loss, so the last outages may leave a commit or two.
	assert.LessOrEqual(t, a.LostInRelay, uint64(3))
	assert.Zero(t, a.Trimmed, "the fleet's history covers every outage")
	assert.Positive(t, a.Delivered)
	assert.NotEqual(t, report.Lost, report.Outcome(s))
}

// Both arms of an A/B soak are fed the same frames by one fleet, each is a
// complete run directory, and the comparison on top fails CI when B grows
// more: B retains 64 KiB per frame, A nothing.
func TestControllerABFairnessAndReport(t *testing.T) {
	h := newProcessHarness(t)
	cfg := processSoak(t, h, 8*time.Second)
	cfg.Profile = &leakyRelay{Env: map[string]string{"LEAK_BYTES_PER_FRAME": "0"}}
	cfg.Compare = &Compare{Profile: &leakyRelay{Env: map[string]string{"LEAK_BYTES_PER_FRAME": "65536"}}}
	// B retains about 20 GiB/h; A's Go runtime, in its first seconds, grows
	// at hundreds of MiB/h, which any gate below that would call a leak.
	cfg.Judge.MinSlopeMiBPerHour = 5000
	out, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	require.NotNil(t, out.AB)
	ab := *out.AB
	t.Logf("%s", report.HeadlineAB(ab))
	assert.Positive(t, ab.A.CommitsSent)
	assert.Equal(t, verdict.Leak, ab.B.Judged.Verdict, ab.B.Judged.Reason)
	assert.NotEqual(t, verdict.Leak, ab.A.Judged.Verdict, ab.A.Judged.Reason)
	assert.Equal(t, verdict.Leak, ab.Verdict, "B grows materially more than A")
	assertABRunDir(t, out.Dir, ab)
}

// assertABRunDir checks what an A/B soak that found B leaking leaves: both
// arms fed the same commits and passing them on, each a complete run
// directory, the comparison on top failing CI.
func assertABRunDir(t *testing.T, dir string, ab report.AB) {
	t.Helper()
	assert.Equal(t, ab.A.CommitsSent, ab.B.CommitsSent, "one fleet, one stream")
	assert.Greater(t, ab.A.Delivery, 0.95)
	assert.Greater(t, ab.B.Delivery, 0.95)
	for _, f := range []string{rundir.Report, rundir.Plot, rundir.Verdict, rundir.JUnit, rundir.Run,
		filepath.Join(rundir.A, rundir.Samples), filepath.Join(rundir.B, rundir.Samples),
		filepath.Join(rundir.A, rundir.Report), filepath.Join(rundir.B, rundir.Report), filepath.Join(rundir.B, "relay.log")} {
		st, err := os.Stat(filepath.Join(dir, f))
		if assert.NoError(t, err, f) {
			assert.Positive(t, st.Size(), f)
		}
	}
	j, err := os.ReadFile(filepath.Join(dir, rundir.JUnit))
	require.NoError(t, err)
	assert.Contains(t, string(j), `failures="1"`, "the comparison fails CI")
}

// A single run's report holds every section the run earned (the load, the
// consumers, the rig's own cost) beside the verdict, and its files.
func TestControllerReportAssembly(t *testing.T) {
	h := newProcessHarness(t)
	cfg := processSoak(t, h, 5*time.Second)
	cfg.Consumers, cfg.ConsumerChurn, cfg.ConsumerMix = 2, time.Second, crowd.Mix{Resume: 1}
	out, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	md, err := os.ReadFile(filepath.Join(out.Dir, rundir.Report))
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(md), "# relaysoak proc — "+string(out.Summary.Judged.Verdict)), "report.md opens with the verdict")
	for _, sec := range []string{"## Load", "## Consumers", "## Rig"} {
		assert.Contains(t, string(md), sec)
	}
	for _, f := range []string{rundir.Plot, rundir.Verdict, rundir.JUnit, rundir.Run, rundir.Events, rundir.RigSamples, "relay.log"} {
		st, err := os.Stat(filepath.Join(out.Dir, f))
		if assert.NoError(t, err, f) {
			assert.Positive(t, st.Size(), f)
		}
	}
	last := readLines(t, filepath.Join(out.Dir, rundir.Samples))
	require.NotEmpty(t, last)
	assert.Positive(t, last[len(last)-1].Signals[rundir.SignalRssAnon], "the process's /proc is read")
	assert.Positive(t, last[len(last)-1].Signals["rss"], "its metrics are read")
	assert.Positive(t, last[len(last)-1].Context["crowd_connects"])
}

// Stuck clients, end to end in seconds: the test relay as a process pins
// 32 MiB of its Go heap for each subscriber whose queue is full, for as
// long as it stays connected (STUCK_PIN), and never cuts one off; its heap
// teeth a second apart keep the collector, and so the live heap, prompt.
// Consumers that get stuck at random times are priced from the live heap
// against their number: within ±25% of what the relay pins, released: no.
func TestControllerPricesStuckClients(t *testing.T) {
	const pin = 32 << 20
	h := newProcessHarness(t)
	cfg := processSoak(t, h, 40*time.Second)
	cfg.Rate = 200
	cfg.Profile = &leakyRelay{Kept: true, Env: map[string]string{"STUCK_PIN": strconv.Itoa(pin), "SUBSCRIBER_QUEUE": "16", "HEAP_TEETH": "8MiB:1s"}}
	cfg.Consumers, cfg.ConsumerChurn, cfg.ConsumerMix = 5, 8*time.Second, crowd.Mix{Stuck: 1}
	cfg.Judge = keptProcessJudge
	out, err := Run(t.Context(), cfg)
	require.NoError(t, err)
	cl := out.Summary.Findings.Consumers
	require.NotNil(t, cl)
	require.NotNil(t, cl.Stuck, "consumers got stuck: %+v", cl.Counts)
	s := *cl.Stuck
	t.Logf("%s; counts %+v", s.Sentence(), cl.Counts)
	require.Positive(t, s.Stuck)
	require.Empty(t, s.Reason)
	assert.Equal(t, rundir.SignalLiveHeap, s.Signal)
	assert.InEpsilon(t, float64(pin), s.BytesPerClient, 0.25, "MiB per stuck client within ±25%% of the %d MiB pinned", pin>>20)
	assert.Zero(t, s.Released, "the relay held every stuck client to the end")
	assert.Contains(t, s.Sentence(), "released: no")
	md, err := os.ReadFile(filepath.Join(out.Dir, rundir.Report))
	require.NoError(t, err)
	assert.Contains(t, string(md), "per stuck client")
	assert.Contains(t, string(md), "a bound per client, not a slope")
}
