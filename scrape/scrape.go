package scrape

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// DefaultInterval is how often endpoints are scraped when Options.Interval
// is zero.
const DefaultInterval = time.Second

// maxBody bounds a scrape's response; an endpoint exposing more than this
// is misconfigured for a per-second scrape.
const maxBody = 32 << 20

// acceptHeader asks for the classic text format first: every Prometheus
// client library speaks it and it parses fastest; OpenMetrics is accepted
// from endpoints that speak nothing else.
const acceptHeader = `text/plain;version=0.0.4;q=1,application/openmetrics-text;version=1.0.0;q=0.5,*/*;q=0.1`

// Endpoint is a named metrics URL.
type Endpoint struct {
	// Name is how SLAs and reports refer to the endpoint: "target",
	// "proxy", "db", ….
	Name string
	URL  string
	// Optional endpoints that fail are warnings, not gaps an SLA trips on:
	// a target without /metrics is common.
	Optional bool
}

// Options configure a Scraper.
type Options struct {
	Endpoints []Endpoint
	Interval  time.Duration
	// Start is the instant offsets are measured from (the run's start).
	Start time.Time
	// Client makes the requests; nil means a client with no proxy and a
	// timeout of one interval (at least a second).
	Client *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Keep, if set, says which series to keep, by endpoint and series name
	// (a histogram's are name_bucket, name_sum and name_count): the rest
	// are dropped as they are parsed, only their names remembered (Names),
	// so a run keeps what it will read and not all an endpoint serves for
	// every second it lasts. Nil keeps every series.
	Keep func(source, name string) bool
}

// Point is one sample: an offset from the start and a value.
type Point struct {
	T time.Duration
	V float64
}

// Series is one scraped time series.
type Series struct {
	Source string
	Name   string
	Labels map[string]string
	// Type is the family's type: counter, gauge, histogram, summary,
	// untyped.
	Type   string
	Points []Point
}

// Failure is a scrape that failed.
type Failure struct {
	Source   string
	At       time.Duration
	Err      string
	Optional bool
}

// Scraper scrapes its endpoints into series. It is safe for concurrent use.
type Scraper struct {
	opts Options

	mu       sync.Mutex
	series   map[string]*kept // by source, name and sorted labels
	failures []Failure
	ok       map[string]int             // successful scrapes per endpoint
	scrapes  map[string][]time.Duration // instants of each endpoint's successful scrapes
	served   map[string]map[string]bool // every series name each endpoint served, kept or not
}

// kept is a series as the Scraper keeps it: its points encoded.
type kept struct {
	source, name, typ string
	labels            map[string]string
	points            points
}

// New returns a Scraper; Run starts it.
func New(opts Options) *Scraper {
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Start.IsZero() {
		opts.Start = opts.Now()
	}
	if opts.Client == nil {
		opts.Client = &http.Client{
			Timeout:   max(opts.Interval, time.Second),
			Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 2, IdleConnTimeout: 30 * time.Second},
		}
	}
	return &Scraper{opts: opts, series: map[string]*kept{}, ok: map[string]int{}, scrapes: map[string][]time.Duration{}, served: map[string]map[string]bool{}}
}

// Run scrapes every endpoint at once and then every interval until ctx is
// done. Endpoints are scraped concurrently, so a slow one delays no other.
func (s *Scraper) Run(ctx context.Context) {
	t := time.NewTicker(s.opts.Interval)
	defer t.Stop()
	for {
		s.ScrapeOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ScrapeOnce scrapes every endpoint once and waits for all of them.
func (s *Scraper) ScrapeOnce(ctx context.Context) {
	at := s.opts.Now().Sub(s.opts.Start)
	var wg sync.WaitGroup
	for _, ep := range s.opts.Endpoints {
		wg.Go(func() {
			fams, err := s.fetch(ctx, ep.URL)
			if err != nil {
				if ctx.Err() != nil {
					return // the run is over; not the endpoint's fault
				}
				s.fail(ep, at, err)
				return
			}
			s.add(ep.Name, at, fams)
		})
	}
	wg.Wait()
}

func (s *Scraper) fetch(ctx context.Context, url string) ([]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", acceptHeader)
	resp, err := s.opts.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return Parse(io.LimitReader(resp.Body, maxBody), expfmt.ResponseFormat(resp.Header))
}

// Parse decodes an exposition in the given format (text when unknown).
// OpenMetrics is rewritten to the text format first (see openMetricsToText):
// expfmt's OpenMetrics parser rejects expositions that client libraries
// produce in practice, such as a gauge named like a counter's family.
func Parse(r io.Reader, format expfmt.Format) ([]*dto.MetricFamily, error) {
	if format.FormatType() == expfmt.TypeOpenMetrics {
		data, err := io.ReadAll(r)
		if err != nil {
			return nil, err
		}
		r = bytes.NewReader(openMetricsToText(data))
	}
	dec := expfmt.NewDecoder(r, expfmt.NewFormat(expfmt.TypeTextPlain))
	var fams []*dto.MetricFamily
	for {
		mf := &dto.MetricFamily{}
		err := dec.Decode(mf)
		if errors.Is(err, io.EOF) {
			return fams, nil
		}
		if err != nil {
			return nil, fmt.Errorf("parse metrics: %w", err)
		}
		fams = append(fams, mf)
	}
}

// openMetricsToText rewrites an OpenMetrics exposition into the classic
// text format: a counter family "x" becomes "x_total" (the name its samples
// carry), the OpenMetrics-only types become untyped or histogram, and
// exemplars, UNIT lines and the EOF marker are dropped.
func openMetricsToText(data []byte) []byte {
	lines := strings.Split(string(data), "\n")
	var b strings.Builder
	b.Grow(len(data))
	for i := 0; i < len(lines); {
		if !strings.HasPrefix(lines[i], "#") {
			l := lines[i]
			if j := strings.Index(l, " # {"); j >= 0 {
				l = l[:j] // an exemplar
			}
			b.WriteString(l)
			b.WriteByte('\n')
			i++
			continue
		}
		// A family's metadata block: consecutive comment lines. Its TYPE
		// decides how the names in the block are rewritten.
		j := i
		for j < len(lines) && strings.HasPrefix(lines[j], "#") {
			j++
		}
		block := lines[i:j]
		counter := ""
		for _, l := range block {
			if f := strings.Fields(l); len(f) == 4 && f[1] == "TYPE" && f[3] == "counter" {
				counter = f[2]
			}
		}
		for _, l := range block {
			f := strings.SplitN(l, " ", 4)
			if len(f) < 3 || (f[1] != "TYPE" && f[1] != "HELP") {
				continue // EOF, UNIT and comments
			}
			if counter != "" && f[2] == counter {
				f[2] += "_total"
			}
			if f[1] == "TYPE" && len(f) == 4 {
				switch strings.TrimSpace(f[3]) {
				case "gaugehistogram":
					f[3] = "histogram"
				case "info", "stateset", "unknown":
					f[3] = "untyped"
				}
			}
			b.WriteString(strings.Join(f, " "))
			b.WriteByte('\n')
		}
		i = j
	}
	return []byte(b.String())
}

func (s *Scraper) fail(ep Endpoint, at time.Duration, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, Failure{Source: ep.Name, At: at, Err: err.Error(), Optional: ep.Optional})
}

func (s *Scraper) add(source string, at time.Duration, fams []*dto.MetricFamily) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ok[source]++
	s.scrapes[source] = append(s.scrapes[source], at)
	scrape := len(s.scrapes[source]) - 1
	served := s.served[source]
	if served == nil {
		served = map[string]bool{}
		s.served[source] = served
	}
	for _, mf := range fams {
		typ := strings.ToLower(mf.GetType().String())
		name := mf.GetName()
		names := seriesNames(mf)
		keep := map[string]bool{}
		for _, n := range names {
			served[n] = true
			keep[n] = s.opts.Keep == nil || s.opts.Keep(source, n)
		}
		if !slices.ContainsFunc(names, func(n string) bool { return keep[n] }) {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			put := func(n string, extra map[string]string, v float64) {
				if keep[n] {
					s.point(source, n, typ, labels, extra, scrape, v)
				}
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				put(name, nil, m.GetCounter().GetValue())
			case dto.MetricType_GAUGE:
				put(name, nil, m.GetGauge().GetValue())
			case dto.MetricType_UNTYPED:
				put(name, nil, m.GetUntyped().GetValue())
			case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
				h := m.GetHistogram()
				inf := false
				for _, b := range h.GetBucket() {
					le := b.GetUpperBound()
					inf = inf || math.IsInf(le, 1)
					put(name+"_bucket", map[string]string{"le": formatLe(le)}, float64(b.GetCumulativeCount()))
				}
				if !inf {
					put(name+"_bucket", map[string]string{"le": "+Inf"}, float64(h.GetSampleCount()))
				}
				put(name+"_sum", nil, h.GetSampleSum())
				put(name+"_count", nil, float64(h.GetSampleCount()))
			case dto.MetricType_SUMMARY:
				sm := m.GetSummary()
				for _, q := range sm.GetQuantile() {
					put(name, map[string]string{"quantile": strconv.FormatFloat(q.GetQuantile(), 'g', -1, 64)}, q.GetValue())
				}
				put(name+"_sum", nil, sm.GetSampleSum())
				put(name+"_count", nil, float64(sm.GetSampleCount()))
			}
		}
	}
}

// seriesNames are the names of the series a family's samples make.
func seriesNames(mf *dto.MetricFamily) []string {
	name := mf.GetName()
	switch mf.GetType() {
	case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
		return []string{name + "_bucket", name + "_sum", name + "_count"}
	case dto.MetricType_SUMMARY:
		return []string{name, name + "_sum", name + "_count"}
	}
	return []string{name}
}

func formatLe(v float64) string {
	if math.IsInf(v, 1) {
		return "+Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// point adds a sample of the endpoint's scrape'th successful scrape.
func (s *Scraper) point(source, name, typ string, labels, extra map[string]string, scrape int, v float64) {
	all := labels
	if len(extra) > 0 {
		all = maps.Clone(labels)
		maps.Copy(all, extra)
	}
	key := seriesKey(source, name, all)
	ser, ok := s.series[key]
	if !ok {
		ser = &kept{source: source, name: name, labels: maps.Clone(all), typ: typ}
		s.series[key] = ser
	}
	ser.points.add(scrape, v)
}

func seriesKey(source, name string, labels map[string]string) string {
	var b strings.Builder
	b.WriteString(source)
	b.WriteByte(0)
	b.WriteString(name)
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		b.WriteByte(0)
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(labels[k])
	}
	return b.String()
}

// Series returns a copy of every series scraped so far, sorted by source,
// name and labels.
//
// A counter (or histogram or summary series) that first appears after its
// endpoint's first successful scrape was created in between — the first
// 503 a server answered, say. It gets a zero sample at the scrape before it
// appeared, so an increase over the run counts it from zero, as it should.
func (s *Scraper) Series() []Series {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := slices.Sorted(maps.Keys(s.series))
	out := make([]Series, 0, len(keys))
	for _, k := range keys {
		kp := s.series[k]
		times := s.scrapes[kp.source]
		ser := Series{Source: kp.source, Name: kp.name, Labels: maps.Clone(kp.labels), Type: kp.typ, Points: kp.points.decode(times)}
		if ser.Type != "gauge" && ser.Type != "untyped" && len(ser.Points) > 0 {
			if i, _ := slices.BinarySearch(times, ser.Points[0].T); i > 0 {
				ser.Points = append([]Point{{T: times[i-1], V: 0}}, ser.Points...)
			}
		}
		out = append(out, ser)
	}
	return out
}

// Names returns the names of every series the endpoint served, kept or
// dropped (Options.Keep), sorted: what an SLA that matched nothing might
// have meant.
func (s *Scraper) Names(source string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.served[source]))
}

// Failures returns the failed scrapes so far, in order.
func (s *Scraper) Failures() []Failure {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.failures)
	sort.SliceStable(out, func(i, j int) bool { return out[i].At < out[j].At })
	return out
}

// Succeeded reports how many scrapes of the named endpoint succeeded.
func (s *Scraper) Succeeded(source string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ok[source]
}
