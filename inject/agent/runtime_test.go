package agent

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The agent's /metrics is a valid Prometheus exposition of runtime/metrics,
// and it moves: the goroutine count it reports follows a goroutine flood.
func TestAgent_RuntimeMetrics(t *testing.T) {
	a := New(Options{})
	defer a.Close()
	read := func() map[string]float64 {
		t.Helper()
		rec := httptest.NewRecorder()
		a.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("GET /metrics: %d", rec.Code)
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := parser.TextToMetricFamilies(strings.NewReader(rec.Body.String()))
		if err != nil {
			t.Fatalf("not a valid exposition: %v", err)
		}
		out := map[string]float64{}
		for name, mf := range fams {
			m := mf.GetMetric()[0]
			out[name] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
		return out
	}
	before := read()
	for _, name := range []string{"go_sched_goroutines_goroutines", "go_gc_heap_allocs_bytes", "go_memory_classes_heap_objects_bytes"} {
		if _, ok := before[name]; !ok {
			t.Errorf("no %s among %d series", name, len(before))
		}
	}
	if _, _, err := a.Start(Request{ID: "flood", Kind: "goroutines", TTL: "1m", Params: []byte(`{"count": 500}`)}); err != nil {
		t.Fatal(err)
	}
	after := read()
	if got, was := after["go_sched_goroutines_goroutines"], before["go_sched_goroutines_goroutines"]; got < was+500 {
		t.Errorf("goroutines %s after a flood of 500, %s before", strconv.FormatFloat(got, 'f', 0, 64), strconv.FormatFloat(was, 'f', 0, 64))
	}
}
