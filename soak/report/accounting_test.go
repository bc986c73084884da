package report

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/relaysoak/relaysoak/soak/verdict"
)

func TestAccountingSection(t *testing.T) {
	a := Accounting{Written: 10_000, Sent: 9_000, Delivered: 8_900, MissedByConsumer: 20, InFlight: 30, LostInRelay: 50,
		NeverSentSubscribed: 10, NeverSentDown: 300, NeverSentAway: 600, Trimmed: 90}
	require.Equal(t, a.Written, a.Sum())
	sec := AccountingSection(a)
	assert.Equal(t, AccountingTitle, sec.Title)
	md := sec.Markdown
	assert.Contains(t, md, "9000 of them reached the relay")
	assert.Contains(t, md, "| **written by the fleet** | 10000 | 100.000% |")
	assert.Contains(t, md, "| delivered to the measuring consumer | 8900 | 89.000% |")
	assert.Contains(t, md, "| reached the relay, never delivered: lost in the relay | 50 | 0.500% |")
	assert.Contains(t, md, "| written while unsubscribed, host in a planted outage, never sent | 300 | 3.000% |")
	assert.Contains(t, md, "| left the fleet's history before the relay got them | 90 | 0.900% |")
	assert.Contains(t, md, "90 commits left the fleet's history before the relay came back for them: they count against the rig")
	assert.NotContains(t, md, "more commits (delivered and sequence gaps)")
	rows := strings.Count(md, "\n| ")
	assert.Equal(t, 2+len(a.Buckets()), rows, "the header, the total and a row per bucket")

	a.NeverSentAway += a.Trimmed
	a.Trimmed = 0
	a.Excess = 7
	md = AccountingSection(a).Markdown
	assert.Contains(t, md, "Trimmed from the fleet's history before the relay got them: none.")
	assert.Contains(t, md, "counted 7 more commits (delivered and sequence gaps) than reached the relay")
}

func darkHosts(n int) []DarkHost {
	var out []DarkHost
	for i := range n {
		out = append(out, DarkHost{Host: fmt.Sprintf("pds%04d.test", i+1), StartS: 600 + float64(i), Duration: 3 * time.Minute,
			Ended: true, Reason: DarkUndelivered, CommitsLost: uint64(1000 - i), Spans: 1})
	}
	return out
}

func TestDarkHostsSection(t *testing.T) {
	_, ok := DarkHostsSection(nil, time.Minute, "")
	assert.False(t, ok, "no dark host, no section")

	hosts := darkHosts(2)
	hosts[0].Reason, hosts[0].Ended, hosts[0].Spans = DarkUnsubscribed, false, 2
	hosts[0].LogLines = []string{`{"time":"2026-07-04T12:10:01Z","level":"WARN","msg":"dialing failed","host":"pds0001.test"}`}
	hosts = append(hosts, DarkHost{Host: "pds0042.test", Planned: true, Reason: DarkUnsubscribed, Duration: time.Hour})
	sec, ok := DarkHostsSection(hosts, time.Minute, "")
	require.True(t, ok)
	assert.Equal(t, DarkHostsTitle, sec.Title)
	md := sec.Markdown
	assert.True(t, strings.HasPrefix(md, "2 hosts went dark: for 1m0s or more"), md)
	assert.Contains(t, md, "| pds0001.test | minute 10.0 | 3m0s in 2 spans, still at the end | no subscription | 1000 |")
	assert.Contains(t, md, "| pds0002.test | minute 10.0 | 3m0s | subscribed, nothing delivered | 999 |")
	assert.Contains(t, md, "Planned: pds0042.test")
	assert.NotContains(t, md, "| pds0042.test |", "a planned outage is no finding")
	assert.Contains(t, md, "pds0001.test, the relay's log around minute 10.0:\n\n```\n{\"time\":\"2026-07-04T12:10:01Z\"")
	assert.Contains(t, md, "No line of the relay's log about pds0002.test says it stopped reading it.")

	sec, _ = DarkHostsSection(hosts, time.Minute, "the rig did not start this relay and has no log of it")
	assert.Contains(t, sec.Markdown, "The relay's own lines about them: the rig did not start this relay and has no log of it.")
	assert.NotContains(t, sec.Markdown, "```")

	sec, _ = DarkHostsSection(darkHosts(25), time.Minute, "")
	assert.Equal(t, maxDarkRows, strings.Count(sec.Markdown, "| minute "), "at most 20 rows")
	assert.Contains(t, sec.Markdown, "\nand 5 more.\n")

	sec, ok = DarkHostsSection(hosts[2:], time.Minute, "")
	require.True(t, ok)
	assert.True(t, strings.HasPrefix(sec.Markdown, "None outside the plan."), sec.Markdown)
}

// The headline counts the dark hosts beside delivery when the run is LOST,
// and after memory's verdict when it is not; planned ones are not counted.
func TestHeadlineCountsDarkHosts(t *testing.T) {
	s := Summary{RunID: "d", Judged: verdict.Report{Result: verdict.Result{Verdict: verdict.Pass, Reason: "flat"}, CarriedBy: "rss_anon"}}
	assert.NotContains(t, Headline(s), "dark")
	s.DarkHosts = append(darkHosts(2), DarkHost{Host: "pds0042.test", Planned: true})
	assert.Contains(t, Headline(s), " · 2 hosts dark (the relay stopped reading them; most lost from pds0001.test, 1000 commits)")

	s.Delivered = &JudgedDelivery{Ratio: 0.9, Min: 0.999, Due: 1000, Delivered: 900}
	s.WorstInterval = &Interval{Delivery: 0.5, EndS: 600}
	h := Headline(s)
	assert.True(t, strings.HasPrefix(h, "LOST: "), h)
	assert.Contains(t, h, "(ending at minute 10.0), 2 hosts dark")

	s.DarkHosts = s.DarkHosts[2:]
	assert.NotContains(t, Headline(s), "dark")
}

// The accounting and the dark hosts come first among the sections, and
// read back from verdict.json as data.
func TestMarkdownPlacesAccountingAndDarkHosts(t *testing.T) {
	s := Summary{RunID: "d", Judged: verdict.Report{Result: verdict.Result{Verdict: verdict.Pass}}, DarkHosts: darkHosts(1), DarkAfter: time.Minute,
		Findings: Findings{Accounting: &Accounting{Written: 5, Delivered: 5, Sent: 5}, OwnCost: &OwnCost{JudgeErr: "short"}}}
	md := Markdown(s)
	acc, dark, rig := strings.Index(md, "## "+AccountingTitle), strings.Index(md, "## "+DarkHostsTitle), strings.Index(md, "## Rig")
	require.Positive(t, acc)
	assert.Less(t, acc, dark)
	assert.Less(t, dark, rig)
}

// Commits awaiting the relay's redial come off what was due, never below
// what was delivered, and the ratio is judged again.
func TestExcuseTakesAwaitingCommitsOffDue(t *testing.T) {
	d := JudgedDelivery{Due: 1000, Delivered: 980, Min: 0.999, Ratio: 0.98}
	d.Excuse(15)
	assert.InDelta(t, 985, d.Due, 1e-9)
	assert.InDelta(t, 15, d.AwaitingRedial, 1e-9)
	assert.InDelta(t, 980.0/985, d.Ratio, 1e-9)
	assert.True(t, d.Lost(), "five commits are still missing")
	d.Excuse(100)
	assert.InDelta(t, 980, d.Due, 1e-9, "never below what was delivered")
	assert.InDelta(t, 1, d.Ratio, 1e-9)
	assert.False(t, d.Lost())
}
