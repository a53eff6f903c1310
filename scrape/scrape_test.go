package scrape

import (
	"bytes"
	"context"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// registry is a real client_golang registry with one metric of every type.
type registry struct {
	reg     *prometheus.Registry
	reqs    *prometheus.CounterVec
	inFlt   prometheus.Gauge
	latency prometheus.Histogram
	summary prometheus.Summary
}

func newRegistry() *registry {
	r := &registry{reg: prometheus.NewRegistry()}
	r.reqs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "app_requests_total", Help: "h"}, []string{"code"})
	r.inFlt = prometheus.NewGauge(prometheus.GaugeOpts{Name: "app_in_flight", Help: "h"})
	r.latency = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "app_latency_seconds", Help: "h", Buckets: []float64{0.01, 0.1, 1}})
	r.summary = prometheus.NewSummary(prometheus.SummaryOpts{Name: "app_size_bytes", Help: "h", Objectives: map[float64]float64{0.5: 0.05}})
	r.reg.MustRegister(r.reqs, r.inFlt, r.latency, r.summary, collectors.NewGoCollector())
	return r
}

// fakeClock advances by a second per call, so offsets are exact.
func fakeClock(start time.Time) func() time.Time {
	n := 0
	return func() time.Time { n++; return start.Add(time.Duration(n-1) * time.Second) }
}

func find(t *testing.T, ss []Series, source, name string, labels map[string]string) Series {
	t.Helper()
	for _, s := range ss {
		if s.Source != source || s.Name != name || len(s.Labels) != len(labels) {
			continue
		}
		match := true
		for k, v := range labels {
			match = match && s.Labels[k] == v
		}
		if match {
			return s
		}
	}
	t.Fatalf("no series %s:%s%v", source, name, labels)
	return Series{}
}

func TestScraper_AllMetricTypesOverLoopback(t *testing.T) {
	r := newRegistry()
	srv := httptest.NewServer(promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{}))
	defer srv.Close()

	start := time.Unix(1000, 0)
	s := New(Options{Endpoints: []Endpoint{{Name: "app", URL: srv.URL}}, Start: start, Now: fakeClock(start)})

	r.reqs.WithLabelValues("200").Add(3)
	r.inFlt.Set(7)
	r.latency.Observe(0.05)
	r.summary.Observe(100)
	s.ScrapeOnce(context.Background())
	r.reqs.WithLabelValues("200").Add(2)
	r.reqs.WithLabelValues("503").Inc()
	r.inFlt.Set(1)
	r.latency.Observe(5)
	s.ScrapeOnce(context.Background())

	ss := s.Series()
	if got := find(t, ss, "app", "app_requests_total", map[string]string{"code": "200"}); len(got.Points) != 2 || got.Points[0] != (Point{0, 3}) || got.Points[1] != (Point{time.Second, 5}) || got.Type != "counter" {
		t.Errorf("counter = %+v", got)
	}
	if got := find(t, ss, "app", "app_requests_total", map[string]string{"code": "503"}); len(got.Points) != 2 || got.Points[0] != (Point{0, 0}) || got.Points[1] != (Point{time.Second, 1}) {
		t.Errorf("a counter born between scrapes starts from zero at the scrape before: %+v", got)
	}
	if got := find(t, ss, "app", "app_in_flight", nil); got.Points[1].V != 1 || got.Type != "gauge" {
		t.Errorf("gauge = %+v", got)
	}
	for le, want := range map[string][2]float64{"0.01": {0, 0}, "0.1": {1, 1}, "1": {1, 1}, "+Inf": {1, 2}} {
		got := find(t, ss, "app", "app_latency_seconds_bucket", map[string]string{"le": le})
		if got.Points[0].V != want[0] || got.Points[1].V != want[1] {
			t.Errorf("bucket le=%s = %+v, want %v", le, got.Points, want)
		}
	}
	if got := find(t, ss, "app", "app_latency_seconds_count", nil); got.Points[1].V != 2 {
		t.Errorf("histogram count = %+v", got.Points)
	}
	if got := find(t, ss, "app", "app_latency_seconds_sum", nil); got.Points[1].V != 5.05 {
		t.Errorf("histogram sum = %+v", got.Points)
	}
	if got := find(t, ss, "app", "app_size_bytes", map[string]string{"quantile": "0.5"}); got.Points[0].V != 100 || got.Type != "summary" {
		t.Errorf("summary quantile = %+v", got)
	}
	if got := find(t, ss, "app", "go_goroutines", nil); got.Points[0].V < 1 {
		t.Errorf("go_goroutines = %+v", got.Points)
	}
	if s.Succeeded("app") != 2 || len(s.Failures()) != 0 {
		t.Errorf("succeeded %d, failures %v", s.Succeeded("app"), s.Failures())
	}
}

func TestScraper_FailuresAreGaps(t *testing.T) {
	r := newRegistry()
	good := httptest.NewServer(promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{}))
	defer good.Close()
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	}))
	defer broken.Close()
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("this is { not metrics\n"))
	}))
	defer garbage.Close()
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()

	start := time.Unix(0, 0)
	s := New(Options{Start: start, Now: fakeClock(start), Endpoints: []Endpoint{
		{Name: "good", URL: good.URL},
		{Name: "broken", URL: broken.URL},
		{Name: "garbage", URL: garbage.URL},
		{Name: "dead", URL: deadURL, Optional: true},
	}})
	s.ScrapeOnce(context.Background())

	fails := map[string]Failure{}
	for _, f := range s.Failures() {
		fails[f.Source] = f
	}
	if len(fails) != 3 {
		t.Fatalf("failures = %+v, want broken, garbage and dead", s.Failures())
	}
	if !strings.Contains(fails["broken"].Err, "500") {
		t.Errorf("broken: %q", fails["broken"].Err)
	}
	if !strings.Contains(fails["garbage"].Err, "parse metrics") {
		t.Errorf("garbage: %q", fails["garbage"].Err)
	}
	if !fails["dead"].Optional || fails["good"].Err != "" {
		t.Errorf("dead = %+v good = %+v", fails["dead"], fails["good"])
	}
	if s.Succeeded("good") != 1 {
		t.Error("the good endpoint was not scraped alongside the failing ones")
	}
}

func TestScraper_RunStopsOnCancel(t *testing.T) {
	r := newRegistry()
	srv := httptest.NewServer(promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	s := New(Options{Endpoints: []Endpoint{{Name: "app", URL: srv.URL}}, Interval: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	for s.Succeeded("app") < 3 {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if f := s.Failures(); len(f) != 0 {
		t.Errorf("cancellation recorded as failures: %v", f)
	}
}

func TestParse_OpenMetrics(t *testing.T) {
	r := newRegistry()
	r.reqs.WithLabelValues("200").Add(4)
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{EnableOpenMetrics: true}).ServeHTTP(rec, req)
	format := expfmt.ResponseFormat(rec.Header())
	if format.FormatType() != expfmt.TypeOpenMetrics {
		t.Fatalf("server answered %s, want OpenMetrics", format)
	}
	fams, err := Parse(bytes.NewReader(rec.Body.Bytes()), format)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range fams {
		if mf.GetName() == "app_requests" || mf.GetName() == "app_requests_total" {
			for _, m := range mf.GetMetric() {
				found = found || m.GetCounter().GetValue() == 4
			}
		}
	}
	if !found {
		t.Errorf("counter not found in OpenMetrics families %v", fams)
	}
}

func BenchmarkScrapeOnce_GoProcess(b *testing.B) {
	r := newRegistry()
	r.reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	srv := httptest.NewServer(promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	s := New(Options{Endpoints: []Endpoint{{Name: "app", URL: srv.URL}}})
	b.ReportAllocs()
	for b.Loop() {
		s.ScrapeOnce(context.Background())
	}
	b.ReportMetric(float64(len(s.Series())), "series")
	// What the samples of a scrape take as kept, where 16 bytes a sample
	// was the decoded form.
	enc := 0
	for _, k := range s.series {
		enc += cap(k.points.enc)
	}
	b.ReportMetric(float64(enc)/float64(b.N), "kept-B/scrape")
}

func TestOpenMetricsToText(t *testing.T) {
	in := `# HELP jobs Jobs done.
# TYPE jobs counter
# UNIT jobs jobs
jobs_total{kind="a"} 3 # {trace_id="abc"} 1.0 1690000000.000
jobs_created{kind="a"} 1.69e9
# HELP jobs Jobs queued now.
# TYPE jobs gauge
jobs 4
# TYPE build info
build_info{version="1"} 1
# TYPE q gaugehistogram
q_bucket{le="+Inf"} 2
q_gcount 2
q_gsum 3
# EOF
`
	fams, err := Parse(strings.NewReader(in), expfmt.NewFormat(expfmt.TypeOpenMetrics))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, mf := range fams {
		got[mf.GetName()] = mf.GetType().String()
	}
	want := map[string]string{"jobs_total": "COUNTER", "jobs": "GAUGE", "build_info": "UNTYPED", "jobs_created": "UNTYPED"}
	for name, typ := range want {
		if got[name] != typ {
			t.Errorf("family %s: type %q, want %q (all: %v)", name, got[name], typ, got)
		}
	}
}

// BenchmarkIngest measures resctl's own side of one scrape: parsing an
// exposition of a Go service (Go and process collectors plus a labelled
// histogram) and folding it into series, without the HTTP round trip or
// the exposing side. Every scrape exposes the same values, so kept-B/scrape
// is the floor: a byte a sample.
func BenchmarkIngest(b *testing.B) {
	r := newRegistry()
	r.reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "http_request_duration_seconds", Help: "h"}, []string{"route"})
	r.reg.MustRegister(h)
	for _, route := range []string{"/a", "/b", "/c", "/d", "/e", "/f"} {
		h.WithLabelValues(route).Observe(0.01)
	}
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := rec.Body.Bytes()
	s := New(Options{})
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for i := 0; b.Loop(); i++ {
		fams, err := Parse(bytes.NewReader(body), expfmt.NewFormat(expfmt.TypeTextPlain))
		if err != nil {
			b.Fatal(err)
		}
		s.add("app", time.Duration(i)*time.Second, fams)
	}
	b.ReportMetric(float64(len(s.Series())), "series")
	// What the samples of a scrape take as kept, where 16 bytes a sample
	// was the decoded form.
	enc := 0
	for _, k := range s.series {
		enc += cap(k.points.enc)
	}
	b.ReportMetric(float64(enc)/float64(b.N), "kept-B/scrape")
}

func TestScraper_Keep(t *testing.T) {
	tests := []struct {
		name string
		keep func(source, name string) bool
		want []string // names of the series kept
	}{
		{"nil keeps every series", nil, nil},
		{"a counter only", func(_, n string) bool { return n == "app_requests_total" }, []string{"app_requests_total"}},
		{"one series of a histogram", func(_, n string) bool { return n == "app_latency_seconds_count" }, []string{"app_latency_seconds_count"}},
		{"by source", func(src, _ string) bool { return src == "other" }, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRegistry()
			r.reqs.WithLabelValues("200").Inc()
			srv := httptest.NewServer(promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{}))
			defer srv.Close()
			start := time.Unix(1000, 0)
			s := New(Options{Endpoints: []Endpoint{{Name: "app", URL: srv.URL}}, Start: start, Now: fakeClock(start), Keep: tt.keep})
			s.ScrapeOnce(context.Background())
			s.ScrapeOnce(context.Background())
			names := map[string]bool{}
			for _, ser := range s.Series() {
				names[ser.Name] = true
				if len(ser.Points) != 2 {
					t.Errorf("%s: %d points, want 2", ser.Name, len(ser.Points))
				}
			}
			served := s.Names("app")
			for _, n := range []string{"app_requests_total", "app_latency_seconds_bucket", "app_size_bytes_sum", "go_goroutines"} {
				if !slices.Contains(served, n) {
					t.Errorf("Names lacks %s, which the endpoint served", n)
				}
			}
			if tt.want == nil {
				if len(names) != len(served) {
					t.Errorf("kept %d series names, want every one of the %d served", len(names), len(served))
				}
				return
			}
			if got := slices.Sorted(maps.Keys(names)); !slices.Equal(got, tt.want) {
				t.Errorf("kept %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPoints_RoundTrip(t *testing.T) {
	times := make([]time.Duration, 10)
	for i := range times {
		times[i] = time.Duration(i)*time.Second + 3*time.Millisecond
	}
	tests := []struct {
		name    string
		scrapes []int
		values  []float64
	}{
		{"zeros from the first scrape", []int{0, 1, 2}, []float64{0, 0, 0}},
		{"a counter with a gap", []int{0, 1, 4, 5}, []float64{1000, 2000, 5000, 5000}},
		{"first seen late", []int{3, 4}, []float64{7, 7}},
		{"fractions and signs", []int{0, 1, 2, 3}, []float64{0.1, -0.1, math.Copysign(0, -1), 1e-300}},
		{"infinities and NaN", []int{0, 1, 2, 3}, []float64{math.Inf(1), math.Inf(-1), math.NaN(), 5}},
		{"twice in one scrape", []int{2, 2, 3}, []float64{1, 2, 2}},
		{"large integers", []int{0, 1, 9}, []float64{1 << 52, 1<<53 - 1, 123456789012}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p points
			for i, sc := range tt.scrapes {
				p.add(sc, tt.values[i])
			}
			got := p.decode(times)
			if len(got) != len(tt.values) {
				t.Fatalf("%d points, want %d", len(got), len(tt.values))
			}
			for i, pt := range got {
				if pt.T != times[tt.scrapes[i]] || math.Float64bits(pt.V) != math.Float64bits(tt.values[i]) {
					t.Errorf("point %d = %v, want {%v %v}", i, pt, times[tt.scrapes[i]], tt.values[i])
				}
			}
		})
	}
}
