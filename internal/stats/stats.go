// Package stats holds the statistics the verdict (soak/verdict) and
// attribution (soak/attribute) share, once: robust location and scale, the
// normal distribution, the lag-1 autocorrelation with the cap both place on
// it, and the sharp drops that end a sawtooth's teeth (FindDrops).
//
// It must not know what a series measures or how it was sampled.
package stats

import (
	"math"
	"slices"
)

// Median of xs, sorting a copy; NaN when empty.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	return MedianInPlace(slices.Clone(xs))
}

// MedianInPlace is Median without the copy: it sorts xs.
func MedianInPlace(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	slices.Sort(xs)
	return MedianOfSorted(xs)
}

// MedianOfSorted is the median of xs, already sorted and not empty.
func MedianOfSorted(xs []float64) float64 {
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// MAD is the median absolute deviation around the median, scaled by 1.4826
// so that it estimates σ for normal data; NaN when empty.
func MAD(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	m := Median(xs)
	d := make([]float64, len(xs))
	for i, x := range xs {
		d[i] = math.Abs(x - m)
	}
	return 1.4826 * MedianInPlace(d)
}

// NormalCDF is Φ(x).
func NormalCDF(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }

// NormalQuantile is Φ⁻¹(p) for 0 < p < 1.
func NormalQuantile(p float64) float64 { return -math.Sqrt2 * math.Erfcinv(2*p) }

// Lag1 is the lag-1 autocorrelation of u (0 for fewer than 3 points or no
// variance).
func Lag1(u []float64) float64 {
	n := len(u)
	if n < 3 {
		return 0
	}
	var m float64
	for _, v := range u {
		m += v
	}
	m /= float64(n)
	var num, den float64
	for i, v := range u {
		den += (v - m) * (v - m)
		if i > 0 {
			num += (v - m) * (u[i-1] - m)
		}
	}
	if den == 0 {
		return 0
	}
	return num / den
}

// MaxRho caps a lag-1 autocorrelation used as an AR(1) coefficient: nearer
// 1, a prewhitened column is a mere rate (the intercept and time columns
// blur) and a long-run variance or bandwidth built on it diverges.
const MaxRho = 0.95

// ClampRho is phi in [0, MaxRho].
func ClampRho(phi float64) float64 { return min(max(phi, 0), MaxRho) }
