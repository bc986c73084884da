package rundir

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A hosts file reads back as written, replaces the previous one whole and
// leaves no temporary file behind.
func TestHostsFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, HostsCSV)
	require.NoError(t, WriteHosts(path, []HostRow{{Host: "old.test", Written: 1}}))
	rows := []HostRow{
		{Host: "pds0001.test", Written: 120, Sent: 100, Delivered: 97, Trimmed: 5, NeverSentSubscribed: 1, NeverSentDown: 6, NeverSentAway: 8, Subscribed: true},
		{Host: "pds0002.test", Written: 40, Dark: true, NeverSentAway: 40},
	}
	require.NoError(t, WriteHosts(path, rows))
	got, err := ReadHosts(path)
	require.NoError(t, err)
	assert.Equal(t, rows, got)

	b, err := os.ReadFile(path)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	require.Len(t, lines, 3)
	assert.Equal(t, "host,written,sent,delivered,trimmed,never_sent_subscribed,never_sent_down,never_sent_away,subscribed,dark", lines[0])
	assert.Equal(t, "pds0001.test,120,100,97,5,1,6,8,true,false", lines[1])
	es, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, es, 1, "no temporary file is left")
}

func TestHostsFileErrors(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"other header": "host,written\n",
		"not a count":  strings.Join(HostsColumns, ",") + "\npds0001.test,x,0,0,0,0,0,0,true,false\n",
		"not a bool":   strings.Join(HostsColumns, ",") + "\npds0001.test,1,0,0,0,0,0,0,yes,false\n",
	} {
		p := filepath.Join(dir, name+".csv")
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
		_, err := ReadHosts(p)
		assert.Error(t, err, name)
	}
	_, err := ReadHosts(filepath.Join(dir, "missing.csv"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}
