package report

import (
	"fmt"
	"strings"
	"time"
)

// Accounting is where every commit the fleet wrote over the run went, for
// one relay: each commit is in exactly one bucket, so the buckets add up
// to Written. The first four split what reached the relay's socket (Sent);
// the rest never did.
type Accounting struct {
	Written uint64 `json:"written"`
	Sent    uint64 `json:"sent"`
	// Delivered reached the measuring consumer; MissedByConsumer were
	// sequenced by the relay but skipped in the consumer's stream (its
	// sequence gaps, which count events of every kind); InFlight were sent
	// within the lag p99 before the end; LostInRelay is the rest of Sent:
	// the relay's own loss.
	Delivered        uint64 `json:"delivered"`
	MissedByConsumer uint64 `json:"missed_by_consumer"`
	InFlight         uint64 `json:"in_flight"`
	LostInRelay      uint64 `json:"lost_in_relay"`
	// NeverSent* are still in the fleet's history, never sent, by what
	// held when each was written: the relay subscribed to the host, the
	// host in a planted outage, or the host up and the relay away.
	NeverSentSubscribed uint64 `json:"never_sent_subscribed"`
	NeverSentDown       uint64 `json:"never_sent_down"`
	NeverSentAway       uint64 `json:"never_sent_away"`
	// Trimmed left the fleet's history before the relay came back for
	// them: they count against the rig, whose history was shorter than the
	// relay's absence.
	Trimmed uint64 `json:"trimmed"`
	// Excess is what the measuring consumer counted (delivered and sequence
	// gaps) beyond what was sent, taken off those buckets so that they add
	// up: commits it saw twice, or gaps of events other than commits.
	Excess uint64 `json:"excess,omitempty"`
}

// Bucket is one line of the accounting.
type Bucket struct {
	What    string
	Commits uint64
}

// Buckets are the accounting's buckets in the report's order.
func (a Accounting) Buckets() []Bucket {
	return []Bucket{
		{"delivered to the measuring consumer", a.Delivered},
		{"sequenced by the relay, missed by the measuring consumer (its sequence gaps)", a.MissedByConsumer},
		{"in flight at the end (sent within the lag p99 before it)", a.InFlight},
		{"reached the relay, never delivered: lost in the relay", a.LostInRelay},
		{"written while the relay was subscribed, never sent", a.NeverSentSubscribed},
		{"written while unsubscribed, host in a planted outage, never sent", a.NeverSentDown},
		{"written while unsubscribed, host up, never sent", a.NeverSentAway},
		{"left the fleet's history before the relay got them", a.Trimmed},
	}
}

// Sum is the buckets' total: Written, when the accounting holds.
func (a Accounting) Sum() uint64 {
	var n uint64
	for _, b := range a.Buckets() {
		n += b.Commits
	}
	return n
}

// AccountingTitle is the accounting section's title.
const AccountingTitle = "Where every commit went"

// AccountingSection is the report's table of the buckets, with each one's
// share of the commits written.
func AccountingSection(a Accounting) Section {
	var b strings.Builder
	fmt.Fprintf(&b, "Every commit the fleet wrote over the run, in exactly one bucket; %d of them reached the relay (the first four).\n\n", a.Sent)
	b.WriteString("| | commits | share |\n|---|---|---|\n")
	share := func(n uint64) string {
		if a.Written == 0 {
			return "–"
		}
		return fmt.Sprintf("%.3f%%", 100*float64(n)/float64(a.Written))
	}
	fmt.Fprintf(&b, "| **written by the fleet** | %d | %s |\n", a.Written, share(a.Written))
	for _, k := range a.Buckets() {
		fmt.Fprintf(&b, "| %s | %d | %s |\n", k.What, k.Commits, share(k.Commits))
	}
	if a.Trimmed > 0 {
		fmt.Fprintf(&b, "\n%d commits left the fleet's history before the relay came back for them: they count against the rig (its history was shorter than the relay's absence), not the relay.\n", a.Trimmed)
	} else {
		b.WriteString("\nTrimmed from the fleet's history before the relay got them: none.\n")
	}
	if a.Excess > 0 {
		fmt.Fprintf(&b, "\nThe measuring consumer counted %d more commits (delivered and sequence gaps) than reached the relay: commits it saw twice, or gaps of events other than commits. The relay's own loss is taken as 0 and the excess taken off the consumer's buckets.\n", a.Excess)
	}
	return Section{Title: AccountingTitle, Markdown: b.String()}
}

// Why a host went dark.
const (
	// DarkUnsubscribed: the relay held no subscription to the host.
	DarkUnsubscribed = "unsubscribed"
	// DarkUndelivered: the relay held one, and passed on none of the
	// host's commits.
	DarkUndelivered = "undelivered"
)

// DarkHost is a host the relay stopped reading for the dark threshold or
// longer, outside a planted outage and as long again after it: all its
// dark spans over the run.
type DarkHost struct {
	Host   string  `json:"host"`
	StartS float64 `json:"start_s"` // its first span's start, seconds into the run
	// LetGoS is when the relay dropped its last subscription to the host
	// before that span, seconds into the run, when earlier than StartS (it
	// was away through an outage, and due back when it ended); 0: not.
	LetGoS float64 `json:"let_go_s,omitempty"`
	// Duration is how long it was dark in all, to the end of the run for a
	// span still open then.
	Duration time.Duration `json:"duration_ns"`
	Ended    bool          `json:"ended"`  // read again before the end
	Reason   string        `json:"reason"` // its first span's: DarkUnsubscribed or DarkUndelivered
	// CommitsLost are the commits it wrote less those delivered over its
	// dark spans.
	CommitsLost uint64 `json:"commits_lost"`
	Spans       int    `json:"spans,omitempty"`
	// Planned: the schedule took the host down for longer than the relay's
	// give-up time on purpose; it is no finding.
	Planned bool `json:"planned,omitempty"`
	// LogLines are the relay's own lines about the host around its first
	// span's start.
	LogLines []string `json:"log_lines,omitempty"`
}

// DarkHostsTitle is the dark hosts section's title.
const DarkHostsTitle = "Hosts the relay stopped reading"

// maxDarkRows bounds the dark hosts the section lists.
const maxDarkRows = 20

// unplannedDark are the dark hosts that are findings, in the given order.
func unplannedDark(hosts []DarkHost) []DarkHost {
	var out []DarkHost
	for _, h := range hosts {
		if !h.Planned {
			out = append(out, h)
		}
	}
	return out
}

// DarkHostsSection lists the hosts the relay stopped reading, most commits
// lost first (the order given), with the relay's log lines about each;
// logNote says why there are none to quote, when none were looked for.
// ok is false when no host went dark.
func DarkHostsSection(hosts []DarkHost, after time.Duration, logNote string) (sec Section, ok bool) {
	if len(hosts) == 0 {
		return Section{}, false
	}
	var b strings.Builder
	found := unplannedDark(hosts)
	if len(found) == 0 {
		b.WriteString("None outside the plan.\n")
	} else {
		fmt.Fprintf(&b, "%d host%s went dark: for %s or more, outside a planted outage and as long again after it, the relay held no subscription to %s, or held one and passed on none of %s commits.\n\n",
			len(found), plural(len(found)), after, pick(len(found), "it", "each"), pick(len(found), "its", "their"))
		b.WriteString("| host | dark from | dark for | why | commits lost |\n|---|---|---|---|---|\n")
		for _, h := range found[:min(len(found), maxDarkRows)] {
			fmt.Fprintf(&b, "| %s | minute %.1f | %s | %s | %d |\n", h.Host, h.StartS/60, darkFor(h), darkWhy(h.Reason), h.CommitsLost)
		}
		if more := len(found) - maxDarkRows; more > 0 {
			fmt.Fprintf(&b, "\nand %d more.\n", more)
		}
	}
	var planned []string
	for _, h := range hosts {
		if h.Planned {
			planned = append(planned, h.Host)
		}
	}
	if len(planned) > 0 {
		fmt.Fprintf(&b, "\nPlanned: %s (outages longer than the relay's give-up time, on purpose).\n", strings.Join(planned, ", "))
	}
	if logNote != "" && len(found) > 0 {
		fmt.Fprintf(&b, "\nThe relay's own lines about them: %s.\n", logNote)
	} else if len(found) > 0 {
		var silent []string
		for _, h := range found[:min(len(found), maxDarkRows)] {
			if len(h.LogLines) == 0 {
				silent = append(silent, h.Host)
				continue
			}
			fmt.Fprintf(&b, "\n%s, the relay's log around minute %.1f:\n\n```\n%s\n```\n", h.Host, h.StartS/60, strings.Join(h.LogLines, "\n"))
		}
		if len(silent) > 0 {
			fmt.Fprintf(&b, "\nNo line of the relay's log about %s says it stopped reading %s.\n", strings.Join(silent, ", "), pick(len(silent), "it", "them"))
		}
	}
	return Section{Title: DarkHostsTitle, Markdown: b.String()}, true
}

// darkFor is how long a host was dark, in how many spans, and whether it
// still was at the end.
func darkFor(h DarkHost) string {
	s := h.Duration.Round(time.Second).String()
	if h.Spans > 1 {
		s += fmt.Sprintf(" in %d spans", h.Spans)
	}
	if !h.Ended {
		s += ", still at the end"
	}
	return s
}

func darkWhy(reason string) string {
	switch reason {
	case DarkUnsubscribed:
		return "no subscription"
	case DarkUndelivered:
		return "subscribed, nothing delivered"
	}
	return reason
}

// darkHeadline is the dark hosts' clause of the headline, "" when none
// is a finding.
func darkHeadline(hosts []DarkHost) string {
	found := unplannedDark(hosts)
	if len(found) == 0 {
		return ""
	}
	return fmt.Sprintf("%d host%s dark (the relay stopped reading %s; most lost from %s, %d commits)",
		len(found), plural(len(found)), pick(len(found), "it", "them"), found[0].Host, found[0].CommitsLost)
}

func pick(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
