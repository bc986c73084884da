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
	"github.com/relaysoak/relaysoak/soak/crowd"
	"github.com/relaysoak/relaysoak/soak/heapdiff"
	"github.com/relaysoak/relaysoak/soak/leaks"
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
	assert.Contains(t, sec.Markdown, "10 consumers besides the measuring one, reconnecting every 30s on average, each (resume 0.4, old cursor 0.2, slow 0.2, vanish 0.2; slow readers stop for 1m0s).")
	assert.Contains(t, sec.Markdown, "| 41 | 12 | 0 | 3 | 0 | 0 | 0 | 9000 | 0 |")
	assert.Contains(t, sec.Markdown, "Last error: `websocket: close 1006`")
	assert.Contains(t, Consumers(ConsumerLoad{Consumers: 2}).Markdown, "reconnecting never on purpose")
}
