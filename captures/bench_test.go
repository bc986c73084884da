package captures

import (
	"bytes"
	"io"
	"testing"
	"time"
)

// BenchmarkWrite appends the shared capture's real frames, over and over,
// to a capture going to io.Discard: one op is one frame (decode of its
// header and seq for the manifest, copy, zstd).
func BenchmarkWrite(b *testing.B) {
	frames := sharedFrames(b)
	var total int
	for _, f := range frames {
		total += len(f)
	}
	b.SetBytes(int64(total / len(frames)))
	w, err := NewWriter(io.Discard, "bench", WriterConfig{})
	if err != nil {
		b.Fatal(err)
	}
	t := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if err := w.Append(Record{Time: t.Add(time.Duration(i) * time.Millisecond), Host: "bsky.network", Frame: frames[i%len(frames)]}); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
}

// BenchmarkRead iterates a capture of 30,000 real frames (about 160 MiB of
// frames) held compressed in memory: one op is one frame, decompression
// included.
func BenchmarkRead(b *testing.B) {
	frames := sharedFrames(b)
	var buf bytes.Buffer
	w, err := NewWriter(&buf, "bench", WriterConfig{})
	if err != nil {
		b.Fatal(err)
	}
	t := time.Now()
	var total int
	for i := range 30000 {
		f := frames[i%len(frames)]
		total += len(f)
		if err := w.Append(Record{Time: t.Add(time.Duration(i) * time.Millisecond), Host: "bsky.network", Frame: f}); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	b.SetBytes(int64(total / 30000))
	b.ReportMetric(float64(len(data))/float64(total), "compressed/raw")
	b.ReportAllocs()
	b.ResetTimer()
	r, _ := NewReader(bytes.NewReader(data), "bench", ReaderConfig{})
	for b.Loop() {
		_, err := r.Next()
		if err == io.EOF {
			r, _ = NewReader(bytes.NewReader(data), "bench", ReaderConfig{})
			_, err = r.Next()
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
}
