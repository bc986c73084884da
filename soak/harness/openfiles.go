package harness

import (
	"fmt"
	"syscall"
)

// filesBesideHosts is what the rig keeps open besides the relays'
// connections to its hosts: the consumer, PLC and scrape connections, the
// run's files, the extra consumers of a busy run.
const filesBesideHosts = 1024

// checkOpenFiles says, before anything starts, whether relays relays
// dialling every one of hosts hosts fit under this process's open-files
// limit, raising the soft limit to the hard one first (Go does that at
// start on Linux; doing it here too covers a limit lowered since).
func checkOpenFiles(hosts, relays int) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return nil // no limit to read: nothing to say
	}
	if lim.Cur < lim.Max {
		raised := lim
		raised.Cur = lim.Max
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised) == nil {
			lim = raised
		}
	}
	return openFilesFit(hosts, relays, lim.Cur, lim.Max)
}

func openFilesFit(hosts, relays int, soft, hard uint64) error {
	need := uint64(hosts*relays) + filesBesideHosts
	if soft >= need {
		return nil
	}
	most := 0
	if soft > filesBesideHosts {
		most = int(soft-filesBesideHosts) / relays
	}
	return fmt.Errorf("rig: %d hosts need about %d open files (one connection from each relay to each host, and %d for the rest), but this process may open only %d (soft limit; hard limit %d): raise the hard limit (`ulimit -Hn 65536` as root, LimitNOFILE= in a systemd unit, --ulimit nofile= for a container) or run at most %d hosts here",
		hosts, need, filesBesideHosts, soft, hard, most)
}
