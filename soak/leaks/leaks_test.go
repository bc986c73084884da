package leaks

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func fromFixture(t *testing.T, name string) Report {
	t.Helper()
	rep, err := FromLog(filepath.Join("testdata", name))
	require.NoError(t, err)
	return rep
}

// Real output (see each fixture's header for where it was posted).

func TestRealReportOneLeak(t *testing.T) {
	rep := fromFixture(t, "zig-17042-sema.log")
	assert.Equal(t, 1, rep.Leaks)
	require.Len(t, rep.Sites, 1)
	s := rep.Sites[0]
	assert.Equal(t, 1, s.Count)
	assert.InDelta(t, 1.0, s.Share, 1e-9)
	require.Len(t, s.Frames, 4)
	assert.Equal(t, Frame{File: "/home/kubkon/dev/zig/src/Module.zig", Line: 322, Col: 37, Func: "init", Module: "zig", Addr: "0xa59f54"}, s.Frames[0])
	assert.Equal(t, "zirCall__anon_127382", s.Frames[3].Func)
	assert.Equal(t, "init", s.Where.Func, "the compiler's own source is not std")
	assert.False(t, rep.Truncated)
}

func TestRealReportHeaderGluedToOutputAndStdFramesSkipped(t *testing.T) {
	rep := fromFixture(t, "zig-git-2-glued.log")
	require.Equal(t, 1, rep.Leaks, `"nullerror(gpa): …" is a header`)
	s := rep.Sites[0]
	require.Len(t, s.Frames, 5)
	assert.True(t, s.Frames[0].Std(), "Allocator.zig's dupe is the allocator's, not the leak's")
	assert.Equal(t, "readRef", s.Where.Func)
	assert.Equal(t, 1242, s.Where.Line)
}

func TestRealReportWindowsPathsCutMidFrame(t *testing.T) {
	rep := fromFixture(t, "aftersun-7-windows-cut.log")
	// The frames before the first header belong to a leak the excerpt lost.
	assert.Equal(t, 2, rep.Leaks)
	assert.True(t, rep.Truncated, "the log ends inside a frame line")
	require.Len(t, rep.Sites, 1, "the second leak has no complete frame")
	s := rep.Sites[0]
	assert.Equal(t, `C:\projects\zig\aftersun\src\gfx\batcher.zig`, s.Where.File)
	assert.Equal(t, 40, s.Where.Line)
	assert.Len(t, s.Frames, 4)
	assert.Equal(t, 1, rep.NoStack)
}

func TestRealReportWithoutStacks(t *testing.T) {
	rep := fromFixture(t, "comlink-3-no-stacks.log")
	assert.Equal(t, 2, rep.Leaks)
	assert.Equal(t, 2, rep.NoStack)
	assert.Empty(t, rep.Sites)
}

func TestRealReportTestRunnerFormat(t *testing.T) {
	rep := fromFixture(t, "zig-21088-test-runner.log")
	require.Equal(t, 1, rep.Leaks, "[gpa] (err): is the test runner's header")
	s := rep.Sites[0]
	assert.Len(t, s.Frames, 5)
	// Every frame is std: the first one stands for the site.
	assert.Equal(t, "setCapacity", s.Where.Func)
}

func TestRealReportFramesWithoutDebugInfo(t *testing.T) {
	rep := fromFixture(t, "delve-42-libc-frames.log")
	assert.Equal(t, 1, rep.Leaks, "the ??? frames before the header end an earlier, unseen trace")
	require.Len(t, rep.Sites, 1)
	assert.Len(t, rep.Sites[0].Frames, 3)

	unknown := parseFrame(frameRe.FindStringSubmatch("???:?:?: 0x7804edfe5e07 in ??? (libc.so.6)"))
	assert.True(t, unknown.Unknown())
	assert.Equal(t, 0, unknown.Line)
	assert.Equal(t, "0x7804edfe5e07 in ??? (libc.so.6)", unknown.String())
}

func TestRealReportCutInsideHeader(t *testing.T) {
	rep := fromFixture(t, "zig-18840-cut-header.log")
	assert.Equal(t, 2, rep.Leaks, "a header cut at the end of the log still counts")
	assert.True(t, rep.Truncated)
	assert.Equal(t, 1, rep.NoStack)
	require.Len(t, rep.Sites, 1)
	assert.Len(t, rep.Sites[0].Frames, 4, "the orphan frames before the first header are nobody's")
}

// Synthetic shutdowns in the same shape.

func TestInterleavedOutputGroupsByStack(t *testing.T) {
	rep := fromFixture(t, "synthetic-relay-interleaved.log")
	assert.Equal(t, 9, rep.Leaks)
	assert.Equal(t, 3, rep.Stacks)
	assert.False(t, rep.Truncated)
	require.Len(t, rep.Sites, 3)
	want := []struct {
		count int
		fn    string
	}{{5, "decodeFrame"}, {3, "cacheDid"}, {1, "addHost"}}
	for i, w := range want {
		assert.Equal(t, w.count, rep.Sites[i].Count, "site %d", i)
		assert.Equal(t, w.fn, rep.Sites[i].Where.Func, "site %d", i)
		assert.Len(t, rep.Sites[i].Frames, map[int]int{0: 6, 1: 6, 2: 4}[i], "site %d: interleaved lines are not frames", i)
	}
	assert.InDelta(t, 5.0/9, rep.Sites[0].Share, 1e-9)
}

func TestCutMidStackJoinsItsSite(t *testing.T) {
	rep := fromFixture(t, "synthetic-relay-cut-midstack.log")
	assert.Equal(t, 10, rep.Leaks)
	assert.True(t, rep.Truncated)
	assert.Equal(t, 3, rep.Stacks, "the cut leak is not a stack of its own")
	require.NotEmpty(t, rep.Sites)
	assert.Equal(t, 6, rep.Sites[0].Count)
	assert.Equal(t, 1, rep.Sites[0].Cut)
}

func TestCutAtLineBoundaryJoinsItsSite(t *testing.T) {
	// The log ends after a complete frame line: the last leak's stack is a
	// strict prefix of a known one, so it was cut.
	full, err := os.ReadFile(filepath.Join("testdata", "synthetic-relay-interleaved.log"))
	require.NoError(t, err)
	text := string(full) + "error(gpa): memory address 0x7f00000b0000 leaked: \n" +
		"/usr/lib/zig/std/hash_map.zig:1596:36: 0x10d1000 in grow (relay)\n" +
		"/usr/lib/zig/std/hash_map.zig:1553:30: 0x10d1100 in growIfNeeded (relay)\n"
	rep, err := Parse(strings.NewReader(text), "cut.log", Config{})
	require.NoError(t, err)
	assert.Equal(t, 10, rep.Leaks)
	assert.Equal(t, 3, rep.Stacks)
	require.Len(t, rep.Sites, 3)
	assert.Equal(t, 4, rep.Sites[1].Count)
	assert.Equal(t, 1, rep.Sites[1].Cut)
}

func TestPanicEndsTheOpenLeak(t *testing.T) {
	text := "error(gpa): memory address 0x1 leaked: \n" +
		"/src/a.zig:1:1: 0x10 in a (relay)\n" +
		"thread 7 panic: reached unreachable code\n" +
		"/src/b.zig:2:2: 0x20 in b (relay)\n"
	rep, err := Parse(strings.NewReader(text), "panic.log", Config{})
	require.NoError(t, err)
	require.Len(t, rep.Sites, 1)
	assert.Len(t, rep.Sites[0].Frames, 1, "the panic's frames are not the leak's")
}

func TestConfigKeepsTopSitesAndFrames(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "synthetic-relay-interleaved.log"))
	require.NoError(t, err)
	defer f.Close()
	rep, err := Parse(f, "x", Config{Top: 1, Frames: 2})
	require.NoError(t, err)
	require.Len(t, rep.Sites, 1)
	assert.Len(t, rep.Sites[0].Frames, 2)
	assert.Equal(t, 3, rep.Stacks, "the sites not kept are still counted")
}

func TestNoReportIsEmpty(t *testing.T) {
	rep, err := Parse(strings.NewReader("info: started\ninfo: stopped\n"), "clean.log", Config{})
	require.NoError(t, err)
	assert.Zero(t, rep.Leaks)
	assert.Empty(t, rep.Sites)
}

func TestMissingLogNamesTheFile(t *testing.T) {
	_, err := FromLog(filepath.Join(t.TempDir(), "relay.log"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "relay.log")
}
