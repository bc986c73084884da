package testkit

import (
	"strings"
	"testing"
)

// LogWriter sends what is written to it to the test log, one t.Log call
// per Write; the trailing newline is dropped because t.Log adds its own.
type LogWriter struct{ T testing.TB }

func (w LogWriter) Write(p []byte) (int, error) {
	w.T.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
