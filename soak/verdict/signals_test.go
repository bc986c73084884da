package verdict

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPrimary(t *testing.T) {
	assert.Equal(t, "vm_rss", Primary([]string{"vm_rss", "rss_anon_heap", "cgroup_working_set"}))
	assert.Equal(t, "b", Primary([]string{"go_heap", "b", "a_heap"}), "the first non-heap name, in sorted order")
	assert.Empty(t, Primary(nil))
}

// Carry moves the verdict to another signal and recomputes the disagreements
// against it.
func TestCarry(t *testing.T) {
	flat := Series{}
	leak := Series{}
	for i := range 600 {
		ts := float64(10 * i)
		flat = append(flat, Point{T: ts, Bytes: 500 * mib})
		leak = append(leak, Point{T: ts, Bytes: 500*mib + ts/3600*100*mib})
	}
	rep, err := JudgeSignals(map[string]Series{"rss_anon": leak, "other": flat}, Context{}, Config{})
	require.NoError(t, err)
	require.Equal(t, "rss_anon", rep.CarriedBy)
	require.Equal(t, Leak, rep.Verdict)

	moved, err := rep.Carry("other")
	require.NoError(t, err)
	assert.Equal(t, "other", moved.CarriedBy)
	assert.Equal(t, "other", moved.Signal)
	assert.Equal(t, Pass, moved.Verdict)
	assert.Equal(t, rep.Signals, moved.Signals)
	require.Len(t, moved.Disagreements, 1)
	assert.Contains(t, moved.Disagreements[0], "rss_anon rises")

	_, err = rep.Carry("vm_rss")
	assert.ErrorContains(t, err, "signal vm_rss is not among the report's signals")
}
