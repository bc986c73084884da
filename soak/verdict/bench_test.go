package verdict

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// weekLong is a week of 10-second samples (60,480): warm-up, GC sawtooth and
// a 20 MiB/hour leak.
func weekLong(leak float64) Trace {
	return Spec{
		Name: "week", Duration: 7 * 24 * time.Hour, BaseMiB: 100, WarmupMiB: 1400,
		WarmupTau: 20 * time.Minute, LeakMiBPerHour: leak, SawtoothMiB: 100,
		SawtoothPeriod: 3 * time.Minute, NoiseMiB: 5,
	}.Generate(1)
}

func BenchmarkJudgeWeek(b *testing.B) {
	tr := weekLong(20)
	b.ReportMetric(float64(len(tr.Series)), "samples")
	b.ResetTimer()
	for b.Loop() {
		if _, err := Judge(tr.Series, tr.Ctx, Config{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkJudgeHour(b *testing.B) {
	tr := weekLong(20)
	s := tr.Series[:360]
	for b.Loop() {
		if _, err := Judge(s, tr.Ctx, Config{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLiveAdd(b *testing.B) {
	l := NewLive(0)
	var t float64
	for b.Loop() {
		t += 10
		l.Add(Point{T: t, Bytes: 1 << 30})
	}
}

func BenchmarkLiveJudgeWeek(b *testing.B) {
	tr := weekLong(20)
	l := NewLive(0)
	for _, p := range tr.Series {
		l.Add(p)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := l.Judge(tr.Ctx, Config{}); err != nil {
			b.Fatal(err)
		}
	}
}

func TestJudgeWeek(t *testing.T) {
	for _, c := range []struct {
		leak float64
		want Verdict
	}{{0, Pass}, {20, Leak}} {
		tr := weekLong(c.leak)
		require.Len(t, tr.Series, 60481)
		start := time.Now()
		res, err := Judge(tr.Series, tr.Ctx, Config{})
		require.NoError(t, err)
		t.Logf("week, leak %.0f MiB/h: %s slope %.2f in %v", c.leak, res.Verdict, res.SlopeMiBPerHour, time.Since(start))
		assert.Equal(t, c.want, res.Verdict, res.Reason)
		assert.InDelta(t, c.leak, res.SlopeMiBPerHour, 2)
	}
}

func TestLiveBounded(t *testing.T) {
	tr := weekLong(20)
	l := NewLive(0)
	for i, p := range tr.Series {
		l.Add(p)
		if i%5000 == 0 {
			assert.LessOrEqual(t, len(l.Series()), DefaultMaxPoints+1)
		}
	}
	s := l.Series()
	assert.LessOrEqual(t, len(s), DefaultMaxPoints+1)
	assert.Greater(t, len(s), DefaultMaxPoints/2)
	require.NoError(t, s.Validate())
	assert.InDelta(t, tr.Series[0].T, s[0].T, 7*24*3600/float64(DefaultMaxPoints))
	res, err := l.Judge(tr.Ctx, Config{})
	require.NoError(t, err)
	assert.Equal(t, Leak, res.Verdict, res.Reason)
	assert.InDelta(t, 20, res.SlopeMiBPerHour, 2)

	// Early in a run the live view is the raw series.
	l = NewLive(0)
	for _, p := range tr.Series[:100] {
		l.Add(p)
	}
	assert.Equal(t, tr.Series[:100], l.Series())
	l.Add(tr.Series[50]) // out of order: dropped
	assert.Len(t, l.Series(), 100)
}
