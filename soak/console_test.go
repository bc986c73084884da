package soak

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

// While the bars run, a notice goes through them; before and after, to the
// run's output.
func TestConsoleRoutesNoticesThroughTheBars(t *testing.T) {
	var out, bars bytes.Buffer
	c := &console{w: &out}
	fmt.Fprintln(c, "before")
	restore := c.through(&bars)
	fmt.Fprintln(c, "during")
	restore()
	fmt.Fprintln(c, "after")
	assert.Equal(t, "before\nafter\n", out.String())
	assert.Equal(t, "during\n", bars.String())
}
