package testkit

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// ImageOnce builds a test image at most once per test binary: every test
// that needs it gets the first build's outcome, so a failed build fails
// each of them without being retried.
type ImageOnce struct {
	// Tag is the image the build makes.
	Tag string
	// Timeout bounds the build; zero means five minutes.
	Timeout time.Duration
	// Build makes the image and says whether it had to (false: an
	// up-to-date image was already there).
	Build func(ctx context.Context) (built bool, err error)

	once sync.Once
	err  error
}

// Require builds the image if no test has tried yet and returns its tag.
// A build error fails the test: a skip would read as a pass.
func (o *ImageOnce) Require(t testing.TB) string {
	t.Helper()
	o.once.Do(func() {
		d := o.Timeout
		if d == 0 {
			d = 5 * time.Minute
		}
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		var built bool
		built, o.err = o.Build(ctx)
		if built {
			t.Logf("built image %s", o.Tag)
		}
	})
	require.NoError(t, o.err, "building image %s", o.Tag)
	return o.Tag
}
