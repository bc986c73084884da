package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Each flavour takes its relay's settings: ports, where hosts come from,
// how they are dialled, where DIDs are resolved, what is trusted.
func TestFlavourSettings(t *testing.T) {
	t.Run("control", func(t *testing.T) {
		t.Setenv("UPSTREAM_URL", "https://relay.test")
		t.Setenv("LEAK_BYTES_PER_RECONNECT", "16MiB")
		s, err := loadSettings()
		require.NoError(t, err)
		assert.Equal(t, ":2470", s.apiListen)
		assert.Equal(t, []string{"https://relay.test"}, s.upstreams)
		assert.Equal(t, "ws", s.hostScheme)
		assert.Equal(t, 16<<20, s.leakPerReconnect)
		assert.False(t, s.noRoots)
		assert.False(t, s.retainInHeap, "retained outside the Go heap unless asked")
	})
	t.Run("kept in the Go heap", func(t *testing.T) {
		t.Setenv("HOSTS", "pds0001.test")
		t.Setenv("RETAIN_IN", "heap")
		t.Setenv("HEAP_TEETH", "32MiB:10s")
		t.Setenv("CURSOR_LEAK", "128KiB")
		s, err := loadSettings()
		require.NoError(t, err)
		assert.True(t, s.retainInHeap)
		assert.Equal(t, int64(32<<20), s.teethBytes)
		assert.Equal(t, 10*time.Second, s.teethPeriod)
		assert.Equal(t, 128<<10, s.cursorLeak)
		t.Setenv("RETAIN_IN", "disk")
		_, err = loadSettings()
		assert.ErrorContains(t, err, "RETAIN_IN must be mmap or heap")
	})
	t.Run("zlay", func(t *testing.T) {
		t.Setenv("FLAVOUR", "zlay")
		t.Setenv("RELAY_UPSTREAM", "relay.test")
		t.Setenv("LEAK_REPORTS", "2")
		s, err := loadSettings()
		require.NoError(t, err)
		assert.Equal(t, ":3000", s.apiListen)
		assert.Equal(t, ":3001", s.metricsListen)
		assert.Equal(t, []string{"https://relay.test"}, s.upstreams)
		assert.Equal(t, "wss", s.hostScheme)
		assert.Equal(t, plcDirectory, s.plcURL)
		assert.Equal(t, 2, s.leakReports)
		assert.Zero(t, s.discoverEvery, "zlay learns its hosts once")
	})
	t.Run("rsky", func(t *testing.T) {
		t.Setenv("FLAVOUR", "rsky")
		t.Setenv("RELAY_DISCOVERY_UPSTREAMS", "a.test, b.test")
		s, err := loadSettings()
		require.NoError(t, err)
		assert.Equal(t, ":9000", s.apiListen)
		assert.Equal(t, []string{"https://a.test", "https://b.test"}, s.upstreams)
		assert.True(t, s.noRoots, "compiled-in roots: no private CA")
		assert.Equal(t, 5*time.Minute, s.discoverEvery)
		assert.Equal(t, time.Minute, s.exportEvery)
		t.Setenv("TRUST_SYSTEM", "1")
		s, err = loadSettings()
		require.NoError(t, err)
		assert.False(t, s.noRoots)
	})
	t.Run("unknown", func(t *testing.T) {
		t.Setenv("FLAVOUR", "zig")
		_, err := loadSettings()
		assert.ErrorContains(t, err, "FLAVOUR must be unset, zlay or rsky")
	})
}
