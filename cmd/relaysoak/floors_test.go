package main

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const module = "github.com/relaysoak/relaysoak"

// floors orders the module's packages from the ground up: a package may
// import its own floor and below, never above. The data path reads across
// floor 1 (captures, fakepds, relay know nothing of each other), replay
// drives the fleet from floor 2, soak's parts sit under soak: the run
// directory's names and formats lowest, the verdict on them, the rest
// (harness assembles one run, report writes it, the measuring parts) above,
// the controller (soak) over them all, the bisect (a soak per step) over
// it, and the command on top.
var floors = []struct {
	prefix string
	floor  int
}{
	{"internal/", 0},
	{"captures", 1}, {"fakepds", 1}, {"relay", 1},
	{"replay", 2},
	{"soak/rundir", 3},
	{"soak/verdict", 4},
	{"soak/harness", 5}, {"soak/report", 5},
	{"soak/bisect", 7},
	{"soak/", 5},
	{"soak", 6},
	{"cmd/", 8},
}

func floorOf(t *testing.T, pkg string) int {
	rel := strings.TrimPrefix(strings.TrimPrefix(pkg, module), "/")
	for _, f := range floors {
		if rel == f.prefix || strings.HasSuffix(f.prefix, "/") && strings.HasPrefix(rel, f.prefix) ||
			strings.HasPrefix(rel, f.prefix+"/") {
			return f.floor
		}
	}
	t.Errorf("package %s has no floor: add it to floors", pkg)
	return -1
}

type listed struct {
	ImportPath                         string
	Imports, TestImports, XTestImports []string
	Deps                               []string
}

// goList is every package of the module with its imports, test imports
// and dependencies, testdata included (the control target is a package
// too).
func goList(t *testing.T) map[string]listed {
	cmd := exec.Command("go", "list", "-json", "./...", "./soak/testdata/testrelay")
	cmd.Dir = "../.."
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	pkgs := map[string]listed{}
	dec := json.NewDecoder(out)
	for {
		var p listed
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else {
			require.NoError(t, err, "go list -json")
		}
		pkgs[p.ImportPath] = p
	}
	require.NoError(t, cmd.Wait(), "go list")
	require.Greater(t, len(pkgs), 20)
	return pkgs
}

func ours(p string) bool { return p == module || strings.HasPrefix(p, module+"/") }

// ownTestKit: a package's tests may use the kit built for them on top of
// it (soak/harness/harnesstest for soak/harness).
func ownTestKit(pkg, imp string) bool {
	return strings.HasPrefix(imp, pkg+"/") && strings.HasSuffix(imp, "test")
}

// No package imports one on a higher floor, and no package's tests need a
// higher floor (or anything built on the package under test) than the
// package itself: a lower floor is tested without the floors above it.
func TestNoArrowUpward(t *testing.T) {
	pkgs := goList(t)
	for _, p := range pkgs {
		if strings.Contains(p.ImportPath, "/testdata/") {
			continue // a test target is a main package of its own
		}
		fp := floorOf(t, p.ImportPath)
		for _, imp := range p.Imports {
			if ours(imp) {
				assert.LessOrEqual(t, floorOf(t, imp), fp, "%s imports %s, a higher floor", p.ImportPath, imp)
			}
		}
		for _, imp := range append(append([]string(nil), p.TestImports...), p.XTestImports...) {
			if !ours(imp) || imp == p.ImportPath || ownTestKit(p.ImportPath, imp) {
				continue
			}
			assert.LessOrEqual(t, floorOf(t, imp), fp, "%s's tests import %s, a higher floor", p.ImportPath, imp)
			for _, d := range pkgs[imp].Deps {
				if d == p.ImportPath {
					t.Errorf("%s's tests import %s, which is built on %s: that test belongs with %s", p.ImportPath, imp, p.ImportPath, imp)
				}
			}
		}
	}
}
