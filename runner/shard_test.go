package runner

import (
	"errors"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/resctl/resctl/load"
	"github.com/resctl/resctl/report"
)

// A merged report counts what the shards' results say: fallbacks by their
// mark, drops by their error, and latencies only of requests that went out,
// as response times from when each was due (the file's service times plus
// how late they went out).
func TestMerge_FallbacksAndDrops(t *testing.T) {
	s := mustParse(t, `
name: merge
target: {url: "http://127.0.0.1:1"}
load: {rate: 20/s, requests: [{path: /}]}
phases: [{name: a, duration: 1s}]
`)
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	path := writeResults(t, 20, func(i int, r *vegeta.Result) time.Time {
		r.Timestamp, r.Latency, r.Code = start.Add(time.Duration(i)*50*time.Millisecond), 100*time.Millisecond, 200
		if i%2 == 1 {
			r.Code, r.Latency, r.Error = 0, 0, `Get "http://x/": `+load.ErrDropped.Error()
		} else {
			r.Headers = http.Header{load.FallbackHeader: {"static"}}
		}
		return start
	})
	r, err := Merge(s, []string{path}, start, nil)
	if err != nil {
		t.Fatal(err)
	}
	tot := r.Total
	if tot.Requests != 20 || tot.Fallbacks != 10 || tot.Dropped != 10 || tot.Errors != 10 {
		t.Errorf("merged requests %d fallbacks %d dropped %d errors %d, want 20, 10, 10, 10", tot.Requests, tot.Fallbacks, tot.Dropped, tot.Errors)
	}
	if tot.LatencyMs.P50 < 119 || tot.LatencyMs.P50 > 121 {
		t.Errorf("merged p50 %vms, want 120ms: 100ms served, sent 20ms late; drops have no latency", tot.LatencyMs.P50)
	}
	if tot.ServiceMs == nil || tot.ServiceMs.P50 < 99 || tot.ServiceMs.P50 > 101 {
		t.Errorf("merged service times %+v, want a p50 of 100ms", tot.ServiceMs)
	}
}

// SLAs over scraped metrics and fault and guard states are judged on the
// coordinator's report; without one they are not evaluated, and do not
// fail the merge; a coordinator of another scenario is refused. The
// merged report lasts from the start to the last response.
func TestMerge_Coordinator(t *testing.T) {
	s := mustParse(t, `
name: merge
target: {url: "http://127.0.0.1:1"}
load: {rate: 10/s, requests: [{path: /}]}
proxy:
  routes: [{match: {path: /}, guard: [breaker: {window: 1s}]}]
phases:
  - {name: a, duration: 1s}
  - {name: b, duration: 1s, faults: [abort: {status: 503}]}
slas:
  - {name: load, expect: requests == 20}
  - {name: goroutines, expect: 'last(target:go_goroutines) > 10'}
  - {name: fault, during: b, expect: 'fault("b/abort") == on'}
  - {name: breaker, expect: 'time_to(breaker("/") == open, from: b) < 500ms'}
`)
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	path := writeResults(t, 20, func(i int, r *vegeta.Result) time.Time {
		r.Timestamp, r.Latency, r.Code = start.Add(time.Duration(i)*100*time.Millisecond), 50*time.Millisecond, 200
		return time.Time{} // a file that does not say when results were due
	})
	coord := &report.Report{
		Scenario: "merge", StartedAt: start,
		Metrics: []report.MetricSeries{{Source: "target", Name: "go_goroutines", Points: [][2]float64{{0, 8}, {1, 12}, {2, 14}}}},
		Faults:  []report.Fault{{ID: "b/abort", Kind: "abort", Phase: "b", StartS: 1, EndS: 2, Fired: true}},
		Events:  []report.Event{{AtS: 1.2, Source: "guard", Kind: "transition", Detail: "breaker /: closed → open", Name: "/", From: "closed", To: "open"}},
	}
	verdicts := func(r *report.Report) map[string]string {
		out := map[string]string{}
		for _, sla := range r.SLAs {
			switch {
			case sla.NotEvaluated != "":
				out[sla.Name] = "not evaluated"
			case sla.Passed:
				out[sla.Name] = "passed"
			default:
				out[sla.Name] = "failed: " + sla.Observed + " " + sla.Error
			}
		}
		return out
	}

	r, err := Merge(s, []string{path}, time.Time{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"load": "passed", "goroutines": "not evaluated", "fault": "not evaluated", "breaker": "not evaluated"}
	if got := verdicts(r); !maps.Equal(got, want) || !r.Passed {
		t.Errorf("without a coordinator: %v (passed %v), want %v and passed", got, r.Passed, want)
	}
	if r.DurationS != 1.95 {
		t.Errorf("merged duration %vs, want 1.95s: from the first send to the last response's end", r.DurationS)
	}

	r, err = Merge(s, []string{path}, time.Time{}, coord)
	if err != nil {
		t.Fatal(err)
	}
	want = map[string]string{"load": "passed", "goroutines": "passed", "fault": "passed", "breaker": "passed"}
	if got := verdicts(r); !maps.Equal(got, want) || !r.Passed {
		t.Errorf("with the coordinator: %v (passed %v), want %v and passed", got, r.Passed, want)
	}

	coord.Metrics[0].Points[2][1] = 9 // the last reading now breaks the SLA
	if r, err = Merge(s, []string{path}, time.Time{}, coord); err != nil || r.Passed {
		t.Errorf("a coordinator whose metrics break an SLA: passed %v, err %v; want a failed merge", r != nil && r.Passed, err)
	}

	coord.Scenario = "another"
	if _, err := Merge(s, []string{path}, time.Time{}, coord); !errors.Is(err, ErrOtherScenario) {
		t.Errorf("a coordinator of another scenario: %v, want ErrOtherScenario", err)
	}
}

// writeResults writes a results file of n results, each filled in by fill,
// which returns the schedule's start; each result was due 20ms before it
// went out.
func writeResults(t *testing.T, n int, fill func(i int, r *vegeta.Result) time.Time) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "results.bin")
	rf, err := load.CreateResultsFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		r := vegeta.Result{Seq: uint64(i)}
		start := fill(i, &r)
		rf.Write(r, start, r.Timestamp.Add(-20*time.Millisecond))
	}
	if err := rf.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// One shard's results given twice, by the same path or as a copy, are
// refused rather than counted twice; two shards' files merge.
func TestMerge_SameShardTwice(t *testing.T) {
	s := mustParse(t, `
name: merge
target: {url: "http://127.0.0.1:1"}
load: {rate: 20/s, requests: [{path: /}]}
phases: [{name: a, duration: 1s}]
`)
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	shard := func(k int) string { // every other hit, from hit k
		return writeResults(t, 10, func(i int, r *vegeta.Result) time.Time {
			r.Timestamp, r.Latency, r.Code = start.Add(time.Duration(2*i+k)*50*time.Millisecond), time.Millisecond, 200
			return start
		})
	}
	one, two := shard(0), shard(1)
	b, err := os.ReadFile(one)
	if err != nil {
		t.Fatal(err)
	}
	copied := filepath.Join(t.TempDir(), "shard-1-copy.bin")
	if err := os.WriteFile(copied, b, 0o644); err != nil {
		t.Fatal(err)
	}
	for name, files := range map[string][]string{"the same path": {one, two, one}, "a copy": {one, copied}} {
		if _, err := Merge(s, files, start, nil); !errors.Is(err, ErrSameShard) {
			t.Errorf("%s: error %v, want ErrSameShard", name, err)
		}
	}
	// An empty file (a shard stopped before its first request) adds none.
	empty := filepath.Join(t.TempDir(), "empty.bin")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Merge(s, []string{one, empty, two}, start, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Total.Requests != 20 {
		t.Errorf("two shards merged into %d requests, want 20", r.Total.Requests)
	}
}
