// Package promtext reads Prometheus text exposition: one scrape, only the
// families asked for, summed by labels. It is the one parser of relay
// metrics here; it must not know any relay's metric names (profiles do).
package promtext

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/relaysoak/relaysoak/internal/useragent"
)

// MaxBytes bounds one scrape: a relay with thousands of hosts prints
// several labelled series per host, a few MB at most.
const MaxBytes = 64 << 20

// Metrics is one scrape of a Prometheus text endpoint.
type Metrics map[string]*dto.MetricFamily

// Parse reads Prometheus text format, at most MaxBytes of it:
// only the families named, when names are given. A relay with thousands of
// hosts serves megabytes of per-host series; parsing them all every few
// seconds cost the rig a quarter of its CPU, while picking out a few
// families' lines costs a scan of the bytes.
func Parse(r io.Reader, names ...string) (Metrics, error) {
	r = io.LimitReader(r, MaxBytes)
	if len(names) > 0 {
		var err error
		if r, err = onlyFamilies(r, names); err != nil {
			return nil, fmt.Errorf("reading Prometheus text: %w", err)
		}
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parsing Prometheus text: %w", err)
	}
	return Metrics(fams), nil
}

// onlyFamilies keeps the lines of the named families (their samples, and
// their HELP and TYPE comments).
func onlyFamilies(r io.Reader, names []string) (io.Reader, error) {
	want := make(map[string]bool, 6*len(names))
	for _, n := range names {
		for _, suffix := range []string{"", "_total", "_bucket", "_sum", "_count", "_created"} {
			want[n+suffix] = true
		}
	}
	var out bytes.Buffer
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A line longer than the buffer: read the rest of it whole.
			rest, err2 := br.ReadBytes('\n')
			line, err = append(append([]byte(nil), line...), rest...), err2
		}
		if len(line) > 0 && want[string(familyOf(line))] {
			out.Write(line)
			if line[len(line)-1] != '\n' {
				out.WriteByte('\n')
			}
		}
		if err == io.EOF {
			return &out, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// familyOf is the metric name a text-format line is about: a sample's
// name, or the name a HELP or TYPE comment documents.
func familyOf(line []byte) []byte {
	if bytes.HasPrefix(line, []byte("# HELP ")) || bytes.HasPrefix(line, []byte("# TYPE ")) {
		line = line[len("# HELP "):]
	} else if len(line) > 0 && line[0] == '#' {
		return nil
	}
	end := bytes.IndexAny(line, "{ \t\n")
	if end < 0 {
		end = len(line)
	}
	return line[:end]
}

// Scrape fetches and parses url (a relay's /metrics): only the families
// named, when names are given.
func Scrape(ctx context.Context, url string, names ...string) (Metrics, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("scraping %s: %w", url, err)
	}
	req.Header.Set("User-Agent", useragent.For(useragent.Scrape))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scraping %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scraping %s: status %s", url, resp.Status)
	}
	m, err := Parse(resp.Body, names...)
	if err != nil {
		return nil, fmt.Errorf("scraping %s: %w", url, err)
	}
	return m, nil
}

// Sum adds up every series of the named family whose labels include all of
// match (nil matches all). ok is false when the family is absent.
func (m Metrics) Sum(name string, match map[string]string) (sum float64, ok bool) {
	f := m[name]
	if f == nil {
		return 0, false
	}
	for _, s := range f.GetMetric() {
		if !labelsMatch(s.GetLabel(), match) {
			continue
		}
		sum += value(s)
	}
	return sum, true
}

// ByLabel sums the named family grouped by one label's value.
func (m Metrics) ByLabel(name, label string) map[string]float64 {
	out := map[string]float64{}
	f := m[name]
	if f == nil {
		return out
	}
	for _, s := range f.GetMetric() {
		var v string
		for _, l := range s.GetLabel() {
			if l.GetName() == label {
				v = l.GetValue()
			}
		}
		out[v] += value(s)
	}
	return out
}

func labelsMatch(ls []*dto.LabelPair, match map[string]string) bool {
	for k, want := range match {
		found := false
		for _, l := range ls {
			if l.GetName() == k && l.GetValue() == want {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func value(s *dto.Metric) float64 {
	switch {
	case s.Counter != nil:
		return s.Counter.GetValue()
	case s.Gauge != nil:
		return s.Gauge.GetValue()
	case s.Untyped != nil:
		return s.Untyped.GetValue()
	case s.Summary != nil:
		return s.Summary.GetSampleSum()
	case s.Histogram != nil:
		return s.Histogram.GetSampleSum()
	}
	return 0
}
