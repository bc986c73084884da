package replay

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Weights says how the traffic spreads over the hosts.
type Weights struct {
	// Kind is "zipf" (default), "uniform" or "capture" (the capture's own:
	// host i carries what the capture's i-th busiest PDS carried, by the
	// PDS endpoints of its accounts' DID documents; hosts past the
	// capture's count stay idle).
	Kind string
	// S is the Zipf exponent (default DefaultZipfS): host i (0-based) weighs
	// 1/(i+1)^S.
	S float64
}

// DefaultZipfS skews like the live network, where a few large PDS hosts
// carry most of the traffic and thousands of small ones a little each: at
// 2,750 hosts the busiest carries 22%, the top 10 about 54%, the top 100
// about 79% and the last 2,000 about 7% together.
const DefaultZipfS = 1.2

func (w Weights) withDefaults() (Weights, error) {
	switch w.Kind {
	case "":
		w.Kind = "zipf"
	case "zipf", "uniform", "capture":
	default:
		return w, fmt.Errorf("replay: host weights must be zipf, uniform or capture, got %q", w.Kind)
	}
	if w.S == 0 {
		w.S = DefaultZipfS
	}
	if w.S < 0 || math.IsNaN(w.S) || math.IsInf(w.S, 0) {
		return w, fmt.Errorf("replay: Zipf exponent must be a positive number, got %g", w.S)
	}
	return w, nil
}

// ZipfWeights are n weights 1/(i+1)^s, normalised to sum to 1.
func ZipfWeights(n int, s float64) []float64 {
	w := make([]float64, n)
	var sum float64
	for i := range w {
		w[i] = math.Pow(float64(i+1), -s)
		sum += w[i]
	}
	for i := range w {
		w[i] /= sum
	}
	return w
}

// UniformWeights are n equal weights summing to 1.
func UniformWeights(n int) []float64 {
	w := make([]float64, n)
	for i := range w {
		w[i] = 1 / float64(n)
	}
	return w
}

// alias samples an index by weight in constant time (Vose's alias method):
// the scheduler picks a host per frame, tens of thousands of times a second.
type alias struct {
	prob  []float64
	alias []int
}

func newAlias(weights []float64) (*alias, error) {
	n := len(weights)
	var sum float64
	for i, w := range weights {
		if w < 0 || math.IsNaN(w) {
			return nil, fmt.Errorf("replay: weight %d is %g", i, w)
		}
		sum += w
	}
	if n == 0 || sum <= 0 {
		return nil, fmt.Errorf("replay: %d host weights summing to %g: nothing to pick from", n, sum)
	}
	a := &alias{prob: make([]float64, n), alias: make([]int, n)}
	scaled := make([]float64, n)
	var small, large []int
	for i, w := range weights {
		scaled[i] = w * float64(n) / sum
		if scaled[i] < 1 {
			small = append(small, i)
		} else {
			large = append(large, i)
		}
	}
	for len(small) > 0 && len(large) > 0 {
		s, l := small[len(small)-1], large[len(large)-1]
		small = small[:len(small)-1]
		a.prob[s], a.alias[s] = scaled[s], l
		scaled[l] += scaled[s] - 1
		if scaled[l] < 1 {
			large = large[:len(large)-1]
			small = append(small, l)
		}
	}
	for _, i := range append(small, large...) {
		a.prob[i], a.alias[i] = 1, i
	}
	return a, nil
}

func (a *alias) pick(rng *rand.Rand) int {
	i := rng.IntN(len(a.prob))
	if rng.Float64() < a.prob[i] {
		return i
	}
	return a.alias[i]
}
