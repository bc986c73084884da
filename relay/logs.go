package relay

import (
	"bytes"
	"strings"
	"sync"
)

// tail keeps the last n lines written to it: the memory a report needs,
// bounded whatever the relay prints.
type tail struct {
	mu      sync.Mutex
	n       int
	lines   []string // ring
	next    int
	full    bool
	partial []byte
}

func newTail(n int) *tail { return &tail{n: n, lines: make([]string, n)} }

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	data := p
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			// A runaway line without newline is cut rather than grown.
			if len(t.partial) < 64<<10 {
				t.partial = append(t.partial, data...)
			}
			break
		}
		line := string(append(t.partial, data[:i]...))
		t.partial = t.partial[:0]
		t.add(line)
		data = data[i+1:]
	}
	return len(p), nil
}

func (t *tail) add(line string) {
	t.lines[t.next] = line
	t.next = (t.next + 1) % t.n
	if t.next == 0 {
		t.full = true
	}
}

// Lines returns the kept lines, oldest first.
func (t *tail) Lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	if t.full {
		out = append(out, t.lines[t.next:]...)
	}
	out = append(out, t.lines[:t.next]...)
	if len(t.partial) > 0 {
		out = append(out, string(t.partial))
	}
	return out
}

// lastLines is the final n lines of text.
func lastLines(text string, n int) []string {
	text = strings.TrimRight(text, "\n")
	if text == "" {
		return nil
	}
	lines := strings.Split(text, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}

func indent(lines []string) string {
	if len(lines) == 0 {
		return "  (no output)"
	}
	return "  " + strings.Join(lines, "\n  ")
}
