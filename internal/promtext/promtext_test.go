package promtext

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// relayPage is a /metrics page shaped like a relay's with hosts upstream
// hosts: per-host counters and histograms, then the few families the rig
// reads.
func relayPage(hosts int) string {
	var b strings.Builder
	b.WriteString("# HELP repo_commits_received_counter commits received\n# TYPE repo_commits_received_counter counter\n")
	for i := range hosts {
		fmt.Fprintf(&b, "repo_commits_received_counter{pds=\"pds%04d.test\"} %d\n", i+1, i)
	}
	b.WriteString("# HELP events_latency per-host latency\n# TYPE events_latency histogram\n")
	for i := range hosts {
		for _, le := range []string{"0.01", "0.1", "1", "+Inf"} {
			fmt.Fprintf(&b, "events_latency_bucket{pds=\"pds%04d.test\",le=\"%s\"} %d\n", i+1, le, i)
		}
		fmt.Fprintf(&b, "events_latency_sum{pds=\"pds%04d.test\"} 1.5\nevents_latency_count{pds=\"pds%04d.test\"} %d\n", i+1, i+1, i)
	}
	b.WriteString("# TYPE atproto_identity_resolve_did counter\natproto_identity_resolve_did{status=\"success\"} 7\natproto_identity_resolve_did{status=\"error\"} 1\n")
	b.WriteString("# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 3.2e+07\n")
	return b.String()
}

func TestParseMetricsOnlyNamedFamilies(t *testing.T) {
	page := relayPage(50)
	all, err := Parse(strings.NewReader(page))
	require.NoError(t, err)
	some, err := Parse(strings.NewReader(page), "repo_commits_received_counter", "process_resident_memory_bytes", "events_latency")
	require.NoError(t, err)
	for _, name := range []string{"repo_commits_received_counter", "process_resident_memory_bytes", "events_latency"} {
		want, ok := all.Sum(name, nil)
		require.True(t, ok, name)
		got, ok := some.Sum(name, nil)
		assert.True(t, ok, name)
		assert.Equal(t, want, got, name)
	}
	assert.Len(t, some, 3, "families not asked for are left out")
	_, ok := some.Sum("atproto_identity_resolve_did", nil)
	assert.False(t, ok)

	// A page broken in a family nobody asked for still yields the others.
	broken := "garbage { line\n" + page
	_, err = Parse(strings.NewReader(broken))
	assert.Error(t, err)
	some, err = Parse(strings.NewReader(broken), "atproto_identity_resolve_did")
	require.NoError(t, err)
	e, _ := some.Sum("atproto_identity_resolve_did", map[string]string{"status": "error"})
	assert.Equal(t, 1.0, e)
}

// BenchmarkParseRelayPage: a relay page at production shape (2,750
// hosts), parsed whole and for the two families the rig reads.
func BenchmarkParseRelayPage(b *testing.B) {
	page := relayPage(2750)
	b.Run("all", func(b *testing.B) {
		b.SetBytes(int64(len(page)))
		for b.Loop() {
			if _, err := Parse(strings.NewReader(page)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("named", func(b *testing.B) {
		b.SetBytes(int64(len(page)))
		for b.Loop() {
			if _, err := Parse(strings.NewReader(page), "atproto_identity_resolve_did", "process_resident_memory_bytes"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestMetricsParse(t *testing.T) {
	text := `# HELP repo_commits_received_counter The total number of commits received
# TYPE repo_commits_received_counter counter
repo_commits_received_counter{pds="pds0001.test"} 10
repo_commits_received_counter{pds="pds0002.test"} 32
# TYPE atproto_identity_resolve_did counter
atproto_identity_resolve_did{status="success"} 7
atproto_identity_resolve_did{status="error"} 1
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 3.2e+07
`
	m, err := Parse(strings.NewReader(text))
	require.NoError(t, err)
	sum, ok := m.Sum("repo_commits_received_counter", nil)
	assert.True(t, ok)
	assert.Equal(t, 42.0, sum)
	sum, _ = m.Sum("atproto_identity_resolve_did", map[string]string{"status": "success"})
	assert.Equal(t, 7.0, sum)
	rss, ok := m.Sum("process_resident_memory_bytes", nil)
	assert.True(t, ok)
	assert.Equal(t, 3.2e7, rss)
	_, ok = m.Sum("absent", nil)
	assert.False(t, ok)
	assert.Equal(t, map[string]float64{"pds0001.test": 10, "pds0002.test": 32}, m.ByLabel("repo_commits_received_counter", "pds"))

	_, err = Parse(strings.NewReader("this is { not prometheus"))
	assert.Error(t, err)
}
