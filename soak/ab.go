package soak

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/relaysoak/relaysoak/relay"
	"github.com/relaysoak/relaysoak/soak/report"
	"github.com/relaysoak/relaysoak/soak/rundir"
)

// Compare is the B side of an A/B soak. Zero values take A's settings.
type Compare struct {
	// RelayImage of B; "" is indigo's relay, built here.
	RelayImage string
	// Profile of B; default A's (the same kind of relay, another build).
	Profile relay.Profile
	// MemLimit of B's container; default A's.
	MemLimit int64
}

// armSpec is one arm to start: its settings, directory and name.
type armSpec struct {
	cfg       Config
	dir, name string
	fairness  []string // warnings known before the run (the first arm's)
}

// armSpecs is the soak's arms: the run itself, or with Compare A and B,
// which differ only in what Compare sets, in a/ and b/ of the run directory.
func armSpecs(cfg Config, dir string) ([]armSpec, error) {
	if cfg.Compare == nil {
		return []armSpec{{cfg: cfg, dir: dir}}, nil
	}
	if cfg.External != nil {
		return nil, errors.New("an A/B soak starts both relays itself; a relay at --target-url cannot be one of them")
	}
	ca, cb := cfg, cfg
	ca.Compare, cb.Compare = nil, nil
	cb.RelayImage = cfg.Compare.RelayImage
	if cfg.Compare.Profile != nil {
		cb.Profile = cfg.Compare.Profile
	}
	if cfg.Compare.MemLimit > 0 {
		cb.MemLimit = cfg.Compare.MemLimit
	}
	var fairness []string
	if n := runtime.NumCPU(); cfg.CPUs > 0 && 2*cfg.CPUs > float64(n) {
		fairness = append(fairness, fmt.Sprintf("the CPU limits (2 × %.2g cores) are more than the machine's %d cores: the limits do not keep the relays apart", cfg.CPUs, n))
	}
	return []armSpec{
		{cfg: ca, dir: filepath.Join(dir, rundir.A), name: "A", fairness: fairness},
		{cfg: cb, dir: filepath.Join(dir, rundir.B), name: "B"},
	}, nil
}

// fairnessWarnings say when the machine, rather than the build, may explain
// a difference: a saturated CPU, or delivery or lag diverging between two
// relays fed the identical stream.
func fairnessWarnings(a, b report.Summary, busy float64) []string {
	var out []string
	if busy >= 0.9 {
		out = append(out, fmt.Sprintf("the machine's CPUs were %.0f%% busy during the load: the relays competed for them (and with the rig); run fewer hosts or a lower rate, or set --cpus", busy*100))
	}
	for _, s := range []struct {
		name string
		s    report.Summary
	}{{"A", a}, {"B", b}} {
		if s.s.CommitsSent > 0 && s.s.Delivery < 0.99 {
			out = append(out, fmt.Sprintf("%s delivered only %.2f%% of the commits: a relay falling behind keeps less in memory, or more", s.name, s.s.Delivery*100))
		}
	}
	if d := math.Abs(a.Delivery - b.Delivery); d > 0.01 {
		out = append(out, fmt.Sprintf("delivery diverges (A %.2f%%, B %.2f%%) although both were fed the same stream", a.Delivery*100, b.Delivery*100))
	}
	lo, hi := math.Min(a.LagP99Ms, b.LagP99Ms), math.Max(a.LagP99Ms, b.LagP99Ms)
	if hi > 1000 && hi > 2*lo {
		out = append(out, fmt.Sprintf("lag diverges (p99 A %.0f ms, B %.0f ms)", a.LagP99Ms, b.LagP99Ms))
	}
	if len(out) > 0 && busy >= 0 && busy < 0.9 {
		out = append(out, fmt.Sprintf("(the machine's CPUs were %.0f%% busy: the divergence may be the build's)", busy*100))
	}
	return out
}

// hostCPU is the machine's cumulative CPU time from /proc/stat, in ticks.
type hostCPU struct{ busy, total float64 }

func readHostCPU() (hostCPU, error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return hostCPU{}, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 || fields[0] != "cpu" {
			continue
		}
		var c hostCPU
		// user nice system idle iowait irq softirq steal; guest time is
		// already counted in user and nice.
		for i, v := range fields[1:min(len(fields), 9)] {
			x, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return hostCPU{}, fmt.Errorf("/proc/stat: %q: %w", v, err)
			}
			c.total += x
			if i != 3 && i != 4 { // idle, iowait
				c.busy += x
			}
		}
		return c, nil
	}
	return hostCPU{}, fmt.Errorf("/proc/stat: no cpu line")
}

// busySince is the fraction of the machine's CPU time spent busy since c0.
func (c hostCPU) busySince(c0 hostCPU) float64 {
	if dt := c.total - c0.total; dt > 0 {
		return (c.busy - c0.busy) / dt
	}
	return 0
}
