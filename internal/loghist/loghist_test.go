package loghist

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every quantile of 1..10,000 ms is the upper bound of the bucket holding
// the exact value: at least that value, and less than a factor above it.
func TestQuantilesOfUniform(t *testing.T) {
	h := New(Config{})
	require.Zero(t, h.Quantile(0.5), "a quantile of nothing is 0")
	const n = 10000
	for i := 1; i <= n; i++ {
		h.Observe(time.Duration(i) * time.Millisecond)
	}
	for _, q := range []float64{0.0001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999} {
		exact := time.Duration(math.Ceil(q*n)) * time.Millisecond
		got := h.Quantile(q)
		assert.GreaterOrEqual(t, got, exact, "q=%g", q)
		assert.Less(t, float64(got), float64(exact)*1.02, "q=%g: within the default 2%%", q)
	}
	assert.Equal(t, 10*time.Second, h.Quantile(1), "the top quantile is the max seen")

	s := h.Summary()
	assert.Equal(t, uint64(n), s.Count)
	assert.Zero(t, s.Negative)
	assert.Equal(t, 10*time.Second, s.Max)
	assert.InEpsilon(t, 5000.5*float64(time.Millisecond), float64(s.Mean), 1e-9, "the mean is exact, not bucketed")
	assert.Equal(t, h.Quantile(0.999), s.P999)
}

// An exponential distribution with a 100 ms mean, sampled at evenly spaced
// ranks: its quantile q is -ln(1-q) × 100 ms, to within the factor (5%).
func TestQuantilesOfExponential(t *testing.T) {
	h := New(Config{Min: 10 * time.Microsecond, Max: time.Hour, Factor: 1.05})
	const n = 100000
	mean := 100 * time.Millisecond
	for i := 1; i <= n; i++ {
		h.Observe(time.Duration(-math.Log(1-float64(i)/(n+1)) * float64(mean)))
	}
	s := h.Summary()
	require.Equal(t, uint64(n), s.Count)
	for q, got := range map[float64]time.Duration{0.5: s.P50, 0.9: s.P90, 0.99: s.P99, 0.999: s.P999} {
		want := -math.Log(1-q) * float64(mean)
		assert.GreaterOrEqual(t, float64(got), want*0.999, "q=%g", q)
		assert.Less(t, float64(got), want*1.05*1.001, "q=%g", q)
	}
	assert.InEpsilon(t, float64(mean), float64(s.Mean), 0.01)
}

// With Min 1 ms, Max 1 s and a factor of 2, bucket i holds (2^(i-1), 2^i] ms,
// bucket 0 everything up to 1 ms, and eleven buckets reach 1 s (1,024 ms).
func TestBucketBounds(t *testing.T) {
	h := New(Config{Min: time.Millisecond, Max: time.Second, Factor: 2})
	require.Len(t, h.buckets, 12, "11 buckets up to Max, and the overflow")
	for i := range 11 {
		assert.Equal(t, time.Duration(1<<i)*time.Millisecond, h.upper(i), "bucket %d", i)
	}
	for d, want := range map[time.Duration]int{
		0:                                        0,
		time.Millisecond:                         0,
		time.Millisecond + time.Microsecond:      1,
		2*time.Millisecond - time.Microsecond:    1,
		2*time.Millisecond + time.Microsecond:    2,
		time.Second:                              10,
		1024*time.Millisecond - time.Microsecond: 10,
		1024*time.Millisecond + time.Microsecond: 11,
		5 * time.Hour:                            11,
	} {
		assert.Equal(t, want, h.index(d), "%s", d)
	}

	defaults := New(Config{})
	last := len(defaults.buckets) - 2
	assert.GreaterOrEqual(t, defaults.upper(last), time.Hour, "the default buckets reach Max")
	assert.Less(t, defaults.upper(last-1), time.Hour, "and no further than one bucket past it")
	assert.Less(t, len(defaults.buckets), 1000, "fixed size, whatever the run's length")
}

func TestOverflowNegativeAndTake(t *testing.T) {
	h := New(Config{Min: time.Millisecond, Max: time.Second, Factor: 2})
	h.Observe(1300 * time.Microsecond)
	assert.Equal(t, 1300*time.Microsecond, h.Quantile(0.5), "a quantile is never above the max seen")

	h.Observe(5 * time.Hour)
	h.Observe(-time.Second)
	s := h.Summary()
	require.Equal(t, uint64(2), s.Count, "the negative value is not counted with the rest")
	assert.Equal(t, uint64(1), s.Negative)
	assert.Equal(t, 5*time.Hour, s.Max)
	assert.Equal(t, 5*time.Hour, s.P99, "the overflow bucket reports the max seen")

	assert.Equal(t, s, h.Take())
	assert.Equal(t, Summary{}, h.Summary(), "Take empties the histogram")
	h.Observe(3 * time.Millisecond)
	assert.Equal(t, 3*time.Millisecond, h.Summary().Max, "and it counts afresh")
}
