package testkit

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The child of TestChildTalksInLines: it serves "ok", then echoes one line.
func TestMain(m *testing.M) {
	MainOrChild(m, "TESTKIT_CHILD", func() error {
		if err := ServeForParent(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })); err != nil {
			return err
		}
		line, err := FromParent()
		if err != nil {
			return err
		}
		fmt.Println("echo " + line)
		_, err = FromParent() // wait to be stopped
		return err
	})
}

// recorder is a testing.TB whose Log calls are kept.
type recorder struct {
	testing.TB
	logged []string
}

func (r *recorder) Log(args ...any) {
	for _, a := range args {
		r.logged = append(r.logged, a.(string))
	}
}

func TestLogWriterSendsEachWriteWithoutItsNewline(t *testing.T) {
	rec := &recorder{TB: t}
	w := LogWriter{T: rec}
	n, err := io.WriteString(w, "first line\n")
	require.NoError(t, err)
	assert.Equal(t, len("first line\n"), n, "the whole write is reported taken")
	io.WriteString(w, "two\nlines\n\n")
	io.WriteString(w, "no newline")
	assert.Equal(t, []string{"first line", "two\nlines", "no newline"}, rec.logged)
}

func TestImageOnceBuildsOnce(t *testing.T) {
	builds := 0
	img := &ImageOnce{Tag: "example/test:1", Build: func(ctx context.Context) (bool, error) {
		builds++
		_, ok := ctx.Deadline()
		assert.True(t, ok, "the build is bounded")
		return true, nil
	}}
	assert.Equal(t, "example/test:1", img.Require(t))
	assert.Equal(t, "example/test:1", img.Require(t))
	assert.Equal(t, 1, builds)
}

func TestCountFramesCountsEveryHostsFrames(t *testing.T) {
	const perConn = 5
	var up websocket.Upgrader
	vh := ServeVirtualHosts(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/stream" {
			http.NotFound(w, r)
			return
		}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for i := range perConn {
			if err := c.WriteMessage(websocket.BinaryMessage, []byte{byte(i)}); err != nil {
				return
			}
		}
		// Hold the connection open until the counter closes it.
		c.ReadMessage()
	}))
	fc := CountFrames(t, vh.Addr, "/stream", []string{"a.test", "b.test", "c.test"})
	assert.Eventually(t, func() bool { return fc.Frames() == 3*perConn }, 5*time.Second, 10*time.Millisecond)
	fc.Close()
	assert.Equal(t, int64(3*perConn), fc.Frames(), "no frame counted twice")
}

func TestChildTalksInLines(t *testing.T) {
	c := StartChild(t, "TESTKIT_CHILD=1")
	addr := c.ReadLine(t)
	resp, err := http.Get("http://" + addr)
	require.NoError(t, err, "the child serves at the address it printed")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, "ok", string(body))

	c.Tell("ping")
	assert.Equal(t, "echo ping", c.ReadLine(t))
	assert.Positive(t, c.PID())
	c.Stop()
}

func TestVirtualHostsAnswerForAnyName(t *testing.T) {
	vh := ServeVirtualHosts(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.Host) }))
	for _, host := range []string{"pds-1.test", "plc.directory"} {
		resp, err := vh.Client.Get("http://" + host + "/")
		require.NoError(t, err, "no DNS is needed for %s", host)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, host, string(body), "the request keeps the name it was sent to")
	}
}
