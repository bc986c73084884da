package soak

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/relaysoak/relaysoak/soak/report"
)

// slogLine is a line as Go's slog JSON handler writes it.
func slogLine(s float64, msg, host string) string {
	return fmt.Sprintf(`{"time":%q,"level":"WARN","msg":%q,"system":"slurper","host":%q}`, at(s).Format(time.RFC3339Nano), msg, host)
}

func writeLog(t *testing.T, lines ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "relay.log")
	require.NoError(t, os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644))
	return p
}

// A dark host gets the relay's lines naming it and matching a pattern,
// from a minute before it went dark to a minute past the threshold after,
// the last five; a planned one gets none.
func TestQuoteDarkLogAroundTheStart(t *testing.T) {
	var lines []string
	for s := 0.0; s < 1200; s += 20 {
		lines = append(lines, slogLine(s, "dialing failed", "pds0001.test"), slogLine(s, "dialing failed", "pds0002.test"))
	}
	lines = append(lines,
		slogLine(610, "host does not appear to be online, disabling for now", "pds0003.test"),
		slogLine(615, "failed handling event", "pds0003.test"),
		slogLine(620, "dialing failed", "pds00031.test"))
	path := writeLog(t, lines...)
	hosts := []report.DarkHost{
		{Host: "pds0001.test", StartS: 600},
		{Host: "pds0003.test", StartS: 600},
		{Host: "pds0002.test", StartS: 600, Planned: true},
		{Host: "pds0004.test", StartS: 600},
	}
	require.NoError(t, quoteDarkLog(path, []string{"dialing failed", "host does not appear to be online"}, hosts, simStart, time.Minute))

	require.Len(t, hosts[0].LogLines, maxDarkLogLines)
	assert.Equal(t, slogLine(640, "dialing failed", "pds0001.test"), hosts[0].LogLines[0], "the last five of the window")
	assert.Equal(t, slogLine(720, "dialing failed", "pds0001.test"), hosts[0].LogLines[4], "to a minute past the threshold")
	for _, l := range hosts[0].LogLines {
		assert.Contains(t, l, `"host":"pds0001.test"`)
	}
	assert.Equal(t, []string{slogLine(610, "host does not appear to be online, disabling for now", "pds0003.test")}, hosts[1].LogLines,
		"only lines matching a pattern, naming this host")
	assert.Empty(t, hosts[2].LogLines, "a planned host is no finding")
	assert.Empty(t, hosts[3].LogLines)

	// A host the relay let go at 560 s, away through an outage that ended
	// at 800: its lines from a minute before it was let go.
	hosts = []report.DarkHost{{Host: "pds0003.test", StartS: 800}}
	require.NoError(t, quoteDarkLog(path, []string{"host does not appear to be online"}, hosts, simStart, time.Minute))
	assert.Empty(t, hosts[0].LogLines, "counted from the span's start, the give-up at 610 is out of the window")
	hosts = []report.DarkHost{{Host: "pds0003.test", StartS: 800, LetGoS: 560}}
	require.NoError(t, quoteDarkLog(path, []string{"host does not appear to be online"}, hosts, simStart, time.Minute))
	assert.Len(t, hosts[0].LogLines, 1, "the give-up at 610 is quoted though the span starts at 800")

	hosts = []report.DarkHost{{Host: "pds0001.test", StartS: 1500}}
	require.NoError(t, quoteDarkLog(path, []string{"dialing failed"}, hosts, simStart, time.Minute))
	assert.Empty(t, hosts[0].LogLines, "its lines all carry a time, none in the window")
}

// Lines whose time cannot be read are quoted from the first; a line
// led by a container engine's timestamp, or slog's text, is placed.
func TestQuoteDarkLogWithoutTimes(t *testing.T) {
	path := writeLog(t, "dialing failed pds0001.test one", "dialing failed pds0001.test two", "nothing about it")
	hosts := []report.DarkHost{{Host: "pds0001.test", StartS: 6000}}
	require.NoError(t, quoteDarkLog(path, []string{"dialing failed"}, hosts, simStart, time.Minute))
	assert.Equal(t, []string{"dialing failed pds0001.test one", "dialing failed pds0001.test two"}, hosts[0].LogLines)

	for _, line := range []string{
		at(30).Format(time.RFC3339Nano) + " " + slogLine(30, "x", "h"),
		"time=" + at(30).Format(time.RFC3339Nano) + ` level=WARN msg="dialing failed" host=h`,
		slogLine(30, "x", "h"),
	} {
		got, ok := lineTime(line)
		if assert.True(t, ok, line) {
			assert.True(t, got.Equal(at(30)), line)
		}
	}
	_, ok := lineTime(`{"msg":"no time"}`)
	assert.False(t, ok)

	assert.Error(t, quoteDarkLog(filepath.Join(t.TempDir(), "missing"), []string{"x"}, []report.DarkHost{{Host: "h"}}, simStart, time.Minute))
}
