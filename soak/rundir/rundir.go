// Package rundir is a run directory's layout and line formats: the names
// of its files, of the memory signals a sample carries and of the context
// keys beside them, each spelled once (TestNamesAreDefinedOnce holds that);
// the lines of samples.jsonl and events.jsonl, hosts.csv's rows and
// run.json's RunInfo; and the one reader and the one writer of each. A
// name once written is never given another meaning, so old run
// directories keep reading.
//
// What the relay's container leaves there (relay.LogFile, its data) is
// named by package relay, which writes it.
//
// It must not know what the lines are used for: how memory is judged,
// reported or attributed.
package rundir

// Files of a run directory.
const (
	Samples     = "samples.jsonl"     // the relay's memory and the run's counters, a line per sample
	RigSamples  = "rig-samples.jsonl" // the rig's own memory and CPU: the rig must not leak
	Events      = "events.jsonl"      // what happened when (start, relay exits, restarts, the end)
	Run         = "run.json"          // every setting, to repeat the run
	Report      = "report.md"
	Verdict     = "verdict.json"
	JUnit       = "junit.xml"
	Plot        = "memory.png"
	Attribution = "attribution.json" // an attribution run's fit
	HeapWarmup  = "heap-warmup.pb.gz"
	HeapEnd     = "heap-end.pb.gz"
	// HostsCSV is every host's commits for the relay (see HostRow),
	// replaced whole once a minute and at the end.
	HostsCSV = "hosts.csv"
	// HostsForRelay maps the fleet's names for a relay the rig does not
	// start (append it to the relay's /etc/hosts).
	HostsForRelay = "hosts-for-relay"
	// A and B are an A/B run's arms, each a run directory of its own.
	A = "a"
	B = "b"
	// A bisect's directory holds an A/B run directory per step and these.
	BisectReport = "bisect.md"
	BisectJSON   = "bisect.json"
	BisectPlot   = "bisect.png"
	BisectBuilds = "builds" // a build log per commit
)

// Memory signals of a sample line (judged unless noted).
const (
	SignalRssAnon          = "rss_anon"           // /proc/<pid>/status RssAnon: no reclaimable file pages
	SignalVmRSS            = "vm_rss"             // VmRSS
	SignalRSS              = "rss"                // the relay's own resident-set gauge
	SignalCgroupWorkingSet = "cgroup_working_set" // cgroup usage − inactive_file
	SignalHeapInuse        = "heap_inuse"         // the relay's own heap gauge
	SignalLiveHeap         = "live_heap"          // its collector's goal over (1 + GOGC/100); context: its floors are judged
)

// Context keys of a sample line, read by the probes from outside the
// relay (context, not judged).
const (
	RssFile          = "rss_file"
	VmHWM            = "vm_hwm"
	CgroupUsage      = "cgroup_usage"
	CgroupOOMKills   = "cgroup_oom_kills"
	CPUSeconds       = "cpu_seconds"
	CPUSystemSeconds = "cpu_system_seconds"
)

// Context keys of a sample line: the run's counters so far.
const (
	CommitsSent       = "commits_sent"
	CommitsDelivered  = "commits_delivered"
	LagP50Ms          = "lag_p50_ms"
	LagP99Ms          = "lag_p99_ms"
	Connections       = "connections" // the fleet's open connections (the relay's host subscriptions)
	PLCRequests       = "plc_requests"
	HostSubscribes    = "host_subscribes"
	FramesPastHistory = "frames_past_history"
	VerifyFailed      = "verify_failed"
	// Over the sample's own interval: commits delivered ÷ commits written,
	// with those younger than the interval's lag p99 in flight; and that
	// lag.
	DeliveryInterval = "delivery_interval"
	LagIntervalP50Ms = "lag_interval_p50_ms"
	LagIntervalP99Ms = "lag_interval_p99_ms"
	// The measuring consumer's evidence so far: events missing between
	// consecutive seqs, its connections, error frames, undecodable frames.
	SeqGaps         = "seq_gaps"
	MeasureConnects = "measure_connects"
	ErrorFrames     = "error_frames"
	DecodeErrors    = "decode_errors"
	// DarkHosts counts the hosts dark at the sample: the relay held no
	// subscription to them, or passed on none of their commits.
	DarkHosts = "dark_hosts"
	// The load's last closed window.
	AchievedRate  = "achieved_rate"
	TargetRate    = "target_rate"
	LatenessP50Ms = "lateness_p50_ms"
	LatenessP99Ms = "lateness_p99_ms"
	// The process's goroutines: the relay's (its profile's gauge) in
	// samples.jsonl, the rig's own in rig-samples.jsonl; judged as kept
	// memory. Then the rig's own runtime, in rig-samples.jsonl.
	Goroutines       = "goroutines"
	HeapObjectsBytes = "heap_objects_bytes"
	HeapGoalBytes    = "heap_goal_bytes"
)

// Kinds of events.jsonl lines about a host the relay stopped reading:
// found dark (detail: host, start, start_s, reason), and read again
// (detail: host, dark_for_s, commits_lost).
const (
	EventHostDark = "host_dark"
	EventHostLit  = "host_lit"
)

// Context keys of a sample line: the extra consumers' counts (soak/crowd).
const (
	CrowdConnects      = "crowd_connects"
	CrowdDisconnects   = "crowd_disconnects"
	CrowdCursorResumes = "crowd_cursor_resumes"
	CrowdOldCursors    = "crowd_old_cursors"
	CrowdCutOff        = "crowd_cut_off"
	CrowdSlowNotCut    = "crowd_slow_not_cut"
	CrowdResets        = "crowd_resets"
	CrowdNewIdentities = "crowd_new_identities"
	CrowdStuck         = "crowd_stuck"
	CrowdStuckReleased = "crowd_stuck_released"
	CrowdFrames        = "crowd_frames"
	CrowdReplayed      = "crowd_replayed"
	CrowdErrors        = "crowd_errors"
	CrowdConnected     = "crowd_connected"
)

// MetricSeries is a sample's count of the series the relay's /metrics
// serves (soak/probe.Series), taken when the crowd runs: per-client labels
// never forgotten grow it with every new client identity.
const MetricSeries = "relay_metric_series"
