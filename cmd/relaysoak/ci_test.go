package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// The nightly workflow and the script behind `make soak-ci` live outside
// Go; these tests keep them parseable and keep the exit-status contract.

const repoRoot = "../.."

// fakeSoak stands for `relaysoak soak`: it writes what a run writes (a
// report.md with the headline in bold, a junit.xml) and exits with FAKE_RC.
const fakeSoak = `#!/usr/bin/env bash
for a in "$@"; do
	case $a in --id=*) id=${a#--id=} ;; --runs-dir=*) runs=${a#--runs-dir=} ;; esac
done
echo "args: $*"
if [[ $FAKE_RC != 6 ]]; then
	mkdir -p "$runs/$id"
	printf '# relaysoak %s — X\n\n**%s**\n\n![memory over time](memory.png)\n\n## Memory\n\nrows\n' "$id" "$FAKE_HEADLINE" >"$runs/$id/report.md"
	echo '<testsuites/>' >"$runs/$id/junit.xml"
fi
exit "$FAKE_RC"
`

func runSoakCI(t *testing.T, rc, headline string) (out string, code int, dir string) {
	t.Helper()
	dir = t.TempDir()
	bin := filepath.Join(dir, "relaysoak")
	require.NoError(t, os.WriteFile(bin, []byte(fakeSoak), 0o755))
	script, err := filepath.Abs(filepath.Join(repoRoot, "scripts", "soak-ci.sh"))
	require.NoError(t, err)
	cmd := exec.Command(script, bin, "--hosts=5")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "RELAYSOAK_ID=ci-test", "RELAYSOAK_RUNS_DIR=runs", "JUNIT_DIR=results",
		"GITHUB_STEP_SUMMARY="+filepath.Join(dir, "summary.md"), "GITHUB_OUTPUT="+filepath.Join(dir, "output"),
		"FAKE_RC="+rc, "FAKE_HEADLINE="+headline)
	b, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return string(b), code, dir
}

func TestSoakCIExitStatus(t *testing.T) {
	for _, c := range []struct {
		rc, headline string
		code         int
		annotation   string
	}{
		{"0", "PASS: rss_anon flat after warm-up", 0, ""},
		{"1", "LEAK: rss_anon grows 240 MiB/h (99% CI)", 1, "::error title=relaysoak soak::LEAK: rss_anon grows 240 MiB/h (99%25 CI)"},
		{"4", "CRASHED: the relay exited during the run", 4, "::error title=relaysoak soak::CRASHED"},
		{"8", "LOST: 97.10% of the commits due after the ramp-up were delivered", 8, "::error title=relaysoak soak::LOST: 97.10%25 of the commits due"},
		{"3", "INCONCLUSIVE: too short", 0, "::warning title=relaysoak soak INCONCLUSIVE::INCONCLUSIVE: too short"},
		{"6", "", 6, "::error title=relaysoak soak could not run (exit 6)::relaysoak soak exited with status 6 and wrote no report"},
	} {
		out, code, dir := runSoakCI(t, c.rc, c.headline)
		assert.Equal(t, c.code, code, "rc %s: %s", c.rc, out)
		assert.Contains(t, out, "args: soak --hosts=5 --id=ci-test --runs-dir=runs", "rc %s", c.rc)
		if c.annotation != "" {
			assert.Contains(t, out, c.annotation, "rc %s", c.rc)
		} else {
			assert.NotContains(t, out, "::", "rc %s", c.rc)
		}
		summary, err := os.ReadFile(filepath.Join(dir, "summary.md"))
		require.NoError(t, err)
		assert.Contains(t, string(summary), "### relaysoak soak ci-test", "rc %s", c.rc)
		if c.rc == "6" {
			assert.NoFileExists(t, filepath.Join(dir, "results", "relaysoak-soak.xml"))
			continue
		}
		assert.Contains(t, string(summary), "**"+c.headline+"**")
		assert.Contains(t, string(summary), "## Memory")
		assert.NotContains(t, string(summary), "![memory", "the plot is not beside the summary")
		assert.FileExists(t, filepath.Join(dir, "results", "relaysoak-soak.xml"))
		output, err := os.ReadFile(filepath.Join(dir, "output"))
		require.NoError(t, err)
		assert.Equal(t, "run_dir=runs/ci-test\n", string(output))
	}
}

func TestMakefileHasTheCITargets(t *testing.T) {
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"soak-diag"}, []string{"--hosts=500", "--rate=100", "--mem-limit=8GiB", "--stop-grace=5m"}},
		{[]string{"soak-diag", "HOSTS=20", "STOP_GRACE=10m"}, []string{"--hosts='20'", "--rate=100", "--stop-grace='10m'"}},
		{[]string{"soak-ci", "ID=n1", "RATE=7"}, []string{"scripts/soak-ci.sh bin/relaysoak", "--rate='7'", "--id='n1'", "RELAYSOAK_ID='n1'"}},
		{[]string{"soak", "HOSTS=5"}, []string{"--hosts='5'"}},
		{[]string{"soak-attribute"}, []string{"--attribute", "--hosts=500", "--rate=200"}},
		{[]string{"soak-attribute", "RATE=50", "ATTRIBUTE_PHASE=3m"}, []string{"--attribute", "--hosts=500", "--rate='50'", "--attribute-phase='3m'"}},
		{[]string{"bisect", "SOURCE=../indigo", "GOOD=v1", "BAD=main", "HOSTS=9", "STEP_LENGTH=5m"},
			[]string{"--relay-source='../indigo'", "--good='v1'", "--bad='main'", "--hosts='9'", "--step-length='5m'"}},
	} {
		cmd := exec.Command("make", append([]string{"-n", "-C", repoRoot}, c.args...)...)
		// Stray shell variables never become flags; RELAYSOAK_* are
		// relaysoak's own business (it reads them), not make's.
		cmd.Env = append(os.Environ(), "RATE=999", "DURATION=1s", "ID=stray")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		fields := strings.Fields(string(out))
		assert.NotContains(t, string(out), "999", "make %v: a stray RATE in the environment became a flag", c.args)
		assert.NotContains(t, string(out), "stray", "make %v: a stray ID in the environment became a flag", c.args)
		for _, w := range c.want {
			if strings.Contains(w, " ") {
				assert.Contains(t, string(out), w, "make %v", c.args)
			} else {
				assert.True(t, slices.Contains(fields, w), "make %v: %q not in %s", c.args, w, out)
			}
		}
	}
}

// workflow is the part of a GitHub workflow these tests read.
type workflow struct {
	On struct {
		Schedule []struct {
			Cron string `yaml:"cron"`
		} `yaml:"schedule"`
		WorkflowDispatch struct {
			Inputs map[string]struct {
				Default string `yaml:"default"`
			} `yaml:"inputs"`
		} `yaml:"workflow_dispatch"`
	} `yaml:"on"`
	Jobs map[string]struct {
		TimeoutMinutes int `yaml:"timeout-minutes"`
		Strategy       struct {
			Matrix struct {
				Part []struct {
					Run string `yaml:"run"`
				} `yaml:"part"`
			} `yaml:"matrix"`
		} `yaml:"strategy"`
		Env   map[string]string `yaml:"env"`
		Steps []struct {
			Name string            `yaml:"name"`
			Uses string            `yaml:"uses"`
			Run  string            `yaml:"run"`
			If   string            `yaml:"if"`
			With map[string]string `yaml:"with"`
		} `yaml:"steps"`
	} `yaml:"jobs"`
}

func TestNightlyWorkflowParses(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, ".github", "workflows", "nightly-soak.yml"))
	require.NoError(t, err)
	var w workflow
	require.NoError(t, yaml.Unmarshal(b, &w))
	require.Len(t, w.On.Schedule, 1)
	assert.Len(t, strings.Fields(w.On.Schedule[0].Cron), 5)
	for _, in := range []string{"hosts", "rate", "duration", "relay_image"} {
		assert.Contains(t, w.On.WorkflowDispatch.Inputs, in)
	}
	require.Contains(t, w.Jobs, "soak")
	job := w.Jobs["soak"]
	for _, v := range []string{"HOSTS", "RATE", "DURATION", "RELAY_IMAGE", "ID"} {
		assert.Contains(t, job.Env, "RELAYSOAK_"+v, "relaysoak reads RELAYSOAK_%s (make ignores a bare %s in the environment)", v, v)
		assert.NotContains(t, job.Env, v)
	}
	var runs []string
	uploads := map[string]string{}
	goVersion := ""
	for _, s := range job.Steps {
		if s.Run != "" {
			runs = append(runs, s.Run)
		}
		if strings.HasPrefix(s.Uses, "actions/upload-artifact@") {
			uploads[s.With["path"]] = s.If
		}
		if strings.HasPrefix(s.Uses, "actions/setup-go@") {
			goVersion = s.With["go-version"]
		}
	}
	assert.Contains(t, runs, "make soak-ci")
	assert.Equal(t, "1.26", goVersion)
	run := "main/runs/${{ env.RELAYSOAK_ID }}\n!main/runs/**/ca-key.pem\n"
	assert.Equal(t, "${{ always() }}", uploads[run], "the run is uploaded whatever the verdict, without the CA's private key")
	assert.Contains(t, uploads, "main/test-results/")

	// Every job fits GitHub-hosted runners' 6-hour limit, with its own
	// timeout, and the long tier runs in full across them.
	var long []string
	for name, j := range w.Jobs {
		assert.Positive(t, j.TimeoutMinutes, "job %s has a timeout", name)
		assert.LessOrEqual(t, j.TimeoutMinutes, 350, "job %s fits in 6 hours", name)
		for _, p := range j.Strategy.Matrix.Part {
			long = append(long, p.Run)
		}
		for _, s := range j.Steps {
			if strings.Contains(s.Run, "make test-long") {
				assert.Contains(t, s.Run, "LONG_RUN=", "job %s runs a part of the long tier", name)
			}
		}
	}
	for _, test := range []string{"TestLongProductionShapeIndigo", "TestLongABIndigoItself", "TestLongControlLeakVariants", "TestLongRateAccuracy", "TestLongProductionShapeRehosted", "TestLongLibrarySweep", "TestLongBisectStepUnderGitBisectRun"} {
		found := false
		for _, re := range long {
			found = found || regexp.MustCompile(re).MatchString(test)
		}
		assert.True(t, found, "%s runs in some nightly job", test)
	}
}
