package relay

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/cmd/relay/relay/models"
	"github.com/bluesky-social/indigo/util/cliutil"
	_ "github.com/mattn/go-sqlite3" // the relay's own database format
)

// Indigo is the profile of github.com/bluesky-social/indigo/cmd/relay.
// Zero values are the soak defaults.
type Indigo struct {
	// ReplayWindow bounds the relay's event log on disk; default 10m (the
	// 72h default is hundreds of GB at production rates).
	ReplayWindow time.Duration
	// AdminPassword; default "relaysoak" (set, so the relay does not print a
	// random one into the log).
	AdminPassword string
	// Lenient turns on --lenient-sync-validation; default strict.
	Lenient bool
	// AccountLimit per host row; default 1,000,000 (past the limit, new
	// accounts are host-throttled and their events dropped).
	AccountLimit int64
	// Env is added to (and overrides) the profile's environment.
	Env map[string]string
}

// Facts of indigo's relay.
func (p *Indigo) Facts() Facts {
	return Facts{
		Name:         "indigo",
		APIPort:      indigoAPIPort,
		MetricsPort:  indigoMetricsPort,
		MetricsPath:  "/metrics",
		HealthPath:   "/xrpc/_health",
		FirehosePath: "/xrpc/com.atproto.sync.subscribeRepos",
		DataDir:      "/data",
		CACertMount:  "/etc/relaysoak/ca.pem",
		MemoryMetrics: []string{"process_resident_memory_bytes", "go_memstats_heap_inuse_bytes",
			"go_memstats_heap_idle_bytes", "go_memstats_heap_released_bytes", "go_memstats_sys_bytes", "go_goroutines"},
		StopSignal: "SIGTERM",
		StopGrace:  30 * time.Second,
		// The validation failures and skips below.
		LogPatterns: []string{IndigoLogFailedHandling, IndigoLogBadPrevData, IndigoLogBadInversion,
			IndigoLogSkippedSig, IndigoLogFirstCommit},
		// Its slurper's warnings when a host stops answering.
		DarkLogPatterns: []string{IndigoLogDialFailed, IndigoLogHostOffline},
		// Commits received per host; DID resolutions by directory and status.
		Counters: Counters{CommitsReceived: "repo_commits_received_counter", Resolutions: "atproto_identity_resolve_did",
			ResolutionErrors: map[string]string{"status": "error"}},
		// client_golang's default collectors serve the goal and GOGC.
		LiveHeap: LiveHeap{Goal: "go_memstats_next_gc_bytes", Percent: "go_gc_gogc_percent"},
		// client_golang's default collectors serve it too.
		Goroutines: "go_goroutines",
		// Go's heap profile, on the metrics port.
		PprofPath: "/debug/pprof/heap",
		// Static for a FROM scratch image; cgo for sqlite (see
		// ../shared/notes/indigo-relay.md).
		Build: GoBuild{Main: "./cmd/relay", CGO: true,
			Tags:    []string{"netgo", "osusergo", "sqlite_omit_load_extension", "timetzdata"},
			LDFlags: "-s -w -linkmode external -extldflags -static", Args: []string{"serve"}},
	}
}

// Ports of indigo's relay, which Command sets.
const (
	indigoAPIPort     = 2470
	indigoMetricsPort = 2471
)

// DefaultImage is indigo's relay at the version go.mod pins, built here
// the first time.
func (p *Indigo) DefaultImage(ctx context.Context, log io.Writer) (string, error) {
	tag, built, err := EnsureIndigoImage(ctx, ImageConfig{Log: log})
	if err != nil {
		return "", err
	}
	if built && log != nil {
		fmt.Fprintf(log, "relaysoak: built image %s\n", tag)
	}
	return tag, nil
}

// Lines of indigo's log the report counts: it counts none of these in a
// metric.
const (
	IndigoLogFailedHandling = "failed handling event"
	IndigoLogBadPrevData    = "commit with miss-matching prevData"
	IndigoLogBadInversion   = "failed to invert commit MST"
	IndigoLogSkippedSig     = "skipping commit signature validation"
	IndigoLogFirstCommit    = "not verifying prevData or MST inversion for first commit from account"
)

// Lines of indigo's log (JSON, one object a line, with the host's name)
// that say it stopped reading a host: each failed dial, and the give-up
// after about 16 of them.
const (
	IndigoLogDialFailed  = "dialing failed"
	IndigoLogHostOffline = "host does not appear to be online"
)

// Command configures through the environment (every flag of the relay is
// also a variable), so the image's entrypoint and `serve` stay as they are.
func (p *Indigo) Command(w Wiring) ([]string, map[string]string) {
	rw := p.ReplayWindow
	if rw <= 0 {
		rw = 10 * time.Minute
	}
	pw := p.AdminPassword
	if pw == "" {
		pw = "relaysoak"
	}
	env := map[string]string{
		"DATABASE_URL":         "sqlite:///data/relay.sqlite",
		"RELAY_PERSIST_DIR":    "/data/persist",
		"RELAY_REPLAY_WINDOW":  rw.String(),
		"RELAY_ADMIN_PASSWORD": pw,
		"RELAY_API_BIND":       fmt.Sprintf(":%d", indigoAPIPort),
		"RELAY_METRICS_LISTEN": fmt.Sprintf(":%d", indigoMetricsPort),
		"ENVIRONMENT":          "soak",
	}
	if w.PLCURL != "" {
		env["RELAY_PLC_HOST"] = w.PLCURL
	}
	if w.CACertFile != "" {
		// Go reads SSL_CERT_FILE instead of the system roots: the relay
		// trusts the run's CA and nothing else (a scratch image has no roots).
		env["SSL_CERT_FILE"] = w.CACertFile
	}
	if p.Lenient {
		env["RELAY_LENIENT_SYNC_VALIDATION"] = "true"
	}
	for k, v := range p.Env {
		env[k] = v
	}
	return []string{"serve"}, env
}

// Onboard follows the only route that works offline: requestCrawl refuses
// private addresses, so the relay gets rows in its host table. An image
// other than the pinned one (see PrepareData) creates its schema on first
// start (the runner has started it), so: stop it gracefully, add trusted
// ws:// rows with a large account limit, start again; on start it dials
// every active host.
func (p *Indigo) Onboard(ctx context.Context, c Controller, hosts []Host) error {
	if len(hosts) == 0 {
		return nil
	}
	for _, h := range hosts {
		if h.TLS {
			return fmt.Errorf("indigo onboarding: host %s is wss://, but indigo's slurper dials TLS hosts through its SSRF guard (public addresses only) and the fleet is on a private Docker network: it would never connect; onboard the hosts as ws:// (fleet PDSScheme http)", h.Name)
		}
	}
	if err := c.Stop(ctx); err != nil {
		return fmt.Errorf("indigo onboarding: stopping after the schema was created: %w", err)
	}
	dbPath := filepath.Join(c.HostDataDir(), "relay.sqlite")
	if _, err := os.Stat(dbPath); err != nil {
		return fmt.Errorf("indigo onboarding: the relay left no database at %s after its first start: %w", dbPath, err)
	}
	if err := p.insertHosts(ctx, dbPath, hosts); err != nil {
		return err
	}
	if err := c.Start(ctx); err != nil {
		return fmt.Errorf("indigo onboarding: restarting with %d hosts: %w", len(hosts), err)
	}
	return nil
}

// PrepareData onboards before the first start when the image is the
// pinned indigo, whose schema PrepareDatabase writes with that version's
// own models: the relay then boots once. Any other image may be another
// version, so Onboard lets the relay make its schema and adds the rows
// between two starts.
func (p *Indigo) PrepareData(ctx context.Context, image, hostDataDir string, hosts []Host) (bool, error) {
	if len(hosts) == 0 {
		return false, nil
	}
	v, err := IndigoVersion(ctx, ".")
	if err != nil || image != IndigoImageTag(v) {
		return false, nil
	}
	return true, p.PrepareDatabase(ctx, filepath.Join(hostDataDir, "relay.sqlite"), hosts)
}

func (p *Indigo) insertHosts(ctx context.Context, dbPath string, hosts []Host) error {
	limit := p.AccountLimit
	if limit <= 0 {
		limit = 1_000_000
	}
	db, err := sql.Open("sqlite3", "file:"+dbPath+"?_busy_timeout=10000")
	if err != nil {
		return fmt.Errorf("indigo onboarding: opening %s: %w", dbPath, err)
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("indigo onboarding: %s: %w", dbPath, err)
	}
	defer tx.Rollback()
	// Upsert: a data dir reused from an earlier run keeps its rows and
	// cursors, but every host is made active and trusted again.
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO host
		(created_at, updated_at, hostname, no_ssl, account_limit, trusted, status, last_seq, account_count)
		VALUES (?, ?, ?, ?, ?, 1, 'active', -1, 0)
		ON CONFLICT(hostname) DO UPDATE SET updated_at=excluded.updated_at, no_ssl=excluded.no_ssl,
			account_limit=excluded.account_limit, trusted=1, status='active'`)
	if err != nil {
		return fmt.Errorf("indigo onboarding: preparing host insert in %s (has the relay's schema changed?): %w", dbPath, err)
	}
	defer stmt.Close()
	now := time.Now().UTC()
	for _, h := range hosts {
		name := strings.ToLower(h.Name)
		if _, err := stmt.ExecContext(ctx, now, now, name, !h.TLS, limit); err != nil {
			return fmt.Errorf("indigo onboarding: inserting host %s into %s: %w", name, dbPath, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("indigo onboarding: committing %d hosts to %s: %w", len(hosts), dbPath, err)
	}
	return nil
}

// PrepareDatabase makes the relay's database before its first start:
// the schema made by the relay's own models at the pinned version (the
// migration the relay runs on start, which then finds nothing to do), then
// the host rows Onboard would add. For deployments that cannot stop and
// restart the relay between two starts (a docker-compose one-shot service).
func (p *Indigo) PrepareDatabase(ctx context.Context, dbPath string, hosts []Host) error {
	db, err := cliutil.SetupDatabase("sqlite://"+dbPath, 1)
	if err != nil {
		return fmt.Errorf("indigo database %s: %w", dbPath, err)
	}
	for _, m := range []any{models.DomainBan{}, models.Host{}, models.Account{}, models.AccountRepo{}} {
		if err := db.WithContext(ctx).AutoMigrate(m); err != nil {
			return fmt.Errorf("indigo database %s: creating the relay's schema (%T): %w", dbPath, m, err)
		}
	}
	if sqldb, err := db.DB(); err == nil {
		sqldb.Close()
	}
	for _, h := range hosts {
		if h.TLS {
			return fmt.Errorf("indigo database %s: host %s is wss://, which indigo's slurper only dials at public addresses; use ws:// hosts", dbPath, h.Name)
		}
	}
	return p.insertHosts(ctx, dbPath, hosts)
}
