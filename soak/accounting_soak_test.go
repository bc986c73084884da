package soak

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/relaysoak/relaysoak/fakepds"
	"github.com/relaysoak/relaysoak/relay"
	"github.com/relaysoak/relaysoak/soak/report"
	"github.com/relaysoak/relaysoak/soak/rundir"
)

// givingUpRelay is the test relay whose profile names the line in which
// it gives a host up.
type givingUpRelay struct{ leakyRelay }

func (p *givingUpRelay) Facts() relay.Facts {
	f := p.leakyRelay.Facts()
	f.DarkLogPatterns = []string{"abandoning host"}
	return f
}

// A soak whose relay lets a host go accounts for every commit written,
// keeps hosts.csv, counts the dark host in its samples, names it (with the
// relay's own line about it) in events.jsonl, the report and the headline.
func TestSoakAccountsForEveryCommitAndNamesADarkHost(t *testing.T) {
	h := newProcessHarness(t)
	cfg := processSoak(t, h, 8*time.Second)
	gone := fakepds.HostName(0, "test")
	cfg.Profile = &givingUpRelay{leakyRelay{Env: map[string]string{"ABANDON_HOST": gone + ":2s"}}}
	cfg.DarkAfter = time.Second
	cfg.Judge.MinSlopeMiBPerHour = 5000 // memory's verdict stays out of the way
	out, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	s := out.Summary

	require.NotNil(t, s.Findings.Accounting, "notes: %v", s.Notes)
	a := *s.Findings.Accounting
	t.Logf("%+v", a)
	assert.Equal(t, a.Written, a.Sum(), "every commit in one bucket")
	assert.Equal(t, s.CommitsSent, a.Written, "the ledger counts every commit the fleet wrote")
	assert.Positive(t, a.Delivered)
	assert.Positive(t, a.NeverSentAway, "what the host wrote once the relay let it go")

	rows, err := rundir.ReadHosts(filepath.Join(out.Dir, rundir.HostsCSV))
	require.NoError(t, err)
	require.Len(t, rows, cfg.Hosts)
	for _, r := range rows {
		assert.Equal(t, r.Host == gone, r.Dark, r.Host)
		assert.Equal(t, r.Host != gone, r.Subscribed, r.Host)
	}

	require.Len(t, s.DarkHosts, 1, "%+v", s.DarkHosts)
	d := s.DarkHosts[0]
	assert.Equal(t, gone, d.Host)
	assert.Equal(t, report.DarkUnsubscribed, d.Reason)
	assert.False(t, d.Ended, "never dialled again")
	assert.Greater(t, d.StartS, 1.5, "let go two seconds after the relay started")
	assert.Positive(t, d.CommitsLost)
	require.NotEmpty(t, d.LogLines)
	assert.Contains(t, d.LogLines[0], "abandoning host")
	assert.Contains(t, report.Headline(s), "1 host dark")

	lines := readLines(t, filepath.Join(out.Dir, rundir.Samples))
	require.NotEmpty(t, lines)
	assert.Equal(t, 1.0, lines[len(lines)-1].Context[rundir.DarkHosts])
	events, err := os.ReadFile(filepath.Join(out.Dir, rundir.Events))
	require.NoError(t, err)
	assert.Equal(t, 1, strings.Count(string(events), `"`+rundir.EventHostDark+`"`))
	md, err := os.ReadFile(filepath.Join(out.Dir, rundir.Report))
	require.NoError(t, err)
	assert.Contains(t, string(md), "## "+report.AccountingTitle)
	assert.Contains(t, string(md), "## "+report.DarkHostsTitle)
}
