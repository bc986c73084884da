package fakepds

import (
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Config describes a fleet. Zero values mean the defaults documented on each
// field, so Config{} is a small, valid fleet.
type Config struct {
	// Hosts is the number of PDS hosts (default 10; 1 to 20,000 and more).
	Hosts int
	// AccountsPerHost is the number of synthetic accounts each host starts
	// with (default 2).
	AccountsPerHost int
	// Domain is the DNS suffix of every name the fleet answers to (default
	// "test"): hosts are pds0001.<domain>…, the PLC is plc.<domain>, the
	// upstream relay face is relay.<domain>.
	Domain string
	// PLCName and UpstreamName override the PLC and upstream names.
	PLCName, UpstreamName string
	// PLCAliases and UpstreamAliases are further names the PLC and the
	// upstream face answer to, such as plc.directory and bsky.network: an
	// unmodified relay hard-codes those, so the fleet impersonates them.
	PLCAliases, UpstreamAliases []string
	// Seed derives every key, DID and record, so a run repeats exactly
	// (default 1).
	Seed int64
	// PDSScheme is the scheme of the PDS endpoint in DID documents: "http"
	// (default; what a relay dialling ws:// hosts expects) or "https".
	PDSScheme string
	// StateDir, when set, keeps seqs, repositories and keys across restarts.
	StateDir string

	// History is how far back each host serves a cursor (default 1 h, as a
	// real PDS would for a soak's purposes): every frame of it is kept on
	// disk, in HistoryDir (default a temporary directory removed at Close).
	// Negative: no disk; the in-memory tail is the whole history.
	History    time.Duration
	HistoryDir string
	// TailFrames and TailAge bound each host's in-memory tail of recent
	// frames (a host's newest too), which serves quick reconnects without
	// the disk: it costs about rate × age × frame size in all however many
	// hosts there are and however long the run. Defaults: 64 frames and
	// 5 s above a spool; 256 frames and 30 s when the tail is the whole
	// history.
	TailFrames int
	TailAge    time.Duration
	// SendQueue bounds each subscriber's queue (default 512 frames); a
	// consumer that falls that far behind is cut off with ConsumerTooSlow.
	SendQueue int
	// MaxRecords bounds each repository (default 48 records): past it each
	// commit also deletes the account's oldest record, as real users do.
	MaxRecords int
	// StartRecords is how many records each synthetic account starts with
	// (default MaxRecords, about where repositories settle): the fleet's
	// memory is then level from the start, not filling for the hour in
	// which churn renews the population. Negative: accounts start empty,
	// as a brand-new account on a PDS does.
	StartRecords int

	// MoveDelay is how long a move keeps an account inactive between
	// hosts (default 3 s), so a relay drains the old host's queue first.
	MoveDelay time.Duration
	// PLC sets the PLC directory's behaviour (latency, errors).
	PLC PLCBehaviour
	// Shape, when set, is what synthetic commits look like (shape.go);
	// nil is the built-in mix.
	Shape *Shape

	Logger *slog.Logger
}

// PLCBehaviour makes the PLC directory slow or unreliable on purpose, so a
// relay's resolver and its connection pool are stressed the way production
// stresses them. Faults apply to every PLC request but the health check
// (DID documents, logs, /export); the zero value is a fast, reliable PLC.
type PLCBehaviour struct {
	// Latency is added to every request.
	Latency time.Duration
	// Jitter, when set, adds a lognormal delay on top of Latency whose
	// median is Jitter and whose spread is JitterSigma (default 1): most
	// requests are quick, a long tail is not. It is capped at 20 × Jitter
	// so one draw cannot stall a run.
	Jitter      time.Duration
	JitterSigma float64
	// ErrorRate is the fraction of requests answered 500.
	ErrorRate float64
	// SlowRate is the fraction of answers trickled out over SlowFor
	// (default 2 s) in small flushed pieces: the headers come at once, the
	// body drips, as from an overloaded directory.
	SlowRate float64
	SlowFor  time.Duration
	// ResetRate is the fraction of requests whose connection is reset
	// (TCP RST, no response); CloseRate the fraction closed cleanly with no
	// response, as a server that dropped an idle pooled connection.
	ResetRate, CloseRate float64
	// NoKeepAlive answers every request with Connection: close, so each
	// resolution pays for a new connection (and TLS handshake).
	NoKeepAlive bool
}

func (b PLCBehaviour) withDefaults() (PLCBehaviour, error) {
	for name, v := range map[string]float64{"error": b.ErrorRate, "slow": b.SlowRate, "reset": b.ResetRate, "close": b.CloseRate} {
		if v < 0 || v > 1 {
			return b, fmt.Errorf("fakepds: PLC %s rate must be in [0,1], got %g", name, v)
		}
	}
	if b.ResetRate+b.CloseRate > 1 {
		return b, fmt.Errorf("fakepds: PLC reset rate %g and close rate %g add up to more than 1", b.ResetRate, b.CloseRate)
	}
	if b.Latency < 0 || b.Jitter < 0 || b.SlowFor < 0 {
		return b, fmt.Errorf("fakepds: PLC latency, jitter and slow duration must not be negative")
	}
	if b.JitterSigma < 0 {
		return b, fmt.Errorf("fakepds: PLC jitter sigma must not be negative, got %g", b.JitterSigma)
	}
	if b.JitterSigma == 0 {
		b.JitterSigma = 1
	}
	if b.SlowFor == 0 {
		b.SlowFor = 2 * time.Second
	}
	return b, nil
}

func (c Config) withDefaults() (Config, error) {
	if c.Hosts == 0 {
		c.Hosts = 10
	}
	if c.Hosts < 0 || c.Hosts > 999999 {
		return c, fmt.Errorf("fakepds: hosts must be between 1 and 999999, got %d", c.Hosts)
	}
	if c.AccountsPerHost == 0 {
		c.AccountsPerHost = 2
	}
	if c.AccountsPerHost < 0 {
		return c, fmt.Errorf("fakepds: accounts per host must be positive, got %d", c.AccountsPerHost)
	}
	if c.Domain == "" {
		c.Domain = "test"
	}
	if c.PLCName == "" {
		c.PLCName = "plc." + c.Domain
	}
	if c.UpstreamName == "" {
		c.UpstreamName = "relay." + c.Domain
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	switch c.PDSScheme {
	case "":
		c.PDSScheme = "http"
	case "http", "https":
	default:
		return c, fmt.Errorf("fakepds: PDS scheme must be http or https, got %q", c.PDSScheme)
	}
	if c.History == 0 {
		c.History = time.Hour
	}
	tailFrames, tailAge := 64, 5*time.Second
	if c.History < 0 {
		tailFrames, tailAge = 256, 30*time.Second
	}
	if c.TailFrames <= 0 {
		c.TailFrames = tailFrames
	}
	if c.TailAge <= 0 {
		c.TailAge = tailAge
	}
	if c.SendQueue <= 0 {
		c.SendQueue = 512
	}
	if c.MaxRecords <= 0 {
		c.MaxRecords = 48
	}
	switch {
	case c.StartRecords == 0 || c.StartRecords > c.MaxRecords:
		c.StartRecords = c.MaxRecords
	case c.StartRecords < 0:
		c.StartRecords = 0
	}
	if c.MoveDelay <= 0 {
		c.MoveDelay = 3 * time.Second
	}
	plc, err := c.PLC.withDefaults()
	if err != nil {
		return c, err
	}
	c.PLC = plc
	c.PLCAliases = canonicalNames(c.PLCAliases)
	c.UpstreamAliases = canonicalNames(c.UpstreamAliases)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	shape, err := c.Shape.withDefaults()
	if err != nil {
		return c, err
	}
	c.Shape = shape
	return c, nil
}

func canonicalNames(names []string) []string {
	var out []string
	for _, n := range names {
		if n = canonicalHost(strings.TrimSpace(n)); n != "" {
			out = append(out, n)
		}
	}
	return out
}

// HostName is the name of host i (0-based): pds0001.test for i=0.
func HostName(i int, domain string) string {
	return fmt.Sprintf("pds%04d.%s", i+1, domain)
}
