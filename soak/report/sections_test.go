package report

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/relaysoak/relaysoak/internal/bytesize"
	"github.com/relaysoak/relaysoak/soak/attribute"
	"github.com/relaysoak/relaysoak/soak/crowd"
	"github.com/relaysoak/relaysoak/soak/heapdiff"
	"github.com/relaysoak/relaysoak/soak/leaks"
	"github.com/relaysoak/relaysoak/soak/probe"
)

func TestHeapGrowthSection(t *testing.T) {
	g := heapdiff.Growth{Span: 95 * time.Minute, TotalBefore: 100 << 20, TotalAfter: 260 << 20, Top: []heapdiff.Func{
		{Name: "main.cacheIdentity", Flat: 120 << 20, Cum: 130 << 20, FlatAfter: 150 << 20},
		{Name: "main.decode", Flat: -2 << 10, Cum: 4 << 10, FlatAfter: 512},
	}}
	sec := HeapGrowth(g)
	assert.Equal(t, "Heap growth (end of warm-up → end of run)", sec.Title)
	assert.True(t, strings.HasPrefix(sec.Markdown, "The Go heap in use went from 100.0 MiB to 260.0 MiB over 1h35m0s; the function whose own allocations grew most is main.cacheIdentity (+120.0 MiB)."), sec.Markdown)
	assert.Contains(t, sec.Markdown, "inuse_space")
	assert.Contains(t, sec.Markdown, "| `main.cacheIdentity` | +120.0 MiB | +130.0 MiB | 150.0 MiB |")
	assert.Contains(t, sec.Markdown, "| `main.decode` | -2.0 KiB | +4.0 KiB | 512 B |")

	none := HeapGrowth(heapdiff.Growth{TotalBefore: 1 << 30, TotalAfter: 1 << 30})
	assert.Contains(t, none.Markdown, "1.00 GiB to 1.00 GiB")
	assert.Contains(t, none.Markdown, "No function's in-use heap grew")
}

// leakFixture reads one of soak/leaks' real or synthetic allocator logs.
func leakFixture(t *testing.T, name string, cfg leaks.Config) leaks.Report {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "leaks", "testdata", name))
	require.NoError(t, err)
	defer f.Close()
	r, err := leaks.Parse(f, name, cfg)
	require.NoError(t, err)
	return r
}

func TestLeakSitesSection(t *testing.T) {
	sec, ok := LeakSites(leakFixture(t, "synthetic-relay-interleaved.log", leaks.Config{}))
	require.True(t, ok)
	assert.Equal(t, "Leak sites (allocator report at shutdown)", sec.Title)
	md := sec.Markdown
	assert.True(t, strings.HasPrefix(md, "The allocator reported 9 leaked allocations at shutdown from 3 stacks; the top site, decodeFrame in /build/relay/src/firehose.zig:212, holds 5 (56%)."), md)
	assert.Contains(t, md, "| 1 | 5 | 55.6% | `decodeFrame in /build/relay/src/firehose.zig:212` |")
	assert.Contains(t, md, "ensureTotalCapacityPrecise in /usr/lib/zig/std/array_list.zig:457\n")

	sec, _ = LeakSites(leakFixture(t, "synthetic-relay-interleaved.log", leaks.Config{Top: 1, Frames: 2}))
	assert.Contains(t, sec.Markdown, "2 more stacks not shown")
	sec, _ = LeakSites(leakFixture(t, "comlink-3-no-stacks.log", leaks.Config{}))
	assert.Contains(t, sec.Markdown, "2 leaks had no stack trace")
	sec, _ = LeakSites(leakFixture(t, "synthetic-relay-cut-midstack.log", leaks.Config{}))
	assert.Contains(t, sec.Markdown, "6 (1 cut off)")
	assert.Contains(t, sec.Markdown, "lower bound")

	_, ok = LeakSites(leaks.Report{})
	assert.False(t, ok, "no leak report, no section")
}

func TestBytesIEC(t *testing.T) {
	assert.Equal(t, "512 B", bytesize.IEC(512))
	assert.Equal(t, "1.5 KiB", bytesize.IEC(1536))
	assert.Equal(t, "48.0 MiB", bytesize.IEC(48<<20))
	assert.Equal(t, "-2.00 GiB", bytesize.IEC(-2<<30))
}

func TestConsumersSection(t *testing.T) {
	sec := Consumers(ConsumerLoad{Consumers: 10, Churn: 30 * time.Second, Mix: crowd.DefaultMix, SlowFor: time.Minute,
		Counts: crowd.Counts{Connects: 41, CursorResumes: 12, CutOff: 3, Frames: 9000, LastError: "websocket: close 1006"}})
	assert.Equal(t, "Consumers", sec.Title)
	assert.Contains(t, sec.Markdown, "10 consumers besides the measuring one, reconnecting every 30s on average, each (resume 0.4, old cursor 0.2, slow 0.2, vanish 0.2, stuck 0; slow readers stop for 1m0s).")
	assert.Contains(t, sec.Markdown, "one for every consumer")
	assert.Contains(t, sec.Markdown, "| 41 | 12 | 0 | 3 | 0 | 0 | 0 | 9000 | 0 |")
	assert.Contains(t, sec.Markdown, "Last error: `websocket: close 1006`")
	assert.Contains(t, Consumers(ConsumerLoad{Consumers: 2}).Markdown, "reconnecting never on purpose")
}

// Identities, the relay's series and an attribution's cost per identity
// read as a bug report could quote them; stuck clients as a bound each.
func TestConsumersSectionIdentitiesAndStuck(t *testing.T) {
	md := Consumers(ConsumerLoad{Consumers: 20, Churn: time.Minute, Identities: 5, IdentityChurn: 0.3,
		Counts: crowd.Counts{NewIdentities: 812, Stuck: 3},
		Series: &MetricSeries{First: 240, Last: 1864, NewIdentities: 812, Grown: []probe.FamilySeries{
			{Family: "events_sent_counter", First: 2, Latest: 814}, {Family: "events_enqueued", First: 1, Latest: 407}}},
		PerIdentity: &attribute.Term{Factor: attribute.NewIdentities, BytesPerUnit: 4096, Lo: 3500, Hi: 4700, Significant: true},
		Stuck:       &StuckClients{Stuck: 3, BytesPerClient: 60 << 20, Lo: 55 << 20, Hi: 65 << 20, Signal: "live_heap", FitFromS: 300, LagS: 20},
	}).Markdown
	t.Log(md)
	assert.Contains(t, md, "5 regular, and a connect came as a never-seen one with chance 0.3; 812 presented in all")
	assert.Contains(t, md, "source addresses are not varied", "the report says what an identity is not")
	assert.Contains(t, md, "240 series when warm-up ended (or a quarter into the run) and 1864 at the last sample, while 812 new identities connected")
	assert.Contains(t, md, "`events_sent_counter` +812 (2 → 814, 1 per new identity), `events_enqueued` +406 (1 → 407, 0.5 per new identity)")
	assert.Contains(t, md, "Each new client identity kept 4 KiB (CI 3.4 KiB to 4.6 KiB) to the run's end: 1 GiB after 262144 new identities, 8738 a day to reach it within a month.")
	assert.Contains(t, md, "+60.0 MiB per stuck client (CI 55.0 to 65.0, live_heap, held from 20 s after it stopped reading), released: no, over 3 stuck clients")
	assert.Contains(t, md, "a bound per client, not a slope")

	s := StuckClients{Stuck: 2, Released: 2, Reason: "20 samples after the warm-up, at least 30 needed"}
	assert.False(t, s.Found())
	assert.Contains(t, s.Sentence(), "released: yes")
	assert.Contains(t, s.Sentence(), "not fitted: 20 samples")
	assert.Contains(t, StuckClients{Stuck: 3, Released: 1}.Sentence(), "released: 1 of 3")
}
