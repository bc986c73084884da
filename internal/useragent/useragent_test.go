package useragent

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestOnePerRole(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range []string{Measure, Crowd, Scrape} {
		ua := For(r)
		assert.True(t, strings.HasPrefix(ua, r+"/"), ua)
		assert.Equal(t, ua, For(r), "fixed: the same for every connection")
		assert.Equal(t, ua, Header(r).Get("User-Agent"))
		seen[ua] = true
	}
	assert.Len(t, seen, 3, "the roles are told apart")
}

func TestClientsAreDistinctButStartAtTheRole(t *testing.T) {
	assert.Equal(t, For(Crowd), Client(Crowd, 0), "client 0 is the role's plain agent")
	seen := map[string]bool{}
	for n := range 1000 {
		ua := Client(Crowd, n)
		assert.True(t, strings.HasPrefix(ua, For(Crowd)), ua)
		assert.Equal(t, ua, ClientHeader(Crowd, n).Get("User-Agent"))
		seen[ua] = true
	}
	assert.Len(t, seen, 1000)
}
