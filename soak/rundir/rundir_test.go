package rundir

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const repoRoot = "../.."

// names are the string constants this package defines, by value.
func names(t *testing.T) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "rundir.go", nil, 0)
	require.NoError(t, err)
	out := map[string]string{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					v, err := strconv.Unquote(lit.Value)
					require.NoError(t, err)
					require.NotContains(t, out, v, "%s and %s name the same thing", n.Name, out[v])
					out[v] = n.Name
				}
			}
		}
	}
	return out
}

// Every file name, signal and sample key of a run directory is spelled
// once, here: no other code of the module writes it as a literal (tests
// may, to hold the format as users read it).
func TestNamesAreDefinedOnce(t *testing.T) {
	defined := names(t)
	require.Greater(t, len(defined), 40, "the names were read")
	var found []string
	err := filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata" || d.Name() == "runs" || d.Name() == "rundir") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		tags := map[*ast.BasicLit]bool{}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.Field:
				if n.Tag != nil {
					tags[n.Tag] = true // a struct's JSON field names are its own format
				}
			case *ast.BasicLit:
				if n.Kind != token.STRING || tags[n] {
					return true
				}
				// One- and two-letter names (the A/B arms' directories) are
				// too common a string to look for.
				if v, err := strconv.Unquote(n.Value); err == nil && len(v) > 2 && defined[v] != "" {
					found = append(found, fset.Position(n.Pos()).String()+": "+n.Value+" is rundir."+defined[v])
				}
			}
			return true
		})
		return nil
	})
	require.NoError(t, err)
	assert.Empty(t, found, "write these as the rundir constants")
}
