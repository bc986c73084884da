package relay

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTailKeepsLastLines(t *testing.T) {
	tl := newTail(3)
	assert.Empty(t, tl.Lines())
	tl.Write([]byte("a\nb\n"))
	assert.Equal(t, []string{"a", "b"}, tl.Lines())
	tl.Write([]byte("c\nd\ne"))
	assert.Equal(t, []string{"b", "c", "d", "e"}, tl.Lines(), "the last 3 full lines, then the partial one")
	tl.Write([]byte("f\n"))
	assert.Equal(t, []string{"d", "ef"}, tl.Lines()[1:])
	assert.Equal(t, []string{"x", "y"}, lastLines("w\nx\ny\n", 2))
	assert.Nil(t, lastLines("", 2))
}

func TestHostsFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "hosts")
	gw := netip.MustParseAddr("172.20.0.1")
	require.NoError(t, writeHostsFile(p, gw, []string{"plc.test", "PDS0001.test", "pds0001.test", "", "localhost"}))
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	s := string(b)
	assert.Contains(t, s, "127.0.0.1\tlocalhost\n")
	assert.Contains(t, s, "172.20.0.1\tplc.test\n")
	assert.Equal(t, 1, strings.Count(s, "pds0001.test"), "names are lower-cased and deduplicated")
	assert.NotContains(t, s, "172.20.0.1\tlocalhost")
}
