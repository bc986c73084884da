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
