package testkit

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A benchmark that measures its subject's own CPU and memory runs the
// subject in a child process: this test binary, re-executed with an
// environment variable that makes TestMain run the child instead of the
// tests. The two talk in lines, the child's stdout to the parent and the
// parent's to the child's stdin.

// MainOrChild is the body of TestMain for such a package: with env set the
// process is the child and runs child (an error is printed and exits 1);
// otherwise it runs the tests.
func MainOrChild(m *testing.M, env string, child func() error) {
	if os.Getenv(env) != "" {
		if err := child(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// Child is the re-executed test binary, seen from the benchmark.
type Child struct {
	cmd *exec.Cmd
	// Stdin is the child's standard input.
	Stdin io.WriteCloser
	// Stdout reads the child's standard output.
	Stdout *bufio.Reader
}

// StartChild starts the test binary, running no test, with env
// ("KEY=value") added to the environment; the child's stderr is the
// parent's. The benchmark's cleanup kills it if Stop has not.
func StartChild(tb testing.TB, env ...string) *Child {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	stdin, err := cmd.StdinPipe()
	require.NoError(tb, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(tb, err)
	cmd.Stderr = os.Stderr
	require.NoError(tb, cmd.Start())
	tb.Cleanup(func() { cmd.Process.Kill() })
	return &Child{cmd: cmd, Stdin: stdin, Stdout: bufio.NewReader(stdout)}
}

// PID is the child's process ID, for probes of its CPU and memory.
func (c *Child) PID() int { return c.cmd.Process.Pid }

// ReadLine reads the child's next line of output, without its newline.
func (c *Child) ReadLine(tb testing.TB) string {
	tb.Helper()
	line, err := c.Stdout.ReadString('\n')
	require.NoError(tb, err, "reading the child's output")
	return strings.TrimSpace(line)
}

// Tell sends the child one line.
func (c *Child) Tell(line string) { fmt.Fprintln(c.Stdin, line) }

// Stop kills the child and waits for it to end.
func (c *Child) Stop() {
	c.cmd.Process.Kill()
	c.cmd.Wait()
}

// ServeForParent serves h on a loopback port and prints the address, the
// child's first line, for the parent's ReadLine.
func ServeForParent(h http.Handler) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go http.Serve(ln, h)
	fmt.Println(ln.Addr().String())
	return nil
}

// stdin is read through one buffer so that no line read ahead is lost
// between calls.
var stdin = sync.OnceValue(func() *bufio.Reader { return bufio.NewReader(os.Stdin) })

// FromParent reads, in the child, the parent's next line, without its
// newline.
func FromParent() (string, error) {
	line, err := stdin().ReadString('\n')
	return strings.TrimSpace(line), err
}

// ProfileCPU writes a CPU profile of the process to path for d, starting
// after the given delay: the steady state, not the warm-up. Errors are
// ignored; a missing profile is noticed by whoever asked for it.
func ProfileCPU(path string, after, d time.Duration) {
	time.Sleep(after)
	fh, err := os.Create(path)
	if err != nil {
		return
	}
	pprof.StartCPUProfile(fh)
	time.Sleep(d)
	pprof.StopCPUProfile()
	fh.Close()
}
