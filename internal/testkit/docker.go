package testkit

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// Kind is a sort of Docker object a test can leave in the engine, as the
// docker command that lists the IDs of that sort.
type Kind []string

var (
	Containers = Kind{"ps", "-aq"}
	Networks   = Kind{"network", "ls", "-q"}
	Volumes    = Kind{"volume", "ls", "-q"}
)

// Left lists the IDs of the objects of kind that carry label ("key" or
// "key=value"), one a line, as the docker CLI prints them.
func Left(kind Kind, label string) (string, error) {
	args := append(append([]string{}, kind...), "--filter", "label="+label)
	out, err := exec.Command("docker", args...).Output()
	return strings.TrimSpace(string(out)), err
}

// AssertNoneLeft checks that no object of the given kinds carries label;
// with no kinds, it checks containers. The CLI is used, not the API, so
// the check sees what a developer would see with docker ps.
func AssertNoneLeft(t testing.TB, label string, kinds ...Kind) {
	t.Helper()
	if len(kinds) == 0 {
		kinds = []Kind{Containers}
	}
	for _, k := range kinds {
		out, err := Left(k, label)
		assert.NoError(t, err, "docker %v", k)
		assert.Empty(t, out, "docker %v: left behind (label %s)", k, label)
	}
}
