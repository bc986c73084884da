package fakepds

import (
	"fmt"
	"log/slog"
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
	// Seed derives every key, DID and record, so a run repeats exactly
	// (default 1).
	Seed int64
	// PDSScheme is the scheme of the PDS endpoint in DID documents: "http"
	// (default; what a relay dialling ws:// hosts expects) or "https".
	PDSScheme string
	// StateDir, when set, keeps seqs, repositories and keys across restarts.
	StateDir string

	// HistoryFrames bounds each host's replay history (default 256 frames);
	// HistoryAge drops older frames when new ones arrive (default 30 s), so
	// the history costs about rate × age × frame size in all (~30 MiB at
	// 700 frames/s) however many hosts there are.
	HistoryFrames int
	HistoryAge    time.Duration
	// SendQueue bounds each subscriber's queue (default 512 frames); a
	// consumer that falls that far behind is cut off with ConsumerTooSlow.
	SendQueue int
	// MaxRecords bounds each repository (default 48 records): past it each
	// commit also deletes the account's oldest record, as real users do.
	MaxRecords int

	// Churn sets identity and account churn; the zero value means the
	// realistic defaults, Churn{Off: true} none at all.
	Churn Churn
	// PLC sets the PLC directory's behaviour (latency, errors).
	PLC PLCBehaviour
	// Shape, when set, is what synthetic commits look like (shape.go);
	// nil is the built-in mix.
	Shape *Shape

	Logger *slog.Logger
}

// Churn rates are events per 1,000 frames written, so they scale with the
// load. Defaults follow the live network's mix (the shared capture has one
// #identity and one #account in 150 frames) while keeping a relay's DID
// resolver busy for the whole run: the relay caches documents for a day,
// so without churn its resolver goes quiet after warm-up.
type Churn struct {
	Off bool
	// Identity: #identity events (default 5 per 1,000 frames); KeyRotation
	// is the fraction of those that also rotate the signing key (default 0.1).
	Identity    float64
	KeyRotation float64
	// NewAccount: accounts created (default 2 per 1,000); each host keeps
	// its account count bounded by deleting its oldest account when over.
	NewAccount float64
	// Move: accounts moving to another host (default 0.5 per 1,000).
	Move float64
	// Status: #account deactivations, each reactivated later (default 1).
	Status float64
	// Sync: #sync events (default 1 per 1,000).
	Sync float64
}

// PLCBehaviour makes the PLC directory slow or unreliable on purpose.
type PLCBehaviour struct {
	// Latency is added to every DID document request.
	Latency time.Duration
	// ErrorRate is the fraction of DID document requests answered 500.
	ErrorRate float64
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
	if c.HistoryFrames <= 0 {
		c.HistoryFrames = 256
	}
	if c.HistoryAge <= 0 {
		c.HistoryAge = 30 * time.Second
	}
	if c.SendQueue <= 0 {
		c.SendQueue = 512
	}
	if c.MaxRecords <= 0 {
		c.MaxRecords = 48
	}
	if !c.Churn.Off {
		d := &c.Churn
		setDefault(&d.Identity, 5)
		setDefault(&d.KeyRotation, 0.1)
		setDefault(&d.NewAccount, 2)
		setDefault(&d.Move, 0.5)
		setDefault(&d.Status, 1)
		setDefault(&d.Sync, 1)
	}
	if c.PLC.ErrorRate < 0 || c.PLC.ErrorRate > 1 {
		return c, fmt.Errorf("fakepds: PLC error rate must be in [0,1], got %g", c.PLC.ErrorRate)
	}
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

func setDefault(v *float64, d float64) {
	if *v == 0 {
		*v = d
	}
}

// HostName is the name of host i (0-based): pds0001.test for i=0.
func hostName(i int, domain string) string {
	return fmt.Sprintf("pds%04d.%s", i+1, domain)
}
