package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/relaysoak/relaysoak/internal/testkit"
)

// moduleTest is one top-level test function of the module.
type moduleTest struct {
	name, pkg string // pkg as the Makefile names it: ./soak/harness
	docker    bool   // calls what needs Docker, directly or through its package's helpers
	longGate  bool   // reads RELAYSOAK_LONG
}

// dockerMarkers are the calls that need the engine: the tiers' gate, and
// the rig's test starter (which calls it).
func isDockerMarker(call *ast.CallExpr) bool {
	switch f := call.Fun.(type) {
	case *ast.Ident:
		return f.Name == "requireDocker"
	case *ast.SelectorExpr:
		x, _ := f.X.(*ast.Ident)
		return f.Sel.Name == "RequireDocker" || x != nil && x.Name == "harnesstest" && f.Sel.Name == "Start"
	}
	return false
}

// moduleTests parses every _test.go file of the module (testdata's too)
// and finds which functions need Docker: those calling a marker, or a
// function of their own package that does.
func moduleTests(t *testing.T) []moduleTest {
	t.Helper()
	type fn struct {
		calls    []string
		docker   bool
		longGate bool
		test     bool
	}
	pkgs := map[string]map[string]*fn{}
	err := filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "runs" || d.Name() == "bin") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(repoRoot, filepath.Dir(path))
		pkg := "./" + filepath.ToSlash(rel)
		if pkgs[pkg] == nil {
			pkgs[pkg] = map[string]*fn{}
		}
		for _, decl := range f.Decls {
			fd, ok := decl.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			x := &fn{test: strings.HasSuffix(path, "_test.go") && fd.Recv == nil && strings.HasPrefix(fd.Name.Name, "Test") && fd.Name.Name != "TestMain"}
			ast.Inspect(fd.Body, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.CallExpr:
					x.docker = x.docker || isDockerMarker(n)
					if id, ok := n.Fun.(*ast.Ident); ok {
						x.calls = append(x.calls, id.Name)
					}
				case *ast.BasicLit:
					x.longGate = x.longGate || strings.Contains(n.Value, "RELAYSOAK_LONG")
				}
				return true
			})
			pkgs[pkg][fd.Name.Name] = x
		}
		return nil
	})
	require.NoError(t, err)
	var out []moduleTest
	for pkg, fns := range pkgs {
		// A function needs Docker when anything it calls in its package does.
		for changed := true; changed; {
			changed = false
			for _, f := range fns {
				for _, c := range f.calls {
					if g := fns[c]; g != nil && g.docker && !f.docker {
						f.docker, changed = true, true
					}
				}
			}
		}
		for name, f := range fns {
			if f.test {
				out = append(out, moduleTest{name: name, pkg: pkg, docker: f.docker, longGate: f.longGate})
			}
		}
	}
	return out
}

// makeVars reads the Makefile's simple assignments (NAME := value).
func makeVars(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "Makefile"))
	require.NoError(t, err)
	vars := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^([A-Z0-9_]+) := (.*)$`).FindAllStringSubmatch(string(b), -1) {
		vars[m[1]] = strings.TrimSpace(m[2])
	}
	return vars
}

// Every test is in exactly one tier, by the Makefile's patterns of names;
// a container tier's tests live in the packages its target runs; a test
// that needs Docker is in a container tier (the Docker-free tier runs all
// packages at once, with no engine); a long test waits for RELAYSOAK_LONG.
func TestTiers(t *testing.T) {
	mk := makeVars(t)
	for _, v := range []string{"CONTAINER_TESTS", "SMOKE_RUN", "SMOKE_PKGS", "E2E_RUN", "E2E_PKGS", "LONG_RUN", "LONG_PKGS", "UNIT_PKGS"} {
		require.NotEmpty(t, mk[v], "the Makefile sets %s", v)
	}
	container := regexp.MustCompile(mk["CONTAINER_TESTS"])
	tiers := []struct {
		name string
		run  *regexp.Regexp
		pkgs []string
	}{
		{"smoke (make test)", regexp.MustCompile(mk["SMOKE_RUN"]), strings.Fields(mk["SMOKE_PKGS"])},
		{"e2e (make test-e2e)", regexp.MustCompile(mk["E2E_RUN"]), strings.Fields(mk["E2E_PKGS"])},
		{"long (make test-long)", regexp.MustCompile(mk["LONG_RUN"]), strings.Fields(mk["LONG_PKGS"])},
	}
	covers := func(pkgs []string, pkg string) bool {
		return slices.Contains(pkgs, pkg) || slices.Contains(pkgs, "./...") && !strings.Contains(pkg, "/testdata/")
	}
	tests := moduleTests(t)
	require.Greater(t, len(tests), 100, "the module's tests were found")
	counts := map[string]int{}
	for _, mt := range tests {
		var in []string
		if !container.MatchString(mt.name) {
			in = append(in, "docker-free (make test)")
			assert.True(t, covers(strings.Fields(mk["UNIT_PKGS"]), mt.pkg), "%s in %s: UNIT_PKGS does not run its package", mt.name, mt.pkg)
		}
		for _, tier := range tiers {
			if tier.run.MatchString(mt.name) {
				in = append(in, tier.name)
				assert.True(t, covers(tier.pkgs, mt.pkg), "%s is in the %s tier, whose packages do not include %s", mt.name, tier.name, mt.pkg)
			}
		}
		if assert.Len(t, in, 1, "%s in %s must be in exactly one tier, not %v", mt.name, mt.pkg, in) {
			counts[in[0]]++
		}
		assert.Equal(t, container.MatchString(mt.name), testkit.InContainerTier(mt.name),
			"%s: the Makefile's CONTAINER_TESTS and testkit.ContainerTiers disagree", mt.name)
		if mt.docker {
			assert.True(t, testkit.InContainerTier(mt.name), "%s in %s needs Docker: name it TestSmoke…, TestE2E… or TestLong…", mt.name, mt.pkg)
		}
		if tiers[2].run.MatchString(mt.name) {
			assert.True(t, mt.longGate, "%s in %s must skip unless RELAYSOAK_LONG is set", mt.name, mt.pkg)
		}
	}
	t.Logf("tests by tier: %v", counts)
	for _, tier := range tiers {
		assert.Positive(t, counts[tier.name], "the %s tier has tests", tier.name)
	}
}

// The checker itself: it sees a helper's Docker use through the package.
func TestTiersSeeDockerThroughHelpers(t *testing.T) {
	byName := map[string]moduleTest{}
	for _, mt := range moduleTests(t) {
		byName[mt.pkg+"."+mt.name] = mt
	}
	assert.True(t, byName["./soak.TestSmokeControlResolverLeak"].docker, "soakLeaky → leakyTarget → RequireDocker")
	assert.True(t, byName["./soak/harness.TestE2EIndigoStrict"].docker, "harnesstest.Start")
	assert.False(t, byName["./soak.TestFairnessWarningsNameTheMachine"].docker)
	assert.True(t, byName["./soak.TestLongControlAttribution"].longGate)
}
