package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/relaysoak/relaysoak/internal/sharedfiles"
	"github.com/relaysoak/relaysoak/internal/testkit"
	"github.com/relaysoak/relaysoak/relay"
)

// badRow is one bad input to one subcommand and what the contract says of it.
type badRow struct {
	name  string
	args  []string
	env   []string
	code  int
	names string // the first stderr line must contain this (the flag, variable or file)
	// absent are files that must not exist afterwards.
	absent []string
}

// baseArgs make each subcommand valid as far as parsing goes, so a row's
// one bad value is what fails; a positional input comes first. Paths are
// the fixtures writeFixtures makes.
var baseArgs = map[string][]string{
	"analyze":         {"good.csv"},
	"report":          {"arun"},
	"capture import":  {"--frames", "good.bin", "--out", "out.rscap"},
	"capture export":  {"good.rscap", "--out", "out.bin"},
	"capture inspect": {"good.rscap"},
	"capture record":  {"--url", "ws://127.0.0.1:1", "--out", "rec.rscap"},
	"bisect":          {"--relay-source", "adir", "--good", "v1", "--bad", "main"},
	"bisect-step":     {"--baseline", "v1"},
}

// writeFixtures lays out what rows refer to: good inputs, an empty file,
// a directory, a regular file to put paths under, and keep.bin, an output
// that must survive every failure.
func writeFixtures(t *testing.T, dir string) {
	t.Helper()
	files := map[string]string{
		"good.csv":   "seconds,rss_anon\n0,100\n10,200\n",
		"good.bin":   "not really a dump, but not empty",
		"good.rscap": "not really a capture, but not empty",
		"empty.bin":  "",
		"afile":      "a regular file",
		"keep.bin":   "the user's earlier export",
		"arun/x":     "a run directory's file",
		"nomem.csv":  "seconds,fleet_sent,connections\n0,1,2\n10,3,4\n",
		// A length prefix of 5 and then garbage: not a firehose frame.
		"damaged.bin": "\x05\x00\x00\x00garbage after it",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	}
	require.NoError(t, os.Mkdir(filepath.Join(dir, "adir"), 0o755))
}

// namedRows are bad command lines operators have typed, each by name.
func namedRows() []badRow {
	return []badRow{
		{name: "soak sample-every negative", args: []string{"soak", "--sample-every=-1s"}, code: exitUsage, names: "--sample-every"},
		{name: "soak id escapes runs dir", args: []string{"soak", "--id", "../../x"}, code: exitUsage, names: "--id"},
		{name: "soak duration negative", args: []string{"soak", "--duration=-5m"}, code: exitUsage, names: "--duration"},
		{name: "soak rate negative", args: []string{"soak", "--rate=-5"}, code: exitUsage, names: "--rate"},
		{name: "soak mem-limit fraction of a byte", args: []string{"soak", "--mem-limit=0.5"}, code: exitUsage, names: "--mem-limit"},
		{name: "soak hosts negative", args: []string{"soak", "--hosts", "-5"}, code: exitUsage, names: "--hosts"},
		{name: "soak relay dies on no image for zlay", args: []string{"soak", "--relay-profile", "zlay"}, code: exitUsage, names: "--relay-image"},
		{name: "fakepds hosts zero", args: []string{"fakepds", "--hosts", "0"}, code: exitUsage, names: "--hosts"},
		{name: "fakepds hosts negative", args: []string{"fakepds", "--hosts", "-5"}, code: exitUsage, names: "--hosts"},
		{name: "fakepds accounts zero", args: []string{"fakepds", "--accounts-per-host", "0"}, code: exitUsage, names: "--accounts-per-host"},
		{name: "fakepds seed zero", args: []string{"fakepds", "--seed", "0"}, code: exitUsage, names: "--seed"},
		{name: "analyze alpha 5", args: []string{"analyze", "good.csv", "--alpha", "5"}, code: exitUsage, names: "--alpha"},
		{name: "analyze alpha NaN", args: []string{"analyze", "good.csv", "--alpha", "NaN"}, code: exitUsage, names: "--alpha"},
		{name: "analyze flag after file", args: []string{"analyze", "good.csv", "--column", "nonesuch"}, code: exitUsage, names: "nonesuch"},
		{name: "analyze missing file", args: []string{"analyze", "missing.csv"}, code: exitBadInput, names: "missing.csv"},
		{name: "analyze no memory column", args: []string{"analyze", "nomem.csv"}, code: exitUsage, names: "fleet_sent, connections"},
		{name: "capture import damaged dump", args: []string{"capture", "import", "--frames", "damaged.bin", "--out", "keep.bin"}, code: exitBadInput, names: "damaged.bin"},
		{name: "capture import damaged dump leaves nothing", args: []string{"capture", "import", "--frames", "damaged.bin", "--out", "new.rscap"}, code: exitBadInput, names: "damaged.bin", absent: []string{"new.rscap"}},
		{name: "capture export missing keeps output", args: []string{"capture", "export", "missing.rscap", "--out", "keep.bin"}, code: exitBadInput, names: "missing.rscap"},
		{name: "capture import empty dump", args: []string{"capture", "import", "--frames", "empty.bin", "--out", "out.rscap"}, code: exitBadInput, names: "empty.bin", absent: []string{"out.rscap"}},
		{name: "capture import positional dump", args: []string{"capture", "import", "good.bin", "--out", "x"}, code: exitUsage, names: "--frames", absent: []string{"x"}},
		{name: "capture unknown subcommand", args: []string{"capture", "frobnicate"}, code: exitUsage, names: "frobnicate"},
		{name: "stray HOSTS is not a flag", args: []string{"fakepds", "--hosts", "0"}, env: []string{"HOSTS=5"}, code: exitUsage, names: "--hosts"},
		{name: "relaysoak bogus flag", args: []string{"--bogus"}, code: exitUsage, names: "--bogus"},
		{name: "relaysoak no command", args: nil, code: exitUsage, names: "usage"},
		{name: "relaysoak unknown command", args: []string{"frobnicate"}, code: exitUsage, names: "frobnicate"},
		{name: "report missing run", args: []string{"report", "nope"}, code: exitBadInput, names: "nope"},
		{name: "bisect without a bad end", args: []string{"bisect", "--relay-source", "adir", "--good", "v1"}, code: exitUsage, names: "--bad"},
		{name: "bisect sets its own images", args: []string{"bisect", "--relay-source", "adir", "--good", "v1", "--bad", "main", "--compare", "x:y"}, code: exitUsage, names: "--compare"},
		{name: "bisect a profile it cannot build", args: []string{"bisect", "--relay-source", "adir", "--good", "v1", "--bad", "main", "--relay-profile", "zlay"}, code: exitUsage, names: "--build-cmd"},
		{name: "bisect not a checkout", args: []string{"bisect", "--relay-source", "adir", "--good", "v1", "--bad", "main"}, code: exitUsage, names: "not a git checkout"},
		{name: "bisect-step without a baseline", args: []string{"bisect-step"}, code: exitUsage, names: "--baseline"},
	}
}

// generatedRows come from the flag declarations, by kind, so a new flag
// or subcommand is covered without a new row.
func generatedRows(t *testing.T) []badRow {
	var rows []badRow
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, name := range names {
		c := commands[name]
		f := newFlags(c.name, c.about)
		c.setup(f)
		base := append(strings.Fields(name), baseArgs[name]...)
		for _, d := range f.decls {
			for i, v := range badValues(d) {
				rows = append(rows, badRow{
					name: fmt.Sprintf("%s --%s=%s", name, d.name, v.value), args: append(slices.Clone(base), "--"+d.name+"="+v.value),
					code: v.code, names: "--" + d.name,
				})
				// The environment goes through the same checks (unless the
				// base arguments set the flag: the command line wins).
				if i == 0 && !slices.Contains(base, "--"+d.name) {
					rows = append(rows, badRow{
						name: fmt.Sprintf("%s %s=%s", name, envName(d.name), v.value), args: slices.Clone(base),
						env: []string{envName(d.name) + "=" + v.value}, code: v.code, names: envName(d.name),
					})
				}
			}
		}
		if len(f.args) > 0 {
			rows = append(rows, badRow{name: name + " extra argument", args: append(slices.Clone(base), "one-too-many", "two-too-many"),
				code: exitUsage, names: "too-many"})
		}
		if f.minArgs > 0 && f.argsRead {
			// baseArgs start with the positional input; swap in a bad one.
			with := func(in string) []string {
				return append(append(strings.Fields(name), in), baseArgs[name][1:]...)
			}
			rows = append(rows,
				badRow{name: name + " missing input", args: with("missing.in"), code: exitBadInput, names: "missing.in"},
				badRow{name: name + " empty input", args: with("empty.bin"), code: exitBadInput, names: "empty.bin"})
			if !f.argsDirOK {
				rows = append(rows, badRow{name: name + " directory for a file", args: with("adir"), code: exitBadInput, names: "adir"})
			}
		}
	}
	require.NotEmpty(t, rows)
	return rows
}

type badValue struct {
	value string
	code  int
}

// badValues are values no declaration of d's kind may accept.
func badValues(d *decl) []badValue {
	var out []badValue
	usage := func(vs ...string) {
		for _, v := range vs {
			out = append(out, badValue{v, exitUsage})
		}
	}
	num := func(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }
	outside := func(lo, hi float64, fmtv func(float64) string) {
		if lo > -math.MaxInt64/2 {
			below := lo - math.Max(1, math.Abs(lo))
			if !(below == 0 && d.zero != "") {
				usage(fmtv(below))
			}
		}
		if hi < math.MaxInt64/2 {
			usage(fmtv(hi + math.Max(1, math.Abs(hi))))
		}
		if d.zero == "" && (0 < lo || 0 > hi) {
			usage(fmtv(0))
		}
	}
	switch d.kind {
	case kindInt:
		usage("abc", "1.5")
		outside(d.lo, d.hi, func(x float64) string { return strconv.FormatInt(int64(x), 10) })
	case kindFloat:
		usage("abc", "NaN", "Inf", "-Inf")
		outside(d.lo, d.hi, num)
	case kindDuration:
		usage("abc", "5", "-5m")
		outside(d.lo, d.hi, func(x float64) string { return time.Duration(x).String() })
	case kindSize:
		usage("abc", "0.5", "-1g", "4X")
		outside(d.lo, d.hi, func(x float64) string { return strconv.FormatInt(int64(x), 10) })
	case kindChoice:
		usage("bogus")
	case kindBool:
		usage("maybe")
	case kindInFile:
		out = append(out, badValue{"missing.in", exitBadInput}, badValue{"empty.bin", exitBadInput})
		if !d.dirOK {
			out = append(out, badValue{"adir", exitBadInput})
		}
	case kindOutPath:
		usage("afile/out")
	case kindID:
		usage("../../x", "a/b", ".hidden")
	case kindAddr:
		usage("nonsense", "127.0.0.1:99999")
	case kindURL:
		usage("ftp://example.test/x", "no-scheme")
	}
	return out
}

// snapshot reads every file under dir.
func snapshot(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		out[p] = b
		return err
	}))
	return out
}

// leftovers counts the rig's labelled containers and networks.
func leftovers(t *testing.T) string {
	t.Helper()
	var ids []string
	for _, k := range []testkit.Kind{testkit.Containers, testkit.Networks} {
		out, err := testkit.Left(k, relay.Label+"=true")
		require.NoError(t, err, "docker %v (the contract test checks nothing is left behind)", k)
		ids = append(ids, out)
	}
	return strings.Join(ids, "\n")
}

// cleanEnv is the environment without any RELAYSOAK_ variable, so the
// developer's own settings cannot change a row.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, EnvPrefix) {
			out = append(out, kv)
		}
	}
	return out
}

// Every subcommand, every bad input: the documented exit status, a first
// line naming what was wrong, no panic, nothing left behind, nothing the
// user had overwritten.
func TestSmokeEveryCommandKeepsTheContract(t *testing.T) {
	bin := buildBinary(t)
	before := leftovers(t)
	rows := append(namedRows(), generatedRows(t)...)
	t.Logf("%d rows", len(rows))
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFixtures(t, dir)
			had := snapshot(t, dir)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, r.args...)
			cmd.Dir = dir
			cmd.Env = append(cleanEnv(), r.env...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			require.NoError(t, ctx.Err(), "a bad input must fail before anything starts, not run")
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			}
			assert.Equal(t, r.code, code, "exit status of %v; stderr: %s", r.args, stderr.String())
			first, _ := bufio.NewReader(&stderr).ReadString('\n')
			assert.Contains(t, first, r.names, "the first line names what was wrong")
			all := stdout.String() + stderr.String()
			assert.NotContains(t, all, "panic")
			assert.NotRegexp(t, regexp.MustCompile(`goroutine \d+`), all)
			now := snapshot(t, dir)
			for p, b := range had {
				assert.Equal(t, string(b), string(now[p]), "%s was changed", p)
			}
			for _, a := range r.absent {
				assert.NoFileExists(t, filepath.Join(dir, a))
			}
		})
	}
	assert.Equal(t, before, leftovers(t), "no container or network is left behind")
}

func TestVersionNamesModuleIndigoAndGo(t *testing.T) {
	bin := buildBinary(t)
	out, err := exec.Command(bin, "--version").Output()
	require.NoError(t, err)
	assert.Regexp(t, `(?m)^relaysoak `, string(out))
	assert.Regexp(t, `(?m)^indigo v0\.0\.0-`, string(out))
	assert.Regexp(t, `(?m)^go1\.`, string(out))
}

func TestSizesAcceptComposeAndBinaryForms(t *testing.T) {
	for in, want := range map[string]int64{"4GiB": 4 << 30, "4G": 4 << 30, "4g": 4 << 30, "4gb": 4 << 30, "4096MiB": 4 << 30,
		"512m": 512 << 20, "64k": 64 << 10, "1048576": 1 << 20, "1.5GiB": 3 << 29} {
		got, err := parseSize(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "lots", "0.5", "4X", "NaN", "Inf", "1.0000001k"} {
		_, err := parseSize(bad)
		assert.Error(t, err, bad)
	}
}

// The README's exit-status table is the binary's, row for row, and every
// RELAYSOAK_ variable it names is one the binary (or the test tiers) reads.
func TestReadmeMatchesTheBinary(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	require.NoError(t, err)
	readme := string(b)
	i := strings.Index(readme, "## Exit status")
	require.GreaterOrEqual(t, i, 0, "README has an '## Exit status' section")
	rows := regexp.MustCompile(`(?m)^\| (\d+) \| (.+?) \|$`).FindAllStringSubmatch(readme[i:], -1)
	require.Len(t, rows, len(exitTable), "one row per exit status")
	for k, e := range exitTable {
		assert.Equal(t, strconv.Itoa(e.code), rows[k][1])
		assert.Equal(t, e.what, rows[k][2], "exit status %d", e.code)
	}

	known := map[string]bool{}
	for _, c := range commands {
		f := newFlags(c.name, c.about)
		c.setup(f)
		for _, d := range f.decls {
			known[envName(d.name)] = true
		}
	}
	// Read by the test tiers and the compose file, not by a flag.
	for _, v := range []string{"RELAYSOAK_LONG", "RELAYSOAK_LONG_SOAK", "RELAYSOAK_LONG_AB", "RELAYSOAK_LONG_RUNS_DIR", "RELAYSOAK_SUBNET", "RELAYSOAK_FLEET_IP"} {
		known[v] = true
	}
	for _, m := range regexp.MustCompile(`RELAYSOAK_[A-Z0-9_]+`).FindAllString(readme, -1) {
		assert.True(t, known[strings.TrimRight(m, "_")], "README names %s, which nothing reads", m)
	}
	assert.NotRegexp(t, `(?m)^\s*(HOSTS|RATE|DURATION|MEM_LIMIT)=\S+ (bin/relaysoak|relaysoak|make)`, readme, "settings are RELAYSOAK_* in the environment, or make's command line")
}

// A CSV with several memory spellings and a frame
// counter is judged on rssanon, with fleet_sent as the frames; one with no
// memory-like column is bad usage, listing its columns.
func TestAnalyzeJudgesOnlyMemory(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("seconds,vmrss,rssanon,rssfile,prom_rss,heap_inuse,fleet_sent\n")
	for i := 0; i < 400; i++ {
		fmt.Fprintf(&b, "%d,%d,%d,%d,%d,%d,%d\n", i*10, 200<<20+i<<16, 100<<20+i<<16, 100<<20, 200<<20+i<<16, 50<<20, i*500)
	}
	good := filepath.Join(dir, "mem.csv")
	require.NoError(t, os.WriteFile(good, []byte(b.String()), 0o644))
	cmd := exec.Command(bin, "analyze", good)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var ee *exec.ExitError
	require.True(t, err == nil || errors.As(err, &ee), "%v", err)
	assert.Contains(t, stderr.String(), "judging rssanon (RssAnon)")
	assert.Contains(t, stderr.String(), "frames from fleet_sent")
	assert.Regexp(t, `"signal": "rssanon"`, string(out))
	assert.NotRegexp(t, `"signal": "fleet_sent"`, string(out), "the frame counter is never judged")

	none := filepath.Join(dir, "none.csv")
	require.NoError(t, os.WriteFile(none, []byte("seconds,fleet_sent,connections\n0,1,2\n10,3,4\n"), 0o644))
	cmd = exec.Command(bin, "analyze", none)
	msg, err := cmd.CombinedOutput()
	require.True(t, errors.As(err, &ee), "%v: %s", err, msg)
	assert.Equal(t, exitUsage, ee.ExitCode())
	assert.Contains(t, string(msg), "fleet_sent, connections", "the columns are listed")
	assert.Contains(t, string(msg), "--column")
}

// A stray HOST in the shell must not label imported frames: only
// RELAYSOAK_HOST may.
func TestStrayShellVariableChangesNothing(t *testing.T) {
	bin := buildBinary(t)
	out := filepath.Join(t.TempDir(), "c.rscap")
	cmd := exec.Command(bin, "capture", "import", "--frames", filepath.Join(sharedfiles.CaptureDir(t), "frames.bin.zst"), "--out", out)
	cmd.Env = append(cleanEnv(), "HOST=stray", "OUT=/nonexistent/elsewhere")
	msg, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", msg)
	js, err := exec.Command(bin, "capture", "inspect", out, "--json").Output()
	require.NoError(t, err)
	assert.NotContains(t, string(js), "stray")
	assert.Contains(t, string(js), `"unknown"`)
}

// --repeat takes every setting an earlier run recorded and was not given
// again; its run ID is never reused, and a format-1 run.json still reads.
func TestRepeatTakesTheRecordedSettings(t *testing.T) {
	dir := t.TempDir()
	run := filepath.Join(dir, "old")
	require.NoError(t, os.MkdirAll(run, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(run, "run.json"), []byte(`{"format": 2, "id": "old",
		"recipe": {"hosts": "123", "rate": "7.5", "churn-move": "0", "weights": "uniform", "id": "old", "seed": "42"}}`), 0o644))
	f := newFlags("soak", "")
	setupSoak(f)
	_, err := f.parse([]string{"--repeat", run, "--rate", "9"})
	require.NoError(t, err)
	val := func(n string) string { return f.find(n).value.String() }
	assert.Equal(t, "123", val("hosts"))
	assert.Equal(t, "9", val("rate"), "the command line wins")
	assert.Equal(t, "0", val("churn-move"))
	assert.Equal(t, "uniform", val("weights"))
	assert.Equal(t, "42", val("seed"))
	assert.Empty(t, val("id"), "a repeated run gets a run ID of its own")
	assert.Equal(t, map[string]string{"hosts": "123", "rate": "9", "churn-move": "0", "weights": "uniform", "seed": "42"}, f.Given(),
		"the new run records the same recipe")

	legacy := filepath.Join(dir, "legacy")
	require.NoError(t, os.MkdirAll(legacy, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(legacy, "run.json"), []byte(`{"id": "legacy", "relay_image": "relaysoak/indigo-relay:v1",
		"config": {"hosts": 2750, "rate": 700, "duration": "2h0m0s", "mem_limit": 4294967296, "seed": 1}}`), 0o644))
	f = newFlags("soak", "")
	setupSoak(f)
	_, err = f.parse([]string{"--repeat", legacy})
	require.NoError(t, err)
	assert.Equal(t, "2750", f.find("hosts").value.String())
	assert.Equal(t, "2h0m0s", f.find("duration").value.String())
	assert.Equal(t, "4GiB", f.find("mem-limit").value.String())
	assert.Equal(t, "relaysoak/indigo-relay:v1", f.find("relay-image").value.String())

	require.NoError(t, os.WriteFile(filepath.Join(legacy, "run.json"), []byte(`{"format": 2, "recipe": {"hosts": "-5"}}`), 0o644))
	f = newFlags("soak", "")
	setupSoak(f)
	_, err = f.parse([]string{"--repeat", legacy})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--hosts (from "+legacy, "a bad recorded value names where it came from")
}
