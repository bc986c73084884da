package soak

import (
	"io"
	"sync"
)

// console is where a run speaks while its load runs. On a terminal the
// progress bars redraw the screen's last lines, so a notice written beside
// them is overdrawn; while they run, notices go through them and land above.
type console struct {
	mu sync.Mutex
	w  io.Writer
}

func (c *console) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.w.Write(b)
}

// through sends what is written to w until restore is called.
func (c *console) through(w io.Writer) (restore func()) {
	c.mu.Lock()
	prev := c.w
	c.w = w
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		c.w = prev
		c.mu.Unlock()
	}
}
