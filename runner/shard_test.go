package runner

import (
	"net/http"
	"path/filepath"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/resctl/resctl/load"
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
	path := filepath.Join(t.TempDir(), "results.bin")
	rf, err := load.CreateResultsFile(path)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range 20 {
		r := vegeta.Result{Seq: uint64(i), Timestamp: start.Add(time.Duration(i) * 50 * time.Millisecond), Latency: 100 * time.Millisecond, Code: 200}
		if i%2 == 1 {
			r.Code, r.Latency, r.Error = 0, 0, `Get "http://x/": `+load.ErrDropped.Error()
		} else {
			r.Headers = http.Header{load.FallbackHeader: {"static"}}
		}
		rf.Write(r, start, r.Timestamp.Add(-20*time.Millisecond))
	}
	if err := rf.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := Merge(s, []string{path}, start)
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
