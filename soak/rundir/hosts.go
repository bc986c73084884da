package rundir

import (
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/relaysoak/relaysoak/internal/atomicfile"
)

// HostRow is one line of hosts.csv: one host's commits for the relay over
// the run so far. Written counts every commit the host sequenced; Sent
// those the fleet wrote to the relay's socket; Delivered those the
// measuring consumer received, by the account's host when each arrived;
// Trimmed those that left the fleet's history before the relay got them.
// NeverSent* are the rest, still in the history and never sent, by what
// held when each was written: the relay subscribed, the host in a planted
// outage, or the host up and the relay away. Subscribed is whether the
// relay held a subscription at the time; Dark whether the rig judged the
// host dark then.
type HostRow struct {
	Host                                              string
	Written, Sent, Delivered, Trimmed                 uint64
	NeverSentSubscribed, NeverSentDown, NeverSentAway uint64
	Subscribed, Dark                                  bool
}

// HostsColumns is hosts.csv's header, in HostRow's order.
var HostsColumns = []string{"host", "written", "sent", "delivered", "trimmed",
	"never_sent_subscribed", "never_sent_down", "never_sent_away", "subscribed", "dark"}

// WriteHosts replaces the hosts file at path with rows, whole: a reader
// sees the previous file or this one, never a part.
func WriteHosts(path string, rows []HostRow) error {
	f, err := atomicfile.Create(path, 0o644)
	if err != nil {
		return fmt.Errorf("hosts file: %w", err)
	}
	defer f.Abort()
	w := csv.NewWriter(f)
	w.Write(HostsColumns)
	for _, r := range rows {
		n := func(v uint64) string { return strconv.FormatUint(v, 10) }
		w.Write([]string{r.Host, n(r.Written), n(r.Sent), n(r.Delivered), n(r.Trimmed),
			n(r.NeverSentSubscribed), n(r.NeverSentDown), n(r.NeverSentAway),
			strconv.FormatBool(r.Subscribed), strconv.FormatBool(r.Dark)})
	}
	if w.Flush(); w.Error() != nil {
		return fmt.Errorf("hosts file %s: %w", path, w.Error())
	}
	return f.Commit()
}

// ReadHosts reads a hosts file; its header must be HostsColumns.
func ReadHosts(path string) ([]HostRow, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("hosts file: %w", err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = len(HostsColumns)
	head, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: header: %w", path, err)
	}
	for i, c := range HostsColumns {
		if head[i] != c {
			return nil, fmt.Errorf("%s: column %d is %q, want %q", path, i+1, head[i], c)
		}
	}
	var out []HostRow
	for line := 2; ; line++ {
		rec, err := r.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		row, err := parseHostRow(rec)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		out = append(out, row)
	}
}

func parseHostRow(rec []string) (HostRow, error) {
	row := HostRow{Host: rec[0]}
	for i, p := range []*uint64{&row.Written, &row.Sent, &row.Delivered, &row.Trimmed,
		&row.NeverSentSubscribed, &row.NeverSentDown, &row.NeverSentAway} {
		v, err := strconv.ParseUint(rec[i+1], 10, 64)
		if err != nil {
			return row, fmt.Errorf("%s: %w", HostsColumns[i+1], err)
		}
		*p = v
	}
	for i, p := range []*bool{&row.Subscribed, &row.Dark} {
		v, err := strconv.ParseBool(rec[8+i])
		if err != nil {
			return row, fmt.Errorf("%s: %w", HostsColumns[8+i], err)
		}
		*p = v
	}
	return row, nil
}
