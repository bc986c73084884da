package report

import (
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/relaysoak/relaysoak/soak/rundir"
	"github.com/relaysoak/relaysoak/soak/verdict"
)

var reportFiles = []string{rundir.Report, rundir.Verdict, rundir.JUnit, rundir.Plot}

// previousReport fills dir with a report's files as an earlier Write left
// them, and returns their contents.
func previousReport(t *testing.T, dir string) map[string]string {
	t.Helper()
	old := map[string]string{}
	for _, n := range reportFiles {
		old[n] = "the previous run's " + n
		require.NoError(t, os.WriteFile(filepath.Join(dir, n), []byte(old[n]), 0o644))
	}
	return old
}

func assertUnchanged(t *testing.T, dir string, old map[string]string) {
	t.Helper()
	for n, want := range old {
		b, err := os.ReadFile(filepath.Join(dir, n))
		require.NoError(t, err, n)
		assert.Equal(t, want, string(b), "%s was changed by a failed Write", n)
	}
}

// onlyFiles asserts dir holds exactly names: no temporary file is left.
func onlyFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	es, err := os.ReadDir(dir)
	require.NoError(t, err)
	var got []string
	for _, e := range es {
		got = append(got, e.Name())
	}
	assert.ElementsMatch(t, names, got)
}

func plottableDir(t *testing.T) string {
	dir := t.TempDir()
	writeSamples(t, dir, verdict.Spec{Name: "flat", Duration: time.Hour, BaseMiB: 500, NoiseMiB: 2}.Generate(1))
	return dir
}

// A Write that fails after the plot is drawn (here: a value JSON cannot
// hold) replaces none of the previous files, the plot included.
func TestWriteFailureKeepsThePreviousReport(t *testing.T) {
	dir := plottableDir(t)
	old := previousReport(t, dir)
	s := Summary{RunID: "nan", Judged: verdict.Report{Result: verdict.Result{Verdict: verdict.Pass}}, Delivery: math.NaN()}
	err := Write(dir, s)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "encode verdict")
	assertUnchanged(t, dir, old)
	onlyFiles(t, dir, append([]string{rundir.Samples}, reportFiles...)...)
}

// A file that cannot be replaced (a directory where junit.xml goes) fails
// the Write before any file is renamed into place.
func TestWriteBlockedTargetKeepsThePreviousReport(t *testing.T) {
	dir := plottableDir(t)
	old := previousReport(t, dir)
	require.NoError(t, os.Remove(filepath.Join(dir, rundir.JUnit)))
	require.NoError(t, os.Mkdir(filepath.Join(dir, rundir.JUnit), 0o755))
	delete(old, rundir.JUnit)
	err := Write(dir, Summary{RunID: "blocked", Judged: verdict.Report{Result: verdict.Result{Verdict: verdict.Pass}}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), filepath.Join(dir, rundir.JUnit))
	assertUnchanged(t, dir, old)
	onlyFiles(t, dir, append([]string{rundir.Samples}, reportFiles...)...)
}

// Tests run as root, so permissions cannot make a directory unwritable; a
// path under a regular file cannot be created by anyone.
func TestWriteUnderAFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, []byte("x"), 0o644))
	err := Write(filepath.Join(file, "run"), Summary{RunID: "x", Judged: verdict.Report{Result: verdict.Result{Verdict: verdict.Pass}}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), file)
}

func TestWriteReplacesAPreviousReport(t *testing.T) {
	dir := plottableDir(t)
	old := previousReport(t, dir)
	require.NoError(t, Write(dir, Summary{RunID: "again", Judged: verdict.Report{Result: verdict.Result{Verdict: verdict.Pass}}}))
	for _, n := range reportFiles {
		b, err := os.ReadFile(filepath.Join(dir, n))
		require.NoError(t, err)
		assert.NotEqual(t, old[n], string(b), n)
		st, err := os.Stat(filepath.Join(dir, n))
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o644), st.Mode().Perm(), n)
	}
	onlyFiles(t, dir, append([]string{rundir.Samples}, reportFiles...)...)
}

func TestWriteABFailureKeepsThePreviousReport(t *testing.T) {
	dir := t.TempDir()
	for _, arm := range []string{"a", "b"} {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, arm), 0o755))
		writeSamples(t, filepath.Join(dir, arm), verdict.Spec{Name: arm, Duration: time.Hour, BaseMiB: 500, NoiseMiB: 2}.Generate(1))
	}
	old := previousReport(t, dir)
	a := summary("x/A", verdict.Pass, 0.5, -1, 2)
	a.Delivery = math.Inf(1)
	ab := NewAB("x", a, summary("x/B", verdict.Pass, 0.5, -1, 2), "a", "b", nil)
	require.Error(t, WriteAB(dir, ab))
	assertUnchanged(t, dir, old)
	onlyFiles(t, dir, append([]string{"a", "b"}, reportFiles...)...)
}
