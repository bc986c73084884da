package bytesize

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestIEC(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 20: "5.0 MiB",
		3 << 30: "3.00 GiB", -(2 << 20): "-2.0 MiB",
	} {
		assert.Equal(t, want, IEC(n), "%d", n)
	}
	assert.Equal(t, "+1.0 KiB", SignedIEC(1024))
	assert.Equal(t, "-1.0 KiB", SignedIEC(-1024))
	assert.Equal(t, "0 B", SignedIEC(0))
}

func TestScaledSharesTheEstimatesUnit(t *testing.T) {
	// An interval's ends are written in the unit of its estimate.
	assert.Equal(t, "1.5 KiB", Scaled(1536, 1536))
	assert.Equal(t, "0.5 KiB", Scaled(512, 1536))
	assert.Equal(t, "512 B", Scaled(512, 512))
	assert.Equal(t, "12.0 MiB", Scaled(12<<20, 12<<20))
	assert.Equal(t, "0 B", Scaled(0, 0))
	assert.Equal(t, "-0.25 KiB", Scaled(-256, 2048))
	assert.Equal(t, "250", Figures(249.7))
	assert.Equal(t, "0.0012", Figures(0.00123))
}
