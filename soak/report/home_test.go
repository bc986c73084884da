package report

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// markdownMarks are what only markdown is made of: a table's rule, a
// heading, a code fence, bold text, an image.
var markdownMarks = regexp.MustCompile("(?m)\\|---|^#{2,} |```|\\*\\*[^*\\s]|!\\[")

// TestMarkdownIsWrittenOnlyHere holds that the report is written in one
// place: no string literal of the module's code outside soak/report looks
// like markdown, and no code outside it fills a Section's markdown.
func TestMarkdownIsWrittenOnlyHere(t *testing.T) {
	root := filepath.Join("..", "..")
	var found []string
	files := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch rel, _ := filepath.Rel(root, path); {
			case d.Name() == ".git" || d.Name() == "testdata" || d.Name() == "runs", rel == filepath.Join("soak", "report"):
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		files++
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BasicLit:
				if v, err := strconv.Unquote(n.Value); err == nil && n.Kind == token.STRING && markdownMarks.MatchString(v) {
					found = append(found, fset.Position(n.Pos()).String()+": "+n.Value)
				}
			case *ast.KeyValueExpr:
				if k, ok := n.Key.(*ast.Ident); ok && k.Name == "Markdown" {
					found = append(found, fset.Position(n.Pos()).String()+": fills a section's markdown")
				}
			}
			return true
		})
		return nil
	})
	require.NoError(t, err)
	require.Greater(t, files, 100, "the module's code was read")
	assert.Empty(t, found, "markdown is written under soak/report only")
	assert.True(t, markdownMarks.MatchString("| a |\n|---|"), "the marks find a table")
	assert.False(t, markdownMarks.MatchString("# HELP go_goroutines"), "nor mistake Prometheus text for a heading")
}
