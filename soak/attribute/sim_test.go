package attribute

import (
	"math"
	"math/rand/v2"
	"slices"
)

// Baseline rates per second used by the synthetic runs.
var simRates = map[Factor]float64{
	Frames:             200,
	Resolutions:        0.5,
	HostReconnects:     0.05,
	ConsumerReconnects: 0.1,
}

// fourFactors is the plan the statistical tests were tuned on (their seeds
// and their rates of false findings): every factor but new identities,
// which the sim counts only when the plan raises them.
var fourFactors = PlanConfig{Factors: []Factor{Frames, Resolutions, HostReconnects, ConsumerReconnects}}

// simIdentityChurn is the chance that a consumer reconnect comes as a new
// identity at baseline (the crowd's draw): new identities follow
// reconnects, and their own phase raises the chance, not the reconnects.
const simIdentityChurn = 0.3

// sim describes one synthetic run.
type sim struct {
	leak        map[Factor]float64 // bytes retained per unit; Time: bytes per second
	noiseMiB    float64            // stationary sd of the AR(1) noise
	phi         float64            // AR(1) coefficient per 10 s sample
	sawMiB      float64            // sawtooth amplitude (GC cycle)
	sawPeriodS  float64
	dtS         float64 // sample interval
	warmFillMiB float64 // caches filling during the warm-up
}

func defaultSim(leak map[Factor]float64) sim {
	return sim{leak: leak, noiseMiB: 2, phi: 0.8, sawMiB: 3, sawPeriodS: 130, dtS: 10, warmFillMiB: 80}
}

// poisson draws a count with mean lambda (normal approximation above 50).
func poisson(r *rand.Rand, lambda float64) float64 {
	if lambda > 50 {
		return math.Max(0, math.Round(lambda+math.Sqrt(lambda)*r.NormFloat64()))
	}
	l, k, p := math.Exp(-lambda), 0.0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// run simulates the plan second by second: counts arrive as Poisson at the
// phase's rates, memory is sampled every dtS.
func (s sim) run(p Plan, seed uint64) Observations {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	spans := p.Spans()
	total := int(p.Total().Seconds())
	obs := Observations{Counts: map[Factor][]float64{}}
	cum := map[Factor]float64{}
	factors := AllFactors
	if !slices.ContainsFunc(p.Phases, func(ph Phase) bool { return ph.Raised == NewIdentities }) {
		factors = slices.DeleteFunc(slices.Clone(AllFactors), func(f Factor) bool { return f == NewIdentities })
	}
	innov := s.noiseMiB * math.Sqrt(1-s.phi*s.phi)
	ar := s.noiseMiB * r.NormFloat64()
	phase0 := r.Float64() * s.sawPeriodS
	for sec := 1; sec <= total; sec++ {
		t := float64(sec)
		raised := Factor("")
		mult := 1.0
		for _, sp := range spans {
			if t > sp.StartS && t <= sp.EndS {
				raised = sp.Raised
				for _, ph := range p.Phases {
					if ph.Name == sp.Name {
						mult = ph.Multiplier
					}
				}
			}
		}
		for _, f := range AllFactors {
			rate := simRates[f]
			if f == raised {
				rate *= mult
			}
			if f == NewIdentities {
				continue
			}
			k := poisson(r, rate)
			cum[f] += k
			if f == ConsumerReconnects && slices.Contains(factors, NewIdentities) {
				p := simIdentityChurn
				if raised == NewIdentities {
					p = min(1, p*mult)
				}
				for range int(k) {
					if r.Float64() < p {
						cum[NewIdentities]++
					}
				}
			}
		}
		if sec%int(s.dtS) != 0 {
			continue
		}
		ar = s.phi*ar + innov*r.NormFloat64()
		mem := 300.0 + s.warmFillMiB*(1-math.Exp(-t/100)) + ar
		mem += s.sawMiB * (math.Mod(t+phase0, s.sawPeriodS) / s.sawPeriodS)
		bytes := mem * (1 << 20)
		for f, b := range s.leak {
			if f == Time {
				bytes += b * t
			} else {
				bytes += b * cum[f]
			}
		}
		obs.T = append(obs.T, t)
		obs.Memory = append(obs.Memory, bytes)
		for _, f := range factors {
			obs.Counts[f] = append(obs.Counts[f], cum[f])
		}
	}
	return obs
}
