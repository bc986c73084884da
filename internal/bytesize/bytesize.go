// Package bytesize renders byte counts for people: with a binary unit, and
// with as many figures as an estimate supports. It knows nothing of what
// the bytes are.
package bytesize

import (
	"fmt"
	"math"
)

// IEC renders n with a binary unit: GiB to two decimals, MiB and KiB to
// one, bytes whole.
func IEC(n int64) string {
	neg := n < 0
	if neg {
		n = -n
	}
	var s string
	switch {
	case n >= 1<<30:
		s = fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		s = fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		s = fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	default:
		s = fmt.Sprintf("%d B", n)
	}
	if neg {
		return "-" + s
	}
	return s
}

// SignedIEC is IEC with a "+" on growth.
func SignedIEC(n int64) string {
	if n > 0 {
		return "+" + IEC(n)
	}
	return IEC(n)
}

// Unit is the binary unit (B, KiB or MiB) for figures of the size of
// scale, and its size in bytes.
func Unit(scale float64) (float64, string) {
	a := math.Abs(scale)
	switch {
	case a >= 1<<20:
		return 1 << 20, "MiB"
	case a >= 1<<10:
		return 1 << 10, "KiB"
	}
	return 1, "B"
}

// Scaled renders b in the unit Unit chooses for scale, so that an interval
// shares its estimate's unit, with Figures' precision.
func Scaled(b, scale float64) string {
	v, unit := Unit(scale)
	return fmt.Sprintf("%s %s", Figures(b/v), unit)
}

// Figures renders x with what an estimate supports: whole from 100 up,
// one decimal from 10, two significant figures below.
func Figures(x float64) string {
	a := math.Abs(x)
	switch {
	case a >= 100:
		return fmt.Sprintf("%.0f", x)
	case a >= 10:
		return fmt.Sprintf("%.1f", x)
	case a == 0:
		return "0"
	}
	return fmt.Sprintf("%.2g", x)
}
