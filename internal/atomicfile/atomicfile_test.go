package atomicfile

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestCommitReplaces(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out.bin")
	require.NoError(t, os.WriteFile(p, []byte("old"), 0o600))
	require.NoError(t, WriteFile(p, []byte("new"), 0o644))
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, "new", string(b))
	st, err := os.Stat(p)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), st.Mode().Perm())
	assert.Equal(t, []string{"out.bin"}, entries(t, dir), "no temporary file left")
}

func TestAbortKeepsTheOldFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out.bin")
	require.NoError(t, os.WriteFile(p, []byte("old"), 0o644))
	f, err := Create(p, 0o644)
	require.NoError(t, err)
	_, err = f.Write([]byte("half"))
	require.NoError(t, err)
	f.Abort()
	f.Abort()
	require.Error(t, f.Commit(), "nothing to commit after Abort")
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, "old", string(b))
	assert.Equal(t, []string{"out.bin"}, entries(t, dir))
}

func TestUnwritablePaths(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(file, []byte("x"), 0o644))
	// Tests run as root: a path under a regular file is the way to be sure
	// a path cannot be written.
	err := WriteFile(filepath.Join(file, "out"), []byte("y"), 0o644)
	require.Error(t, err)
	assert.Contains(t, err.Error(), filepath.Join(file, "out"))

	// A directory in the way fails the rename; the temporary file goes.
	require.NoError(t, os.Mkdir(filepath.Join(dir, "d"), 0o755))
	require.Error(t, WriteFile(filepath.Join(dir, "d"), []byte("y"), 0o644))
	assert.ElementsMatch(t, []string{"d", "file"}, entries(t, dir))
}

func TestCommitAllIsAllOrNothing(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a")
	require.NoError(t, os.WriteFile(a, []byte("old a"), 0o644))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "b"), 0o755))
	fa, err := Create(a, 0o644)
	require.NoError(t, err)
	fa.WriteString("new a")
	fb, err := Create(filepath.Join(dir, "b"), 0o644)
	require.NoError(t, err)
	require.Error(t, CommitAll(fa, fb))
	got, err := os.ReadFile(a)
	require.NoError(t, err)
	assert.Equal(t, "old a", string(got), "a is not replaced when b cannot be")
	assert.ElementsMatch(t, []string{"a", "b"}, entries(t, dir))

	fa, err = Create(a, 0o644)
	require.NoError(t, err)
	fa.WriteString("new a")
	fc, err := Create(filepath.Join(dir, "c"), 0o644)
	require.NoError(t, err)
	fc.WriteString("c")
	require.NoError(t, CommitAll(fa, fc))
	got, err = os.ReadFile(a)
	require.NoError(t, err)
	assert.Equal(t, "new a", string(got))
	assert.ElementsMatch(t, []string{"a", "b", "c"}, entries(t, dir))
}
