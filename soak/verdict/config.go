package verdict

import "time"

// Config holds the judge's thresholds. The zero value means the defaults
// justified in the package documentation.
type Config struct {
	// MinSlopeMiBPerHour is the effect-size gate: growth slower than this is
	// never called a leak, however significant. Default 10.
	MinSlopeMiBPerHour float64
	// MinBytesPerFrame is the second gate, used when the frame rate is known:
	// growth that retains fewer bytes per frame is not called a leak.
	// Default 2.
	MinBytesPerFrame float64
	// Alpha is the significance level of the trend tests and 1−Alpha the level
	// of the slope's confidence interval. Default 0.01.
	Alpha float64
	// MinWindow is the least post-warm-up data judged at all. Default 20 min.
	MinWindow time.Duration
	// StrongSlopeMiBPerHour and EarlyWindow: growth whose whole interval
	// is above the strong slope is called LEAK once EarlyWindow of data
	// follow the warm-up, before MinWindow. Defaults 500 and 2/5 of
	// MinWindow (8 min).
	StrongSlopeMiBPerHour float64
	EarlyWindow           time.Duration
	// MinWindowFraction, when set, is the least share of the (post-restart)
	// run that the judged window must cover. Default 0: off. A late warm-up
	// end cannot leave the window inside one slow flush cycle anyway: flush
	// recognition wants two whole cycles in the window once drops are seen,
	// and a fixed share would delay every verdict after a long warm-up.
	MinWindowFraction float64
	// Warmup is a warm-up that is always skipped, whatever the data say.
	// Default 0: the warm-up is found from the data.
	Warmup time.Duration
	// MaxPoints caps the points the pairwise statistics see; longer series are
	// thinned to bin medians. Default 600 (≈180,000 pairs).
	MaxPoints int
	// RestartFraction: a drop, within three samples, to below this share of
	// the level it fell from, and into the bottom quarter of the range above
	// the run's starting level, is a restart. Default 0.5.
	RestartFraction float64
}

// Defaults, justified in the package documentation.
const (
	DefaultMinSlopeMiBPerHour = 10
	DefaultMinBytesPerFrame   = 2
	DefaultAlpha              = 0.01
	DefaultMinWindow          = 20 * time.Minute
	// DefaultStrongSlopeMiBPerHour is fifty times the gate: a relay that
	// leaks this fast fills a few GiB in hours.
	DefaultStrongSlopeMiBPerHour = 500
	DefaultMaxPoints             = 600
	DefaultRestartFraction       = 0.5
)

func (c Config) withDefaults() Config {
	if c.MinSlopeMiBPerHour <= 0 {
		c.MinSlopeMiBPerHour = DefaultMinSlopeMiBPerHour
	}
	if c.MinBytesPerFrame <= 0 {
		c.MinBytesPerFrame = DefaultMinBytesPerFrame
	}
	if c.Alpha <= 0 || c.Alpha >= 1 {
		c.Alpha = DefaultAlpha
	}
	if c.MinWindow <= 0 {
		c.MinWindow = DefaultMinWindow
	}
	if c.StrongSlopeMiBPerHour <= 0 {
		c.StrongSlopeMiBPerHour = DefaultStrongSlopeMiBPerHour
	}
	if c.EarlyWindow <= 0 || c.EarlyWindow > c.MinWindow {
		c.EarlyWindow = c.MinWindow * 2 / 5
	}
	if c.MinWindowFraction < 0 || c.MinWindowFraction >= 1 {
		c.MinWindowFraction = 0
	}
	if c.MaxPoints < 3*minFitPoint {
		c.MaxPoints = DefaultMaxPoints
	}
	if c.RestartFraction <= 0 || c.RestartFraction >= 1 {
		c.RestartFraction = DefaultRestartFraction
	}
	return c
}

// gate is the effective slope threshold in MiB/hour: both gates must be met,
// so the per-frame one only bites when it is the stricter (high frame rates).
func (c Config) gate(frameRate float64) float64 {
	g := c.MinSlopeMiBPerHour
	if frameRate > 0 {
		g = max(g, c.MinBytesPerFrame*frameRate*secPerHour/mib)
	}
	return g
}

// Context is what the run knows besides the memory series. Zero values mean
// unknown.
type Context struct {
	// FrameRate is the mean frames per second the target received.
	FrameRate float64
	// MemoryLimit is the target's memory limit in bytes.
	MemoryLimit float64
	// Exits are the times (seconds since the run started) at which the target
	// was seen to exit: OOM kills, crashes, restarts.
	Exits []float64
}
