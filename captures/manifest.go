package captures

import (
	"maps"
	"time"
)

// Manifest summarises a capture. A writer stores it as the last block when it
// closes; a reader of a capture cut off before that rebuilds it from the
// frames it could read.
type Manifest struct {
	Version int       `json:"version"`
	Source  string    `json:"source,omitempty"` // where the frames came from, e.g. the subscribeRepos URL
	Start   time.Time `json:"start"`            // arrival of the first frame
	End     time.Time `json:"end"`              // arrival of the last frame
	Frames  int64     `json:"frames"`
	Bytes   int64     `json:"bytes"` // frame bytes, uncompressed
	// Kinds counts frames by kind: "#commit", "#identity", …, "error", "undecodable".
	Kinds map[string]int64 `json:"kinds"`
	// SeqMin and SeqMax bound the seq numbers seen (0 when no frame had one).
	SeqMin int64 `json:"seq_min"`
	SeqMax int64 `json:"seq_max"`
	// Hosts counts frames by origin host.
	Hosts   map[string]int64 `json:"hosts"`
	DIDDocs int64            `json:"did_docs"`
}

// Duration is the span from the first to the last frame.
func (m Manifest) Duration() time.Duration { return m.End.Sub(m.Start) }

// tally adds one frame to the manifest. Only the header and seq are needed,
// so the cost per frame stays a header decode plus the body decode that
// yields the seq.
func (m *Manifest) tally(rec Record, fi FrameInfo) {
	if m.Kinds == nil {
		m.Kinds = map[string]int64{}
	}
	if m.Hosts == nil {
		m.Hosts = map[string]int64{}
	}
	if m.Frames == 0 || rec.Time.Before(m.Start) {
		m.Start = rec.Time
	}
	if m.Frames == 0 || rec.Time.After(m.End) {
		m.End = rec.Time
	}
	m.Frames++
	m.Bytes += int64(len(rec.Frame))
	m.Kinds[fi.Kind]++
	m.Hosts[rec.Host]++
	if fi.Seq > 0 {
		if m.SeqMin == 0 || fi.Seq < m.SeqMin {
			m.SeqMin = fi.Seq
		}
		if fi.Seq > m.SeqMax {
			m.SeqMax = fi.Seq
		}
	}
}

func (m Manifest) clone() Manifest {
	m.Kinds = maps.Clone(m.Kinds)
	m.Hosts = maps.Clone(m.Hosts)
	return m
}

// Info is what a writer records about a capture as it creates it, so that a
// capture cut off before its manifest still says where it came from.
type Info struct {
	Source  string    `json:"source,omitempty"`
	Created time.Time `json:"created"`
}
