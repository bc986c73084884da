package testkit

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

// FrameCounter holds one websocket reader per host and counts the frames
// they receive, without decoding them: what is measured is delivery, not
// content.
type FrameCounter struct {
	frames atomic.Int64
	conns  []*websocket.Conn
	wg     sync.WaitGroup
}

// CountFrames subscribes to ws://<host><path> for each host, every
// connection dialled at addr: the hosts may be names only one listener
// answers for, as the fake fleet's are.
func CountFrames(tb testing.TB, addr, path string, hosts []string) *FrameCounter {
	tb.Helper()
	fc := &FrameCounter{}
	d := DialerAt(addr)
	for _, h := range hosts {
		c, _, err := d.Dial("ws://"+h+path, nil)
		require.NoError(tb, err, "subscribing to %s", h)
		fc.conns = append(fc.conns, c)
		fc.wg.Add(1)
		go func() {
			defer fc.wg.Done()
			for {
				if _, _, err := c.NextReader(); err != nil {
					return
				}
				fc.frames.Add(1)
			}
		}()
	}
	return fc
}

// Frames is the number of frames received so far, over all hosts.
func (fc *FrameCounter) Frames() int64 { return fc.frames.Load() }

// Close closes every connection and waits for the readers to end.
func (fc *FrameCounter) Close() {
	for _, c := range fc.conns {
		c.Close()
	}
	fc.wg.Wait()
}
