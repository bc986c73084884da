// Package useragent names relaysoak's clients to the relay they load: a
// small fixed set of User-Agents, one per role, so the relay's logs and
// per-client metrics tell the measuring consumer from the crowd and from
// the scrapes. Never one per connection unless chosen: a relay that labels
// a metric by client and never forgets a label (indigo does) grows with
// every new client, so the crowd presents many identities (Client) only
// when a run asks for them, and the measuring consumer and the scrapes
// always keep their one.
package useragent

import (
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
)

// Roles of relaysoak's clients.
const (
	Measure = "relaysoak-measure" // the consumer whose delivery and lag the report gives
	Crowd   = "relaysoak-crowd"   // the crowd's consumers
	Scrape  = "relaysoak-scrape"  // metrics, health and profile requests
)

var version = sync.OnceValue(func() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
})

// For is role's User-Agent: the role and relaysoak's version.
func For(role string) string { return role + "/" + version() }

// Header is a request header carrying role's User-Agent.
func Header(role string) http.Header { return http.Header{"User-Agent": {For(role)}} }

// Client is the User-Agent of role's client number n: For(role) for 0,
// else For(role) with the number after it, one distinct agent per client.
func Client(role string, n int) string {
	if n == 0 {
		return For(role)
	}
	return For(role) + " client/" + strconv.Itoa(n)
}

// ClientHeader is a request header carrying Client(role, n).
func ClientHeader(role string, n int) http.Header {
	return http.Header{"User-Agent": {Client(role, n)}}
}
