package relay

import (
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// indigoAllowed are the places outside this package that may name indigo's
// metrics, log lines or flags, each with its reason.
var indigoAllowed = map[string]string{
	"docker-compose.yml": "it is the indigo relay's service definition",
	"soak/testdata/testrelay/": "the control target imitates indigo's metrics on purpose, so the rig's " +
		"cross-checks run against it as against indigo",
}

// flagsSharedByName are indigo flags whose names relaysoak's own flags
// share; naming one is not naming indigo's.
var flagsSharedByName = map[string]string{
	"metrics-listen": "relaysoak's own --metrics-listen serves the rig's metrics",
}

// indigoNames is what the Indigo profile knows of its relay: its counters,
// the log lines it counts and the relay's own settings (RELAY_* variables
// and the flags they stand for).
func indigoNames(t *testing.T) []string {
	p := &Indigo{Lenient: true}
	f := p.Facts()
	names := []string{f.Counters.CommitsReceived, f.Counters.Resolutions}
	names = append(names, f.LogPatterns...)
	names = append(names, f.DarkLogPatterns...)
	_, env := p.Command(Wiring{PLCURL: "https://plc.example", UpstreamURL: "https://up.example", CACertFile: "/ca.pem"})
	for k := range env {
		if !strings.HasPrefix(k, "RELAY_") {
			continue // DATABASE_URL, SSL_CERT_FILE…: not indigo's own
		}
		names = append(names, k)
		if flag := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(k, "RELAY_"), "_", "-")); flagsSharedByName[flag] == "" {
			names = append(names, flag)
		}
	}
	require.GreaterOrEqual(t, len(names), 10, "the profile names its relay's counters, log lines and settings")
	sort.Strings(names)
	return names
}

// The rig, the soak and the commands know no relay: what indigo calls
// things lives in its profile here.
func TestOnlyTheIndigoProfileNamesIndigo(t *testing.T) {
	names := indigoNames(t)
	root := ".."
	_, err := os.Stat(filepath.Join(root, "go.mod"))
	require.NoError(t, err, "the module root is the parent of relay/")
	checked := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == "relay" || strings.HasPrefix(d.Name(), ".") && rel != "." {
				return filepath.SkipDir
			}
			return nil
		}
		if !(strings.HasSuffix(rel, ".go") && !strings.HasSuffix(rel, "_test.go")) && rel != "docker-compose.yml" {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		checked++
		for _, n := range names {
			if !strings.Contains(string(b), n) {
				continue
			}
			if reason := allowedBecause(rel); reason != "" {
				t.Logf("%s names %q: allowed, %s", rel, n, reason)
				continue
			}
			t.Errorf("%s names indigo's %q: ask the relay's profile instead (Profile.Facts, Profile.Command)", rel, n)
		}
		return nil
	})
	require.NoError(t, err)
	assert.Greater(t, checked, 50, "the walk saw the module's Go files")
}

func allowedBecause(rel string) string {
	for prefix, reason := range indigoAllowed {
		if rel == prefix || strings.HasSuffix(prefix, "/") && strings.HasPrefix(rel, prefix) {
			return reason
		}
	}
	return ""
}
